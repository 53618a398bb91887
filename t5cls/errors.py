"""Errors that end a run with a one-line message and a documented exit code.

The CLI turns every `T5clsError` into ``t5cls: error: <message>`` on stderr and exits
with ``exit_code``; anything else is a bug and shows a traceback only with ``--debug``.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_MODEL = 3
EXIT_NUMERIC = 4
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


class T5clsError(Exception):
    """A problem the user can fix; `str(err)` is the whole one-line message."""

    exit_code = EXIT_USAGE


class InputError(T5clsError):
    """Bad input data, labels, template or options (exit 2)."""


class ModelLoadError(T5clsError):
    """The model or tokenizer could not be loaded (exit 3)."""

    exit_code = EXIT_MODEL


class NumericError(T5clsError):
    """The model produced non-finite scores, e.g. T5 overflowing in float16 (exit 4)."""

    exit_code = EXIT_NUMERIC
