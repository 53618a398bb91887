"""Running the ``t5cls`` command: in this process (`invoke`, fast) or in a real one (`run_cli`, `run_forked`).

Use a real process only where the process matters: signals, pipes, exit on SIGPIPE, the installed
entry point (`run_cli`); its own pid, locks and death (`run_forked`, which costs what `invoke`
does). All return an object with ``returncode``, ``stdout`` and ``stderr`` (bytes).
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from typer.testing import CliRunner

from helpers.labels import BINARY_FLAG, UNSURE_FLAG

# Tiny models gain nothing from threads, and OpenMP threads on a loaded 2-core machine stall.
SINGLE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@dataclass
class Result:
    returncode: int
    stdout: bytes
    stderr: bytes


def invoke(*args, stdin: bytes | None = None, env: dict | None = None, cwd=None, **_) -> Result:
    """Run ``t5cls ARGS`` in this process through Typer's test runner."""
    from t5cls.cli import app

    previous = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        result = CliRunner().invoke(app, [str(arg) for arg in args], input=stdin, env=env, catch_exceptions=False)
    finally:
        os.chdir(previous)
    return Result(result.exit_code, result.stdout_bytes, result.stderr_bytes)


SCORE_LABELS = BINARY_FLAG  # the labels `score` asks for unless told otherwise


def score(model, source, *extra, labels: str = SCORE_LABELS, stdin: bytes | None = None) -> Result:
    """``t5cls score SOURCE -l LABELS -m MODEL -q EXTRA...`` in this process (`invoke`)."""
    return invoke("score", source, "-l", labels, "-m", model, "-q", *extra, stdin=stdin)


def train_args(model, source, out, *extra, dev: bool = True, epochs: int = 2) -> list:
    """The arguments of the tests' small ``t5cls train SOURCE`` run: the three labels of `UNSURE_FLAG`, gold column
    ``label``, SOURCE as its own ``--dev`` file unless ``dev=False``, on the CPU, 4 rows a batch; then EXTRA."""
    return [
        "train",
        source,
        "-l",
        UNSURE_FLAG,
        "--gold",
        "label",
        *(["--dev", source] if dev else []),
        "-m",
        model,
        "-o",
        out,
        "--device",
        "cpu",
        "--epochs",
        epochs,
        "--batch-size",
        "4",
        *extra,
    ]


def start_forked(run: Callable[[], int]) -> int:
    """Start ``run()`` in a forked child, a real process that already has this one's imports; its pid.

    ``run``'s return value is the child's exit code; an exception in it is exit 70, traceback on stderr.
    """
    pid = os.fork()
    if pid == 0:
        code = 70
        try:
            code = run()
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    return pid


def run_forked(*args, before: Callable[[], object] | None = None, **kwargs) -> Result:
    """`invoke` ``t5cls ARGS`` in a forked child, after ``before()`` there; ``returncode`` -N: signal N killed it."""
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:

        def run() -> int:
            if before is not None:
                before()
            result = invoke(*args, **kwargs)
            stdout.write(result.stdout)
            stderr.write(result.stderr)
            stdout.flush()
            stderr.flush()
            return result.returncode

        status = os.waitpid(start_forked(run), 0)[1]
        stdout.seek(0)
        stderr.seek(0)
        return Result(os.waitstatus_to_exitcode(status), stdout.read(), stderr.read())


def run_cli(*args, stdin=None, env=None, timeout=300, **kwargs) -> subprocess.CompletedProcess:
    """Run the real `t5cls` entry point in a subprocess."""
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **SINGLE_THREAD, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "t5cls.cli", *map(str, args)],
        input=stdin,
        capture_output=True,
        env=full_env,
        timeout=timeout,
        **kwargs,
    )


def assert_one_line_error(result, *fragments, code=2):
    """The run failed with ``code`` and exactly one stderr line, ``t5cls: error: ...``, holding ``fragments``."""
    stderr = result.stderr if isinstance(result.stderr, str) else result.stderr.decode()
    assert result.returncode == code, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("t5cls: error: "), stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def csv_rows(data: bytes) -> list[dict]:
    """A command's CSV output (its stdout bytes) as one dict per row."""
    return list(csv.DictReader(io.StringIO(data.decode())))
