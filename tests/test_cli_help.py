"""`t5cls --version` and the commands' ``--help`` texts."""

from __future__ import annotations

from helpers.cli import invoke
from t5cls import __version__


def test_version_and_help_texts():
    version = invoke("--version")
    assert version.returncode == 0 and version.stdout.decode() == f"t5cls {__version__}\n"
    score_help = invoke("score", "--help").stdout.decode()
    flags = [line for line in score_help.splitlines() if "<bool>" in line]
    assert [line for line in flags if "--help" not in line] == []  # Typer's own --help aside
    assert "INPUT" in score_help and ".bz2" in score_help
    wide = {"COLUMNS": "300", "TERMINAL_WIDTH": "300"}
    assert (
        "or 'auto' (scoring: CPU 32, CUDA the largest that fits; training: 16)"
        in invoke("train", "--help", env=wide).stdout.decode()
    )
