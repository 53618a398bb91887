"""`t5cls.tasks.config`: each rule of a task stated once, and the prediction-set keys `calibrate --coverage` writes."""

from __future__ import annotations

import re

import pytest

from t5cls.errors import InputError, OptionError
from t5cls.eval.conformal import ConformalSets
from t5cls.options import ScoreOptions
from t5cls.run.plan import ScorePlan
from t5cls.tasks.config import NAME_RULE, RANK_NEEDS_POSITIVE, check_task_name, load_config, load_tasks

TASK = '[[task]]\nname = "s"\ntemplate = "{text}"\nlabels = ["positive", "negative"]\n'
NAMED = '[[task]]\nname = "%s"\ntemplate = "{text}"\nlabels = ["yes", "no"]\n'


def test_rank_by_needs_a_positive_class_in_one_words_on_every_path(tmp_path):
    (tmp_path / "in.csv").write_text("text,g\na,1\n")
    source = str(tmp_path / "in.csv")
    with pytest.raises(OptionError, match=re.escape(RANK_NEEDS_POSITIVE)):  # the option, with labels
        ScoreOptions(source, ("yes", "no"), rank_by="g")
    (tmp_path / "plain.toml").write_text(NAMED % "t")
    with pytest.raises(OptionError, match=re.escape(RANK_NEEDS_POSITIVE)):  # the option, a config without it
        ScorePlan.build(ScoreOptions(source, config=str(tmp_path / "plain.toml"), rank_by="g"))
    (tmp_path / "key.toml").write_text(NAMED % "t" + 'rank_by = "g"\n')
    with pytest.raises(InputError, match=re.escape(f"'rank_by' {RANK_NEEDS_POSITIVE}")):  # the config key
        load_config(str(tmp_path / "key.toml"))


def test_a_task_name_follows_one_rule_in_a_config_and_as_an_option(tmp_path):
    (tmp_path / "c.toml").write_text(NAMED % "a b")
    with pytest.raises(InputError, match=re.escape(f"'name' 'a b' {NAME_RULE}")):
        load_config(str(tmp_path / "c.toml"))
    with pytest.raises(OptionError) as raised:
        check_task_name("a b")
    assert raised.value.for_flags({"task": "--task"}) == f"--task 'a b' {NAME_RULE}"
    check_task_name("a-b_1")


SETS = 'coverage = 0.9\nconformal = "lac"\nconformal_threshold = 0.25\n'


def load(tmp_path, body: str):
    path = tmp_path / "c.toml"
    path.write_text(body)
    return load_config(str(path)).tasks[0]


def test_a_task_with_the_three_keys_has_its_set_rule(tmp_path):
    assert load(tmp_path, TASK + SETS).conformal == ConformalSets("lac", 0.9, 0.25)
    assert load(tmp_path, TASK + SETS.replace('"lac"', '"aps"')).conformal == ConformalSets("aps", 0.9, 0.25)
    assert load(tmp_path, TASK).conformal is None


@pytest.mark.parametrize(
    "body, message",
    [
        (TASK + "coverage = 0.9\n", "'coverage' needs 'conformal', 'conformal_threshold' too"),
        (TASK + "conformal_threshold = 0.2\n", "'conformal_threshold' needs 'coverage', 'conformal' too"),
        (TASK + SETS.replace("0.9", "1.0"), "'coverage' must be a level strictly between 0 and 1, got 1.0"),
        (TASK + SETS.replace("0.9", "0"), "'coverage' must be a level strictly between 0 and 1, got 0"),
        (TASK + SETS.replace("0.9", '"90%"'), "'coverage' must be a level strictly between 0 and 1, got '90%'"),
        (TASK + SETS.replace('"lac"', '"raps"'), "'conformal' must be 'lac' or 'aps', got 'raps'"),
        (TASK + SETS.replace("0.25", "-0.1"), "'conformal_threshold' must be a number ≥ 0, got -0.1"),
        (TASK + SETS.replace("0.25", "nan"), "'conformal_threshold' must be a number ≥ 0, got nan"),
        (
            TASK.replace('"{text}"', '"{text} {label}?"') + "multi_label = true\n" + SETS,
            "'coverage': a multi-label task has no single true class per row",
        ),
        (TASK.replace('["positive", "negative"]', '["1", "2", "3"]') + SETS, "'coverage': a regression task"),
        (TASK + "values = [0, 1]\n" + SETS, "'coverage': a regression task"),
    ],
)
def test_bad_set_keys_name_the_file_task_and_key(tmp_path, body, message):
    with pytest.raises(InputError) as caught:
        load(tmp_path, body)
    assert str(caught.value).startswith(f"{tmp_path / 'c.toml'}: task 's': ") and message in str(caught.value)


def test_a_task_written_back_leaves_its_set_keys_out(tmp_path):
    """`calibrate` and `train` write a task with a new temperature: its old q would not fit the new probabilities."""
    path = tmp_path / "c.toml"
    path.write_text(TASK + "temperature = 0.5\n" + SETS)
    task_set = load_tasks(None, str(path))
    table = task_set.table(task_set.tasks[0], str(tmp_path))
    assert table == {"name": "s", "template": "{text}", "labels": ["positive", "negative"], "temperature": 0.5}
