"""The ``t5cls`` command line: one module per command, each a thin layer over the Python API.

Exit codes: 0 success, 1 internal error (a bug), 2 bad usage or input (or an output another run
holds), 3 model could not be loaded, 4 non-finite scores, 5 the OS refused a read or write (disk
full, read-only...), 130/143 stopped by SIGINT/SIGTERM (checkpoint kept). Heavy imports (torch,
transformers, matplotlib) happen inside the commands, so ``t5cls --help`` and ``t5cls eval`` stay
fast.
"""

from __future__ import annotations

import signal
from typing import Annotated

import typer

from t5cls.cli.calibrate import calibrate_command
from t5cls.cli.evaluate import eval_command
from t5cls.cli.inspect import inspect_command
from t5cls.cli.score import score_command
from t5cls.cli.serve import serve_command
from t5cls.cli.train import train_command
from t5cls.cli.usage import OneLineCommand, OneLineGroup

HELP = "Exact per-class probabilities from text-to-text and decoder-only models (T5, Flan-T5, mT5, BART, Llama, ...)."

app = typer.Typer(
    cls=OneLineGroup,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help=HELP,
    invoke_without_command=True,
)


@app.callback()
def show_version(
    version: Annotated[
        bool, typer.Option("--version", metavar="", is_eager=True, help="Print the t5cls version and exit.")
    ] = False,
) -> None:
    """Options of ``t5cls`` itself, before a command; ``--version`` answers without importing anything heavy."""
    if version:
        from t5cls import __version__

        print(f"t5cls {__version__}")
        raise typer.Exit()


app.command("score", cls=OneLineCommand)(score_command)
app.command("eval", cls=OneLineCommand)(eval_command)
app.command("calibrate", cls=OneLineCommand)(calibrate_command)
app.command("inspect", cls=OneLineCommand)(inspect_command)
app.command("train", cls=OneLineCommand)(train_command)
app.command("serve", cls=OneLineCommand)(serve_command)


def main() -> None:
    """The ``t5cls`` process: a closed pipe (``| head``) ends it quietly, then the command runs."""
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    app(prog_name="t5cls")  # also under ``python -m t5cls.cli``: messages say how to rerun as the user would
