"""Command-line usage errors (unknown flag, missing argument, bad value) as one ``t5cls: error:`` line, exit 2.

Click (vendored in Typer) would print a boxed usage block of 4-5 lines; the README promises the
same one-line form as every other error. `OneLineGroup` is the ``t5cls`` group: it runs its
commands with Click's own error display off and shows a usage error through `usage_line`.
`one_line_errors` (in `t5cls.cli.flags`) turns the commands' own errors into exit codes; usage
errors happen before a command runs, so they are turned here.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Sequence
from typing import Any

import typer
from typer._click.exceptions import NoArgsIsHelpError, NoSuchOption  # Typer's vendored Click
from typer.core import TyperCommand, TyperGroup

from t5cls.errors import EXIT_INTERNAL, one_line


def usage_line(err: typer.TyperException) -> str:
    """The one-line message of a usage error: the nearest flag for an unknown one, else where help is."""
    if isinstance(err, NoSuchOption):
        nearest = difflib.get_close_matches(err.option_name, err.possibilities or (), n=1, cutoff=0.0)
        if nearest:
            return f"no such option {err.option_name}; did you mean {nearest[0]}?"
    message = one_line(err.format_message()).rstrip(".")
    message = message[:1].lower() + message[1:]
    if getattr(err, "ctx", None) is not None and not message.endswith("?"):  # not after Typer's "Did you mean"
        message += f"; see '{err.ctx.command_path} --help'"
    return message


def _help_without_value(option: Any) -> Any:
    """``--help`` shown as an on/off flag: Typer would list it as ``--help <bool>``, as if it took a value."""
    if option is not None:
        option.metavar = ""
    return option


class OneLineCommand(TyperCommand):
    """A ``t5cls`` command: its ``--help`` takes no value."""

    def get_help_option(self, ctx):
        return _help_without_value(super().get_help_option(ctx))


class OneLineGroup(TyperGroup):
    """The ``t5cls`` group: usage errors as one line with exit 2; ``--help`` takes no value."""

    def get_help_option(self, ctx):
        return _help_without_value(super().get_help_option(ctx))

    def main(self, args: Sequence[str] | None = None, *pos, standalone_mode: bool = True, **extra) -> Any:
        """Run a command; a usage error is one line and exit 2 (bare ``t5cls`` still shows the help)."""
        try:
            result = super().main(args, *pos, standalone_mode=False, **extra)
        except NoArgsIsHelpError as err:
            err.show()
            code = err.exit_code
        except typer.TyperException as err:  # a usage error (exit 2), or another error Click found in the flags
            print(f"t5cls: error: {usage_line(err)}", file=sys.stderr, flush=True)
            code = err.exit_code
        except typer.Abort:
            print("t5cls: error: aborted", file=sys.stderr, flush=True)
            code = EXIT_INTERNAL
        else:  # Click returns an `Exit`'s code in place of the command's result; commands return None
            code = result if isinstance(result, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code
