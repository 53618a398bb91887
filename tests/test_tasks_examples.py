"""Few-shot ``examples`` in task configs, without a model: which rows are picked, and every error."""

from __future__ import annotations

import csv
import hashlib
import json
from functools import partial

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from helpers import few_shot
from t5cls.errors import InputError
from t5cls.tasks import examples as examples_module
from t5cls.tasks.config import load_config

CLASSES = ["positive", "negative", "neutral"]
expected_rows = partial(few_shot.expected_rows, classes=CLASSES)


def write_rows(path, texts: list[str], golds: list[str]) -> None:
    if path.suffix == ".parquet":
        pq.write_table(pa.table({"text": texts, "label": golds}), path)
        return
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["text", "label"])
        writer.writerows(zip(texts, golds))


def write_config(folder, examples: str, template: str = "Review: {text}\\nSentiment:", extra: str = "") -> str:
    path = folder / "task.toml"
    path.write_text(
        f'[[task]]\nname = "s"\ntemplate = "{template}"\nlabels = {json.dumps(CLASSES)}\nexamples = {examples}\n{extra}'
    )
    return str(path)


TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=12).filter(str.strip)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(st.tuples(TEXT, st.sampled_from(CLASSES)), min_size=9, max_size=40),
    seed=st.integers(-(2**40), 2**40),
    per_class=st.integers(1, 3),
    suffix=st.sampled_from([".csv", ".parquet"]),
    chunk_rows=st.integers(1, 7),
)
def test_picks_follow_the_documented_rule_in_any_format_and_chunking(
    tmp_path_factory, monkeypatch, rows, seed, per_class, suffix, chunk_rows
):
    texts, golds = [text for text, _ in rows], [gold for _, gold in rows]
    assume(all(golds.count(name) >= per_class for name in CLASSES))  # too few rows: an error, tested below
    folder = tmp_path_factory.mktemp("examples")
    write_rows(folder / f"dev{suffix}", texts, golds)
    monkeypatch.setattr(examples_module, "SCAN_CHUNK_ROWS", chunk_rows)
    config = write_config(folder, f'{{ file = "dev{suffix}", gold = "label", per_class = {per_class}, seed = {seed} }}')
    [task] = load_config(config).tasks
    shown = task.examples.demonstrations
    assert [demo.row for demo in shown] == expected_rows(golds, seed=seed, per_class=per_class)
    assert [(demo.gold, demo.answer, dict(demo.values)) for demo in shown] == [
        (golds[demo.row - 1], golds[demo.row - 1], {"text": texts[demo.row - 1]}) for demo in shown
    ]
    assert task.demonstration_prompts() == [f"Review: {texts[demo.row - 1]}\nSentiment:" for demo in shown]


def test_a_relative_file_is_read_from_the_config_folder_and_the_hash_is_the_whole_file(tmp_path, monkeypatch):
    folder = tmp_path / "configs"
    folder.mkdir()
    write_rows(folder / "dev.csv", ["a", "b", "c", "d"], ["positive", "negative", "neutral", "positive"])
    config = write_config(folder, '{ file = "dev.csv", gold = "label", per_class = 1 }')
    monkeypatch.chdir(tmp_path)
    [task] = load_config("configs/task.toml").tasks
    assert task.examples.spec.path == "configs/dev.csv" and task.examples.spec.seed == 0
    assert task.examples.sha256 == hashlib.sha256((folder / "dev.csv").read_bytes()).hexdigest()
    assert [demo.row for demo in task.examples.demonstrations] == expected_rows(
        ["positive", "negative", "neutral", "positive"], seed=0, per_class=1
    )
    assert load_config(config).tasks[0].examples.demonstrations == task.examples.demonstrations


def test_verbalizer_answers_are_the_first_form_and_gold_values_are_class_names(tmp_path):
    write_rows(tmp_path / "dev.csv", ["a", "b"], ["good", "bad"])
    (tmp_path / "task.toml").write_text(
        '[[task]]\nname = "s"\ntemplate = "{text} ->"\nexamples = { file = "dev.csv", gold = "label", per_class = 1 }\n'
        '[task.labels]\ngood = ["great", "fine"]\nbad = ["awful", "poor"]\n'
    )
    [task] = load_config(str(tmp_path / "task.toml")).tasks
    assert sorted((demo.gold, demo.answer) for demo in task.examples.demonstrations) == [
        ("bad", "awful"),
        ("good", "great"),
    ]


def test_numeric_gold_values_of_a_regression_task_are_compared_as_text(tmp_path):
    pq.write_table(pa.table({"text": ["x", "y", "z"], "score": [1, 2, 2]}), tmp_path / "dev.parquet")
    (tmp_path / "task.toml").write_text(
        '[[task]]\nname = "r"\ntemplate = "{text} score:"\nlabels = ["1", "2"]\n'
        'examples = { file = "dev.parquet", gold = "score", per_class = 2 }\n'
    )
    with pytest.raises(InputError, match="class '1' has 1 row"):
        load_config(str(tmp_path / "task.toml"))
    (tmp_path / "task.toml").write_text((tmp_path / "task.toml").read_text().replace("per_class = 2", "per_class = 1"))
    [task] = load_config(str(tmp_path / "task.toml")).tasks
    assert task.values == (1.0, 2.0) and sorted(demo.gold for demo in task.examples.demonstrations) == ["1", "2"]


ROWS = (["a", "b", "c", "d"], ["positive", "negative", "neutral", "negative"])
GOOD = '{ file = "dev.csv", gold = "label", per_class = 1 }'


@pytest.mark.parametrize(
    "examples, rows, extra, message",
    [
        (
            GOOD,
            (["a", "b", "c"], ["positive", "negatve", "neutral"]),
            "",
            r"task\.toml: task 's': 'examples': .*dev\.csv: row 2: gold value 'negatve' in column 'label' is not a "
            r"class \(positive, negative, neutral\)",
        ),
        (GOOD.replace("dev.csv", "nope.csv"), ROWS, "", r"'examples': .*nope\.csv: no such file"),
        (GOOD.replace('"label"', '"gold"'), ROWS, "", r"dev\.csv: no gold column 'gold'; columns are: text, label"),
        (
            GOOD,
            (["a", "b", "c"], ["positive", "negative", "negative"]),
            "",
            r"dev\.csv: class 'neutral' has 0 row\(s\) in gold column 'label', fewer than per_class = 1",
        ),
        (GOOD, (["a", " ", "c"], ["positive", "negative", "neutral"]), "", r"dev\.csv: row 2: column 'text' is empty"),
        (GOOD.replace("1 }", "0 }"), ROWS, "", "'per_class' must be a positive whole number, got 0"),
        (GOOD.replace("1 }", "1, seed = 1.5 }"), ROWS, "", "'seed' must be a whole number, got 1.5"),
        (GOOD.replace("1 }", "1, shots = 2 }"), ROWS, "", "unknown key 'shots' .keys are: file, gold, per_class"),
        ('{ file = "dev.csv", gold = "label" }', ROWS, "", "missing key 'per_class'"),
        ('"dev.csv"', ROWS, "", "'examples': must be a table like"),
        (GOOD.replace("1 }", "1, separator = 2 }"), ROWS, "", "'separator' must be a string, got 2"),
        (GOOD.replace('"label"', '""'), ROWS, "", "'gold' must be a non-empty string, got ''"),
        (GOOD, ROWS, "multi_label = true\n", "'examples' needs a single-label task"),
    ],
    ids=[
        "gold-not-a-class",
        "no-file",
        "no-gold-column",
        "too-few-rows",
        "blank-text",
        "per-class-zero",
        "float-seed",
        "unknown-key",
        "missing-key",
        "not-a-table",
        "separator-not-text",
        "empty-gold",
        "multi-label",
    ],
)
def test_examples_errors_name_the_config_the_task_and_the_file(tmp_path, examples, rows, extra, message):
    write_rows(tmp_path / "dev.csv", *rows)
    template = "Is {text} about {label}?" if extra else "Review: {text}\\nSentiment:"
    config = write_config(tmp_path, examples, template, extra)
    with pytest.raises(InputError, match=message) as raised:
        load_config(config)
    assert str(raised.value).startswith(f"{config}: task 's': ")
    assert "\n" not in str(raised.value)


def test_template_columns_must_be_in_the_examples_file(tmp_path):
    write_rows(tmp_path / "dev.csv", *ROWS)
    config = write_config(tmp_path, GOOD, "Premise: {premise} Hypothesis: {text}")
    with pytest.raises(InputError, match=r"dev\.csv: no template column 'premise'; columns are: text, label"):
        load_config(config)


def test_file_from_rewrites_relative_paths_for_a_config_written_elsewhere(tmp_path, monkeypatch):
    write_rows(tmp_path / "dev.csv", *ROWS)
    monkeypatch.chdir(tmp_path)
    [task] = load_config(write_config(tmp_path, GOOD)).tasks
    assert task.examples.file_from(str(tmp_path / "out" / "deeper")) == "../../dev.csv"
    assert task.examples.file_from("") == "dev.csv"
    absolute = GOOD.replace('"dev.csv"', json.dumps(str(tmp_path / "dev.csv")))
    [task] = load_config(write_config(tmp_path, absolute)).tasks
    assert task.examples.file_from("elsewhere") == str(tmp_path / "dev.csv")
