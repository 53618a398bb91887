"""Stop signals in a real process: the first is remembered, a second stops at once with one line."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from helpers.cli import assert_one_line_error

PROGRAM = """
import os, signal, time
from t5cls.signals import StopRequest
with StopRequest().installed() as stop:
    os.kill(os.getpid(), signal.{name})
    assert stop.requested
    print("first remembered", flush=True)
    os.kill(os.getpid(), signal.{name})
    time.sleep(30)
"""


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_second_signal_stops_at_once_with_one_line(signum, code):
    name = signal.Signals(signum).name
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM.format(name=name)], capture_output=True, timeout=60, check=False
    )
    assert result.stdout == b"first remembered\n"
    assert_one_line_error(result, f"stopped at once by a second {name}", "--resume", code=code)
