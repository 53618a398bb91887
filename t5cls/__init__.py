"""t5cls: exact per-class probabilities from text-to-text models.

The public API is `LabelScorer` (texts + labels in, `LabelScores` out); `t5cls.job` runs it
over files and `t5cls.cli` is the command line on top. The API is imported lazily so that
commands that need no model (``t5cls eval``) do not pay for importing torch.
"""

__version__ = "0.1.0"
__all__ = ["LabelScorer", "LabelScores", "__version__"]


def __getattr__(name: str):
    if name in ("LabelScorer", "LabelScores"):
        from t5cls import scorer

        return getattr(scorer, name)
    raise AttributeError(f"module 't5cls' has no attribute {name!r}")
