"""t5cls: exact per-class probabilities from text-to-text and decoder-only models.

The package follows the data flow, one subpackage per stage:

    io/      read and write rows (CSV, JSONL, Parquet), atomic and resumable output
    tasks/   the questions asked of each row: labels, prompts, modes, configs (model-free)
    models/  loading, tokenizing and exact label log-probabilities (the only torch user)
    task_scorer.py  a task bound to a model: prompts, tokens and class scores (score, calibrate, train)
    run/     score_file (one entry point: local, Ray, dry run), the plan, the chunk step, the runners
    train/   fine-tuning on the prompts a run scores
    eval/    metrics, reports, plots, temperature fitting, triage (model-free)
    cli/     the ``t5cls`` command, a thin layer over the above

The public API is `LabelScorer` (texts + labels in, `LabelScores` out), `score_file` (a whole
scoring job, as ``t5cls score`` runs it), its parts `ScorePlan`, `open_input` and `LocalRunner`,
`score_frame` (a DataFrame or Arrow table in and out, the same run), the option classes of
`t5cls.options` and `NumericError`; `t5cls.sklearn.T5Classifier` is the scikit-learn estimator.
They are imported lazily so that commands that need no model (``t5cls eval``) do not pay for
importing torch.
"""

__version__ = "0.1.0"
__all__ = [
    "LabelScorer",
    "LabelScores",
    "LocalRunner",
    "ModelOptions",
    "NumericError",
    "ScoreOptions",
    "ScorePlan",
    "__version__",
    "open_input",
    "score_file",
    "score_frame",
]

_LAZY = {
    "LabelScorer": "t5cls.models.scorer",
    "LabelScores": "t5cls.models.scorer",
    "LocalRunner": "t5cls.run.local",
    "score_file": "t5cls.run.job",
    "score_frame": "t5cls.run.frames",
    "ScorePlan": "t5cls.run.plan",
    "open_input": "t5cls.io.readers",
    "NumericError": "t5cls.errors",
    "ModelOptions": "t5cls.options",
    "ScoreOptions": "t5cls.options",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 't5cls' has no attribute {name!r}")
