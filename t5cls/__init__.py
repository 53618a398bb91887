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
scoring job, as ``t5cls score`` runs it), `score_frame` (a DataFrame or Arrow table in and out, the
same run) and the option classes of `t5cls.options`; `t5cls.sklearn.T5Classifier` is the
scikit-learn estimator. They are imported lazily so that commands that need no model
(``t5cls eval``) do not pay for importing torch.
"""

__version__ = "0.1.0"
__all__ = ["LabelScorer", "LabelScores", "ModelOptions", "ScoreOptions", "__version__", "score_file", "score_frame"]

_LAZY = {
    "LabelScorer": "t5cls.models.scorer",
    "LabelScores": "t5cls.models.scorer",
    "score_file": "t5cls.run.job",
    "score_frame": "t5cls.frames",
    "ModelOptions": "t5cls.options",
    "ScoreOptions": "t5cls.options",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 't5cls' has no attribute {name!r}")
