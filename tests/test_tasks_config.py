"""`t5cls.tasks.config`: each rule of a task stated once, whatever the front end that meets it."""

from __future__ import annotations

import re

import pytest

from t5cls.errors import InputError, OptionError
from t5cls.options import ScoreOptions
from t5cls.run.plan import ScorePlan
from t5cls.tasks.config import NAME_RULE, RANK_NEEDS_POSITIVE, check_task_name, load_config

TASK = '[[task]]\nname = "%s"\ntemplate = "{text}"\nlabels = ["yes", "no"]\n'


def test_rank_by_needs_a_positive_class_in_one_words_on_every_path(tmp_path):
    (tmp_path / "in.csv").write_text("text,g\na,1\n")
    source = str(tmp_path / "in.csv")
    with pytest.raises(OptionError, match=re.escape(RANK_NEEDS_POSITIVE)):  # the option, with labels
        ScoreOptions(source, ("yes", "no"), rank_by="g")
    (tmp_path / "plain.toml").write_text(TASK % "t")
    with pytest.raises(OptionError, match=re.escape(RANK_NEEDS_POSITIVE)):  # the option, a config without it
        ScorePlan.build(ScoreOptions(source, config=str(tmp_path / "plain.toml"), rank_by="g"))
    (tmp_path / "key.toml").write_text(TASK % "t" + 'rank_by = "g"\n')
    with pytest.raises(InputError, match=re.escape(f"'rank_by' {RANK_NEEDS_POSITIVE}")):  # the config key
        load_config(str(tmp_path / "key.toml"))


def test_a_task_name_follows_one_rule_in_a_config_and_as_an_option(tmp_path):
    (tmp_path / "c.toml").write_text(TASK % "a b")
    with pytest.raises(InputError, match=re.escape(f"'name' 'a b' {NAME_RULE}")):
        load_config(str(tmp_path / "c.toml"))
    with pytest.raises(OptionError) as raised:
        check_task_name("a b")
    assert raised.value.for_flags({"task": "--task"}) == f"--task 'a b' {NAME_RULE}"
    check_task_name("a-b_1")
