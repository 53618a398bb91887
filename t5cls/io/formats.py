"""File formats, from a flag or a file name: which reader reads an input, which writer writes an output."""

from __future__ import annotations

import os

from t5cls.errors import InputError, OptionError, literal

INPUT_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
OUTPUT_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".parquet": "parquet"}
COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd", ".lz4": "lz4"}  # suffix -> pyarrow codec


def input_format(path: str, explicit: str | None = None) -> str:
    """The input format: ``explicit``, else the extension (compression suffix ignored); stdin: see `stdin_format`."""
    if explicit:
        return explicit
    if path == "-":
        return "csv"
    name = path.lower()
    for suffix in COMPRESSIONS:
        name = name.removesuffix(suffix)
    for suffix, fmt in INPUT_FORMATS.items():
        if name.endswith(suffix):
            return fmt
    if os.path.isdir(path):
        raise InputError(f"{path}: is a folder; score one file, or every file of the folder with --engine ray")
    raise OptionError(
        f"{literal(path)}: unsupported input extension; use .csv, .jsonl or .parquet (text optionally "
        f"{', '.join(COMPRESSIONS)}), or {{input_format}}"
    )


def file_name_suffix(path: str) -> str | None:
    """The suffix of a text file format that ``path`` ends with (``.csv``, ``.jsonl.gz``...): a name for a file,
    not a folder; ``.parquet`` is not one, as a folder of Parquet parts is often named so."""
    name = path.lower().rstrip("/").partition("?")[0]
    compressed = next((suffix for suffix in COMPRESSIONS if name.endswith(suffix)), "")
    name = name.removesuffix(compressed)
    text = next((suffix for suffix in (".csv", ".jsonl", ".ndjson", ".json") if name.endswith(suffix)), "")
    return (text + compressed) or None


def stdin_format(head: bytes) -> str:
    """The format of stdin from its first bytes, when no flag says: ``PAR1`` is Parquet, a ``{`` (after a
    byte order mark or blanks) JSONL, anything else CSV, so ``cat x.jsonl | t5cls score -`` reads JSON."""
    if head.startswith(b"PAR1"):
        return "parquet"
    return "jsonl" if head.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"{") else "csv"


def compression(path: str) -> str | None:
    """The pyarrow codec that a file name's last suffix asks for, if any."""
    return next((codec for suffix, codec in COMPRESSIONS.items() if path.lower().endswith(suffix)), None)


def output_format(path: str | None, explicit: str | None = None) -> str:
    """The output format: the extension, else ``explicit``, else CSV (for stdout).

    ``explicit`` decides only where the name says nothing (stdout, ``/dev/stdout``, a FIFO, an
    odd extension): a name and a flag that disagree would write one format under the other's
    name, so that is refused.
    """
    named = (
        None
        if path is None
        else next((fmt for suffix, fmt in OUTPUT_FORMATS.items() if path.lower().endswith(suffix)), None)
    )
    if explicit and named and explicit != named:
        raise OptionError(
            f"{{output}} {literal(path)} names a {named} file but {{output_format}} is {explicit}; "
            f"drop {{output_format}} or name the output .{explicit}"
        )
    if named or explicit:
        return named or explicit
    if path is None or path == "-":
        return "csv"
    if path.endswith(("/", os.sep)) or os.path.isdir(path):
        raise InputError(
            f"{path}: names a folder; name an output file in it (e.g. {os.path.join(path, 'scored.csv')}), "
            "or write a folder of Parquet parts with --engine ray"
        )
    raise InputError(f"{path}: unsupported output extension; use .csv, .jsonl or .parquet, or --format")
