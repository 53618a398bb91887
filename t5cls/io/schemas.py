"""One schema per run: every chunk written, by any writer, in any part, has exactly the run's schema.

A run fixes its output schema before it scores anything (see `t5cls.run.chunks.ChunkScorer.
output_schema`); `conform` holds each chunk to it. The files of a Ray run keep their own schemas,
checked up front by `check_types_agree` so that their parts read back as one table.
"""

from __future__ import annotations

import json

import pyarrow as pa

from t5cls.errors import InputError


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with exactly ``schema``'s types (metadata aside): a no-op for the chunks of a run.

    Every chunk of a run is built with its schema; a chunk that cannot be cast to it is a bug.
    """
    if table.schema.equals(schema, check_metadata=False):
        return table
    return table.select(schema.names).cast(schema.remove_metadata()).replace_schema_metadata(schema.metadata)


def check_types_agree(schemas: dict[str, pa.Schema]) -> None:
    """The inputs ``{path: schema}`` of one run must give each column types that widen to one.

    Each file's parts keep that file's own schema (as its local run would write it); a reader of
    the whole output folder then unifies them, which it can do when nulls widen to any type and
    ints to wider ints or floats (Arrow's permissive promotion). Two types that cannot are refused
    before anything is scored, naming the column and both files.
    """
    merged: pa.Schema | None = None
    first_seen: dict[str, str] = {}
    for path, schema in schemas.items():
        schema = schema.remove_metadata()
        if merged is not None:
            _check_types_widen(merged, schema, first_seen, path)
        merged = schema if merged is None else pa.unify_schemas([merged, schema], promote_options="permissive")
        for name in schema.names:
            first_seen.setdefault(name, path)


def _check_types_widen(merged: pa.Schema, schema: pa.Schema, first_seen: dict[str, str], path: str) -> None:
    for field in schema:
        if field.name not in merged.names:
            continue
        known = merged.field(field.name)
        try:
            pa.unify_schemas([pa.schema([known]), pa.schema([field])], promote_options="permissive")
        except (pa.ArrowTypeError, pa.ArrowInvalid):
            raise InputError(
                f"{path}: column {field.name!r} is {field.type}, but in {first_seen[field.name]} it is {known.type}; "
                "the files of one run need one type per column"
            ) from None


def column_texts(column: pa.ChunkedArray) -> list[str | None]:
    """A column's values as text, None for null: what a template reads and CSV writes.

    A JSON-typed column (arrays, objects, mixed kinds from JSONL) gives each value's JSON text, and a
    JSON string the string itself.
    """
    values = column.to_pylist()
    if column.type == pa.json_():
        return [None if v is None else json.loads(v) if v.startswith('"') else v for v in values]
    return [v if v is None or isinstance(v, str) else str(v) for v in values]


def column_values(column: pa.ChunkedArray) -> list:
    """A column's values as Python values, a JSON-typed column's decoded (a JSON array as a list)."""
    values = column.to_pylist()
    if column.type == pa.json_():
        return [None if v is None else json.loads(v) for v in values]
    return values
