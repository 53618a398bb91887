"""Errors that end a run with a one-line message and a documented exit code.

The CLI turns every `T5clsError` into ``t5cls: error: <message>`` on stderr and exits with
``exit_code``; anything else is a bug and shows a traceback only with ``--debug``. Messages are
forced onto one line here, once, so no caller has to remember it.
"""

from __future__ import annotations

import signal
import string
from collections.abc import Mapping

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_MODEL = 3
EXIT_NUMERIC = 4
EXIT_FILESYSTEM = 5
EXIT_SIGINT = 130
EXIT_SIGTERM = 143
EXIT_CODES = {signal.SIGINT: EXIT_SIGINT, signal.SIGTERM: EXIT_SIGTERM}  # a stop signal's conventional 128+N


RESUME = " with --resume"


def one_line(text: str) -> str:
    """``text`` with every run of line breaks and surrounding blanks folded into one space."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


class T5clsWarning(UserWarning):
    """Something the user should know that does not stop the run; the CLI shows it as ``t5cls: note: ...``."""


class T5clsError(Exception):
    """A problem the user can fix; `str(err)` is the whole one-line message."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str):
        super().__init__(one_line(message))

    def for_flags(self, flags: Mapping[str, str]) -> str:
        """The message as the CLI shows it: the same, unless it names parameters (`NamesParameters`)."""
        return str(self)


class InputError(T5clsError):
    """Bad input data, labels, template or options (exit 2)."""


def literal(text: object) -> str:
    """``text`` (or its repr-free str) with braces doubled, to quote user data inside an `OptionError` message."""
    return str(text).replace("{", "{{").replace("}", "}}")


class _Names(dict):
    """Fills ``{parameter}`` placeholders: with a mapping's flag, else the parameter's own name."""

    def __missing__(self, key: str) -> str:
        return key


class NamesParameters:
    """A message that names Python parameters; the CLI shows its flags instead (mixed into `T5clsError`s).

    ``message`` writes each parameter as a placeholder, ``"{chunk_rows} must be at least 1"``
    (literal braces doubled), so one message serves both: `str` gives ``chunk_rows must be at
    least 1`` to API users and `for_flags` gives ``--chunk-size must be at least 1`` on the CLI.
    """

    def __init__(self, message: str):
        self.template = message
        super().__init__(message.format_map(_Names()))

    def for_flags(self, flags: Mapping[str, str]) -> str:
        return one_line(self.template.format_map(_Names(flags)))

    def renamed(self, names: Mapping[str, str]):
        """The same error naming a front end's own parameters: ``{name_or_path}`` is ``model`` in `score_frame`."""
        parts = []
        for text, name, _, _ in string.Formatter().parse(self.template):
            parts.append(text.replace("{", "{{").replace("}", "}}"))
            if name is not None:
                parts.append(f"{{{names.get(name, name)}}}")
        return type(self)("".join(parts))


class OptionError(NamesParameters, InputError):
    """A bad option value, named by its parameter (`NamesParameters`)."""


class OutputBusyError(InputError):
    """Another run holds the output's lock (exit 2: nothing was touched; wait for it or stop it)."""


class FileSystemError(T5clsError, OSError):
    """The operating system refused to read or write a file: disk full, read-only, permissions (exit 5).

    Not a bug and not bad input: the fix is on the machine. An `OSError` still, for library code
    that catches those. The message ends "then rerun", or
    "then rerun with --resume" where the finished work was kept (`t5cls.io.oserrors` writes it).
    """

    exit_code = EXIT_FILESYSTEM

    @property
    def resumable(self) -> bool:
        return str(self).endswith(RESUME)

    def kept_for_resume(self) -> FileSystemError:
        """The same error, saying that the finished work is kept for ``--resume``."""
        return self if self.resumable else FileSystemError(f"{self}{RESUME}")


class ModelLoadError(T5clsError):
    """The model or tokenizer could not be loaded (exit 3)."""

    exit_code = EXIT_MODEL


class RowError(T5clsError):
    """An error about one of the texts a call was given.

    ``row`` is that text's index within the call; `at` restates the error for a caller that knows
    where the text came from (``reviews.csv: row 37: ...``).
    """

    def __init__(self, problem: str, row: int | None = None):
        super().__init__(problem if row is None else f"input row {row}: {problem}")
        self.problem = problem
        self.row = row
        self.input_row: int | None = None

    def at(self, where: str, input_row: int | None = None) -> RowError:
        """The error restated for a caller that knows where the text came from; ``input_row`` (1-based) kept."""
        restated = type(self)(f"{where}: {self.problem}")
        restated.input_row = input_row
        return restated


class EmptyPromptError(RowError, InputError):
    """A decoder-only prompt with no tokens: the model has nothing to continue (exit 2)."""


class NumericError(RowError):
    """The model produced non-finite scores, e.g. T5 overflowing in float16 (exit 4)."""

    exit_code = EXIT_NUMERIC


class Interrupted(NamesParameters, T5clsError):
    """Raised between chunks after a stop signal (`t5cls.signals`); carries the conventional 128+N exit code.

    The message may name parameters (``rerun with {resume}``), which the CLI shows as flags.
    """

    def __init__(self, signum: int, message: str):
        super().__init__(message)
        self.exit_code = EXIT_CODES[signum]
