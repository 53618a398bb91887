"""One schema per run: every chunk written, by any writer, in any part, has exactly the run's schema.

A run fixes its output schema before it scores anything (see `t5cls.run.chunks.ChunkScorer.
output_schema`); `conform` holds each chunk to it. Several input files (``--engine ray``) get one
schema for all of them from `common_schema`, so their parts read back as one table.
"""

from __future__ import annotations

import pyarrow as pa

from t5cls.errors import InputError


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with exactly ``schema``: columns in its order (missing ones null), types cast to its types.

    A run builds every chunk with its schema, so for one input this is a no-op; for the files of
    a Ray run it widens each file's chunks to the common schema. A cast that fails is a bug.
    """
    if table.schema.equals(schema, check_metadata=False):
        return table
    columns = [
        table.column(field.name) if field.name in table.column_names else pa.nulls(table.num_rows, field.type)
        for field in schema
    ]
    plain = pa.Table.from_arrays(columns, names=schema.names)
    return plain.cast(schema.remove_metadata()).replace_schema_metadata(schema.metadata)


def common_schema(schemas: dict[str, pa.Schema]) -> pa.Schema:
    """One schema for the inputs ``{path: schema}``: every column, each with one type its values widen to.

    Nulls widen to any type, ints to wider ints and to floats (as Arrow's permissive promotion
    does). Two types that do not widen to one are refused, naming the column and both files.
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
    return merged


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
