"""`t5cls inspect`: the rows a task was surest or least sure about, for triage.

The scored file is streamed chunk by chunk and only the N rows ranked best so far are kept,
so a file of any size is inspected in the memory of N rows. Equal entropies keep file order.
"""

from __future__ import annotations

import heapq
import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from t5cls.errors import InputError
from t5cls.readers import open_input
from t5cls.writers import open_writer, output_format

CHUNK_ROWS = 10_000
SIGNIFICANT_DIGITS = 4
TASK_COLUMNS = ("pred", "entropy", "expected", "std", "score", "rank")


def run_inspect(*, scored: str, lowest: int | None, highest: int | None, task: str | None, output: str | None) -> None:
    """Check the options, pick the rows, then print them as a table or write them to ``output``."""
    if (lowest is None) == (highest is None):
        raise InputError("give one of --lowest-entropy N or --highest-entropy N")
    count = lowest if lowest is not None else highest
    if count < 1:
        raise InputError(f"--{'lowest' if lowest is not None else 'highest'}-entropy must be at least 1, got {count}")
    if output is not None:
        _check_output(output, scored)
    prefix = f"{task}_" if task else ""
    rows, table = extreme_rows(scored, f"{prefix}entropy", count, highest=highest is not None)
    if output is None:
        from rich.console import Console

        which = "highest" if highest is not None else "lowest"
        title = f"{len(rows)} rows of {scored} with the {which} {prefix}entropy"
        Console().print(_rich_table(rows, _display(table, prefix), title))
        return
    with open(output, "wb") as stream:
        writer = open_writer(output_format(output), stream)
        writer.write(table)
        writer.close()


def extreme_rows(path: str, column: str, count: int, highest: bool) -> tuple[list[int], pa.Table]:
    """The ``count`` rows with the lowest (or highest) ``column``, best first, and their 1-based row numbers."""
    source = open_input(path, CHUNK_ROWS)
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


def _check_output(output: str, scored: str) -> None:
    output_format(output)
    folder = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(folder):
        raise InputError(f"{output}: output directory {folder} does not exist")
    if os.path.exists(output) and os.path.samefile(output, scored):
        raise InputError(f"{output}: output path is the scored file; write to a different path")


def _display(table: pa.Table, prefix: str) -> pa.Table:
    """What a terminal has room for: the task's entropy, prediction and probabilities (prefix
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
    probabilities = [name for name in columns if name.startswith(prefix + "p_")]
    shown.update({name.removeprefix(prefix): pc.cast(table.column(name), pa.float64()) for name in probabilities})
    shown.update({name: table.column(name) for name in columns if not is_output(name) and name not in shown})
    return pa.table(shown)


def _rich_table(rows: list[int], table: pa.Table, title: str):
    """The rows as a rich table: the row number, then the columns (numbers to 4 significant digits)."""
    from rich.table import Table
    from rich.text import Text

    view = Table(title=title, title_justify="left")
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
        return f"{value:.{SIGNIFICANT_DIGITS}g}"
    return str(value)
