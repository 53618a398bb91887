"""A refused resume advises only what can help: options typed again, or, for a changed file, starting over."""

from __future__ import annotations

from pathlib import Path

import pytest

from t5cls.errors import OptionError
from t5cls.io.resume_check import check_same_run

SAVED = {"options": '{"chunk_rows": 1000, "logprobs": false}', "input file": "size 10, mtime 1", "tasks": "a"}
FLAGS = {"chunk_rows": "--chunk-size", "resume": "--resume"}


def refusal(current: dict[str, str]) -> str:
    with pytest.raises(OptionError) as raised:
        check_same_run(SAVED, {**SAVED, **current}, Path("big.csv"), finished=3)
    return raised.value.for_flags(FLAGS)


def test_a_changed_input_file_says_to_start_over_only():
    message = refusal({"input file": "size 10, mtime 2"})  # as after `touch big.csv`
    assert message.startswith("cannot resume big.csv: the input file changed")
    assert message.endswith("rerun without --resume to start over (the 3 finished chunks are scored again)")
    assert "options of the first run" not in message


def test_a_changed_option_may_be_typed_again():
    message = refusal({"options": '{"chunk_rows": 500, "logprobs": false}'})
    assert "--chunk-size changed (was 1000, now 500)" in message
    assert message.endswith("or with the options of the first run to continue")


def test_an_option_and_a_file_changed_together_say_to_start_over():
    message = refusal({"options": '{"chunk_rows": 500, "logprobs": false}', "input file": "size 11, mtime 2"})
    assert "options of the first run" not in message
