"""`t5cls.tasks.columns`: the prediction-set columns, and comma-joined classes read back."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers.labels import SENTIMENT as LABELS
from t5cls.eval.conformal import ConformalSets
from t5cls.tasks.columns import TaskResult, added_columns, joined_classes, output_columns, split_classes
from t5cls.tasks.config import quick_task


def task_with_sets(name: str, threshold: float, method: str = "lac"):
    task = quick_task(LABELS, "{text}", "text", name=name)
    return type(task)(**{**task.__dict__, "conformal": ConformalSets(method, 0.9, threshold)})


PROBS = np.array([[0.7, 0.2, 0.1], [0.45, 0.45, 0.1], [0.34, 0.33, 0.33], [0.1, 0.05, 0.85]])


@pytest.mark.parametrize("name, prefix", [("", ""), ("sentiment", "sentiment_")])
def test_set_columns_hold_the_classes_with_p_at_least_1_minus_q_in_label_order(name, prefix):
    task = task_with_sets(name, threshold=0.6)  # classes with p ≥ 0.4
    columns = output_columns(task, TaskResult(np.log(PROBS), PROBS, np.zeros(4, dtype=bool)), logprobs=False)
    assert columns[f"{prefix}set"].to_pylist() == ["positive", "positive,negative", "", "neutral"]
    assert columns[f"{prefix}set_size"].to_pylist() == [1, 2, 0, 1]
    names = list(columns)
    assert names.index(f"{prefix}set") == names.index(f"{prefix}entropy") + 1
    assert added_columns([task], logprobs=True)[-5:-3] == [f"{prefix}set", f"{prefix}set_size"]


def test_aps_set_columns_take_classes_down_the_ranking_while_the_mass_above_is_at_most_q():
    task = task_with_sets("", threshold=0.5, method="aps")
    columns = output_columns(task, TaskResult(np.log(PROBS), PROBS, np.zeros(4, dtype=bool)), logprobs=False)
    assert columns["set"].to_pylist() == ["positive", "positive,negative", "positive,negative", "neutral"]


def test_a_task_without_sets_has_no_set_columns():
    task = quick_task(LABELS, "{text}", "text")
    assert not {"set", "set_size"} & set(added_columns([task], logprobs=True))


def test_split_classes_refuses_what_no_set_joins_to():
    assert split_classes("", LABELS) == [] and split_classes("negative,neutral", LABELS) == [1, 2]
    for value in ("neutral,negative", "positive,positive", "Positive", "positive,", ","):
        assert split_classes(value, LABELS) is None


label_names = st.text(st.characters(codec="utf-8", exclude_characters=","), min_size=1, max_size=6)


@given(st.lists(label_names, min_size=1, max_size=8, unique=True), st.data())
def test_split_classes_inverts_joined_classes(labels, data):
    chosen = np.array([data.draw(st.lists(st.booleans(), min_size=len(labels), max_size=len(labels)))])
    [value] = joined_classes(labels, chosen).to_pylist()
    assert split_classes(value, labels) == np.flatnonzero(chosen[0]).tolist()


comma_names = st.text(st.sampled_from("a,b"), min_size=1, max_size=4)


@given(st.lists(comma_names, min_size=1, max_size=6, unique=True), st.data())
def test_labels_with_commas_read_back_as_a_set_that_joins_to_the_same_value(labels, data):
    """With commas in labels a value can be ambiguous ("a,b" of a and b, or of "a,b"); any reading joins back."""
    chosen = np.array([data.draw(st.lists(st.booleans(), min_size=len(labels), max_size=len(labels)))])
    [value] = joined_classes(labels, chosen).to_pylist()
    indexes = split_classes(value, labels)
    assert indexes is not None and ",".join(labels[i] for i in indexes) == value
