"""The label sets the tests score with, each written once (a test module imports one as its ``LABELS``)."""

from __future__ import annotations

SENTIMENT = ["positive", "negative", "neutral"]
UNSURE = ["positive", "negative", "not sure"]
UNSURE_FLAG = ",".join(UNSURE)  # as ``-l`` takes it: "positive,negative,not sure"
BINARY = ["positive", "negative"]
BINARY_FLAG = ",".join(BINARY)
