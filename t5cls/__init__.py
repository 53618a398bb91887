"""t5cls: exact per-class probabilities from text-to-text models.

The public API is `LabelScorer` (texts + labels in, `LabelScores` out); `t5cls.job` runs it
over files and `t5cls.cli` is the command line on top.
"""

__version__ = "0.1.0"

from t5cls.scorer import LabelScorer, LabelScores  # noqa: E402  (after __version__, which job.py imports)

__all__ = ["LabelScorer", "LabelScores", "__version__"]
