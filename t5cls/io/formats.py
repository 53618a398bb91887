"""File formats, from a flag or a file name: which reader reads an input, which writer writes an output."""

from __future__ import annotations

from t5cls.errors import InputError, OptionError, literal

INPUT_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
OUTPUT_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".parquet": "parquet"}
COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd", ".lz4": "lz4"}  # suffix -> pyarrow codec


def input_format(path: str, explicit: str | None = None) -> str:
    """The input format: ``explicit``, else the extension (compression suffix ignored); stdin is CSV unless told."""
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
    raise OptionError(
        f"{literal(path)}: unsupported input extension; use .csv, .jsonl or .parquet (optionally .gz), "
        "or {input_format}"
    )


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
    raise InputError(f"{path}: unsupported output extension; use .csv, .jsonl or .parquet, or --format")
