"""Reading labelled files for training: gold values of every kind, checked row by row (generated properties)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from t5cls.errors import InputError, OptionError
from t5cls.tasks.config import Task, TaskSet
from t5cls.tasks.prompts import PromptTemplate
from t5cls.train import data
from t5cls.train.gold import gold_columns, parse_gold

CLASSES = ("positive", "negative", "not sure", "3")


def make_task(name="t", multi_label=False, values=None, template="{text}") -> Task:
    forms = tuple((c,) for c in CLASSES)
    template = PromptTemplate(template, asks_label=multi_label)
    return Task(name, template, CLASSES, forms, multi_label=multi_label, values=values)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(CLASSES), st.text(max_size=8), st.none()), min_size=1, max_size=12))
def test_class_gold_is_the_class_index_or_an_error_naming_the_first_bad_row(values):
    rows = list(range(5, 5 + len(values)))
    bad = [i for i, value in enumerate(values) if value not in CLASSES]
    if not bad:
        np.testing.assert_array_equal(
            parse_gold(make_task(), values, "f.csv", "label", rows), [CLASSES.index(v) for v in values]
        )
        return
    with pytest.raises(InputError, match=f"^f.csv: row {rows[bad[0]]}: column 'label' "):
        parse_gold(make_task(), values, "f.csv", "label", rows)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.lists(st.sampled_from(CLASSES), unique=True), min_size=1, max_size=8), st.sampled_from(["", " ", "  "])
)
def test_multi_label_gold_reads_comma_joined_classes_in_any_order_with_blanks(members, space):
    task = make_task(multi_label=True, template="{text} {label}?")
    written = [f",{space}".join(reversed(classes)) for classes in members]
    expected = [[1.0 if c in classes else 0.0 for c in CLASSES] for classes in members]
    np.testing.assert_array_equal(parse_gold(task, written, "f.csv", "g", range(len(members))), expected)
    np.testing.assert_array_equal(parse_gold(task, members, "f.jsonl", "g", range(len(members))), expected)  # lists


def test_multi_label_gold_refuses_an_unknown_class():
    task = make_task(multi_label=True, template="{text} {label}?")
    with pytest.raises(InputError, match="row 2: column 'g' names 'prices', which is not one of the classes"):
        parse_gold(task, ["positive", "positive,prices"], "f.csv", "g", [1, 2])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(CLASSES)), min_size=1))
def test_regression_gold_is_a_number_or_a_class_standing_for_its_value(values):
    values_of = (0.0, 1.0, 0.5, 3.0)
    task = make_task(values=values_of)
    written = [value if isinstance(value, str) else repr(value) for value in values]
    expected = [values_of[CLASSES.index(v)] if isinstance(v, str) else v for v in values]
    np.testing.assert_array_equal(parse_gold(task, written, "f.csv", "y", range(len(values))), expected)


@pytest.mark.parametrize("value", ["", "nan", "inf", "high", None])
def test_regression_gold_refuses_what_is_not_a_finite_number(value):
    with pytest.raises(InputError, match="not a number or a class of this regression task"):
        parse_gold(make_task(values=(0.0, 1.0, 0.5, 3.0)), [value], "f.csv", "y", [1])


def test_gold_columns_of_one_task_or_several():
    one, two = make_task("a"), make_task("b")
    assert gold_columns("label", [one], quick=True) == ["label"]
    assert gold_columns(" b = y , a=x", [one, two], quick=False) == ["x", "y"]
    for spec, message in [
        ("label", "the config has 2 tasks"),
        ("a=x", "no gold column for task 'b'"),
        ("a=x,b=y,c=z", "no task named 'c'"),
        ("a=x,b", "'b' is not task=column"),
    ]:
        with pytest.raises(OptionError, match=message):
            gold_columns(spec, [one, two], quick=False)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text(alphabet="abc xyz", min_size=1, max_size=6).filter(str.strip),
            st.lists(st.sampled_from(CLASSES), unique=True),
        ),
        min_size=1,
        max_size=9,
    ),
    st.integers(1, 4),
)
def test_multi_label_rows_and_gold_are_read_in_order_whatever_the_chunking(tmp_path_factory, rows, chunk_rows):
    path = tmp_path_factory.mktemp("gold") / "train.jsonl"
    path.write_text("".join(json.dumps({"text": text, "g": classes}) + "\n" for text, classes in rows))
    task = make_task(multi_label=True, template="{text} {label}?")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(data, "SCAN_CHUNK_ROWS", chunk_rows)
        read = data.read_labelled(str(path), TaskSet(None, (task,)), ["g"], "error")
    assert read.rows == len(rows)
    assert read.columns == {"text": [text for text, _ in rows]}
    assert read.tasks[0].gold_text == [",".join(classes) for _, classes in rows]
