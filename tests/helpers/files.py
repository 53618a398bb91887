"""Small input files written the way users write them, shared by the tests (one writer, not one per file)."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence]) -> Path:
    """A UTF-8 CSV with ``header`` and ``rows`` (quoted where the csv module must), ``\\n`` line ends."""
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return Path(path)


def write_texts(path: Path, texts: Sequence[str]) -> Path:
    """A CSV of ``id`` (1, 2, ...) and ``text``: the input most scoring tests read."""
    return write_csv(path, ["id", "text"], [(number, text) for number, text in enumerate(texts, start=1)])


def write_lines(path: Path, header: str, *lines: str) -> Path:
    """A text file of ``header`` and ``lines`` exactly as written (a scored file with chosen columns and values)."""
    path.write_text(header + "\n" + "\n".join(lines) + "\n")
    return path
