"""`t5cls.tasks.labels`: labels as typed on the command line and as given from Python."""

from __future__ import annotations

import pytest

from helpers.cli import csv_rows, invoke
from t5cls.errors import OptionError
from t5cls.tasks.labels import parse_labels


def test_labels_typed_with_spaces_are_the_labels_without_them(t5_dir, short_reviews):
    spaced = invoke("score", short_reviews, "-l", " positive ,  negative", "-m", t5_dir)
    plain = invoke("score", short_reviews, "-l", "positive,negative", "-m", t5_dir)
    assert spaced.returncode == 0, spaced.stderr
    assert spaced.stdout == plain.stdout
    assert {row["pred"] for row in csv_rows(spaced.stdout)} <= {"positive", "negative"}


def test_a_list_of_labels_keeps_its_spaces():
    assert parse_labels("a, b ,c") == ["a", "b", "c"]
    assert parse_labels([" a", "b"]) == [" a", "b"]  # a decoder-only word boundary, on purpose
    with pytest.raises(OptionError, match="given twice"):
        parse_labels("a, a")
