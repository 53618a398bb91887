"""`t5cls inspect`: the rows a task was surest or least sure about, for triage.

The scored file is streamed chunk by chunk and only the N rows ranked best so far are kept,
so a file of any size is inspected in the memory of N rows. Equal entropies keep file order.
"""

from __future__ import annotations

import heapq
import sys
from contextlib import closing
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from t5cls.errors import InputError, OptionError
from t5cls.io.atomic import write_atomically
from t5cls.io.formats import output_format
from t5cls.io.paths import check_output_file
from t5cls.io.readers import SCAN_CHUNK_ROWS, open_input
from t5cls.io.writers import open_writer

UNLIMITED_WIDTH = 1_000_000  # columns a piped table may take: in effect, no limit
DECIMALS = 4  # every number to the same places, so a column of probabilities lines up
TASK_COLUMNS = ("pred", "entropy", "expected", "std", "score", "rank", "set", "set_size")


def run_inspect(
    *,
    scored: str,
    lowest_entropy: int | None = None,
    highest_entropy: int | None = None,
    task: str | None = None,
    output: str | None = None,
) -> None:
    """Check the options, pick the rows, then print them as a table or write them to ``output``."""
    if (lowest_entropy is None) == (highest_entropy is None):
        raise OptionError("give one of {lowest_entropy} N or {highest_entropy} N")
    highest = highest_entropy is not None
    count = highest_entropy if highest else lowest_entropy
    if count < 1:
        raise OptionError(f"{{{'highest' if highest else 'lowest'}_entropy}} must be at least 1, got {count}")
    if output is not None:
        output_format(output)
        check_output_file(output, scored)
    prefix = f"{task}_" if task else ""
    rows, table = extreme_rows(scored, f"{prefix}entropy", count, highest=highest)
    if output is not None:
        write_atomically(Path(output), lambda stream: _write_table(table, output_format(output), stream))
        return
    which = "highest" if highest else "lowest"
    print_rows(f"{len(rows)} rows of {scored} with the {which} {prefix}entropy", rows, _display(table, prefix))


def _write_table(table: pa.Table, fmt: str, stream) -> None:
    writer = open_writer(fmt, stream, table.schema)
    writer.write(table)
    writer.close()


def print_rows(title: str, rows: list[int], table: pa.Table) -> None:
    """The rows as a rich table on stdout. Piped or redirected, nothing is cut to a terminal's width:
    the title is a line of its own and the table is as wide as its contents."""
    from rich.console import Console
    from rich.text import Text

    console = Console() if sys.stdout.isatty() else Console(width=UNLIMITED_WIDTH)
    console.print(Text(title), soft_wrap=True)
    console.print(_rich_table(rows, table))


def extreme_rows(path: str, column: str, count: int, highest: bool) -> tuple[list[int], pa.Table]:
    """The ``count`` rows with the lowest (or highest) ``column``, best first, and their 1-based row numbers."""
    with closing(open_input(path, SCAN_CHUNK_ROWS)) as source:
        return _extreme_rows(source, path, column, count, highest)


def _extreme_rows(source, path: str, column: str, count: int, highest: bool) -> tuple[list[int], pa.Table]:
    if column not in source.columns:
        tasks = [name.removesuffix("_entropy") for name in source.columns if name.endswith("_entropy")]
        hint = f" (choose a task with --task: {', '.join(tasks)})" if tasks else ""
        raise InputError(f"{path}: no {column!r} column{hint}; columns are: {', '.join(source.columns)}")
    kept: list[tuple[float, int, pa.Table]] = []
    offset = 0
    for table in source.chunks:
        keys = _entropies(path, table.column(column), column, offset)
        keys = -keys if highest else keys
        best = np.argsort(keys, kind="stable")[:count]
        candidates = [(float(keys[i]), offset + int(i) + 1, table.take([int(i)])) for i in best]
        kept = heapq.nsmallest(count, kept + candidates, key=lambda item: item[:2])
        offset += table.num_rows
    if not kept:
        return [], source.empty
    return [row for _, row, _ in kept], pa.concat_tables([row for _, _, row in kept], promote_options="permissive")


def _entropies(path: str, values: pa.ChunkedArray, name: str, offset: int) -> np.ndarray:
    """The entropy column as floats (CSV gives text); a missing or unreadable value is an error."""
    try:
        numbers = pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise InputError(f"{path}: column {name!r} holds values that are not numbers") from None
    missing = np.flatnonzero(np.isnan(numbers))
    if len(missing):
        raise InputError(f"{path}: row {offset + missing[0] + 1}: column {name!r} is missing (null or NaN)")
    return numbers


def _display(table: pa.Table, prefix: str) -> pa.Table:
    """What a terminal has room for: the task's entropy, prediction, prediction set and probabilities (prefix
    dropped, numbers as numbers even from CSV), then the input columns; ``-o`` keeps every column.

    Output columns are recognised by the prefixes of the file's ``entropy`` columns.
    """
    columns = table.column_names
    prefixes = [name.removesuffix("entropy") for name in columns if name == "entropy" or name.endswith("_entropy")]

    def is_output(name: str) -> bool:
        return any(name.startswith((p + "p_", p + "logp_")) or name in [p + c for c in TASK_COLUMNS] for p in prefixes)

    shown = {"entropy": pc.cast(table.column(prefix + "entropy"), pa.float64())}
    if prefix + "pred" in columns:
        shown["pred"] = table.column(prefix + "pred")
    if prefix + "set" in columns:  # the classes a person chooses among (`calibrate --coverage`)
        shown["set"] = table.column(prefix + "set")
    probabilities = [name for name in columns if name.startswith(prefix + "p_")]
    shown.update({name.removeprefix(prefix): pc.cast(table.column(name), pa.float64()) for name in probabilities})
    shown.update({name: table.column(name) for name in columns if not is_output(name) and name not in shown})
    return pa.table(shown)


def _rich_table(rows: list[int], table: pa.Table):
    """The rows as a rich table: the row number, then the columns (numbers to 4 decimal places)."""
    from rich.table import Table
    from rich.text import Text

    view = Table()
    view.add_column("row", justify="right")
    for name in table.column_names:
        view.add_column(name)
    for row, record in zip(rows, table.to_pylist()):
        view.add_row(str(row), *(Text(_shown(value)) for value in record.values()))
    return view


def _shown(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.{DECIMALS}f}"
    return str(value)
