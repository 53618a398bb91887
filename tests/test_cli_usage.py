"""Usage errors (unknown flag, missing argument or option, bad value) are one line and exit 2, in a real process."""

from __future__ import annotations

import pytest

from helpers.cli import assert_one_line_error, invoke, run_cli


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["score", "x.csv", "--lables", "a,b"], ["no such option --lables; did you mean --labels?"]),
        (["eval", "f.csv"], ["missing option", "--gold", "t5cls eval --help"]),
        (["score"], ["missing argument", "INPUT", "t5cls score --help"]),
        (["score", "x.csv", "--chunk-size", "many"], ["invalid value for", "--chunk-size"]),
        (["calibrate", "dev.csv", "--labels"], ["--labels", "requires an argument"]),
        (["inspect", "s.csv", "--zzz"], ["no such option", "--zzz", "t5cls inspect --help"]),
        (["train", "t.csv", "--epohcs", "2"], ["no such option --epohcs; did you mean --epochs?"]),
        (["scor", "x.csv"], ["no such command 'scor'", "score"]),
    ],
    ids=["typo-flag", "missing-option", "missing-argument", "bad-int", "flag-without-value", "unknown", "train", "cmd"],
)
def test_usage_errors_are_one_line_with_exit_2(args, fragments):
    assert_one_line_error(run_cli(*args), *fragments)


def test_usage_errors_in_process_are_one_line_too():
    """The group itself turns them (Typer's test runner calls it as the entry point does)."""
    assert_one_line_error(invoke("eval", "f.csv", "--goldd", "label"), "did you mean --gold?")


def test_help_lists_help_as_a_flag_without_a_value():
    for args in (["--help"], ["score", "--help"], ["eval", "--help"]):
        result = run_cli(*args, env={"COLUMNS": "200"})
        assert result.returncode == 0, result.stderr
        lines = [line for line in result.stdout.decode().splitlines() if "--help" in line]
        assert lines and all("<bool>" not in line for line in lines), lines


def test_bare_t5cls_still_shows_the_help():
    result = run_cli()
    assert result.returncode == 2
    assert "Usage: t5cls" in (result.stdout + result.stderr).decode()
