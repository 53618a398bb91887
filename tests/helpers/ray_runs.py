"""What the Ray tests share, on local folders and on object storage: options, the runner, the local reference.

A Ray run must write, file by file, what the local engine writes: `assert_same_tables` compares
each file's Ray output with `score_file`'s local run of it, values and metadata.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from helpers.labels import UNSURE_FLAG as LABELS
from t5cls.models.scorer import LabelScorer
from t5cls.options import ModelOptions, RayOptions, ScoreOptions
from t5cls.run.job import score_file
from t5cls.run.plan import ScorePlan
from t5cls.run.ray import RayRunner

CHUNK = 4


def options(source, output, **fields) -> ScoreOptions:
    """A run of ``source`` into ``output`` with the tests' labels (unless a config is given) and chunk size."""
    fields.setdefault("labels", None if "config" in fields else LABELS)
    fields.setdefault("chunk_rows", CHUNK)
    return ScoreOptions(input=str(source), output=str(output), **fields)


def model_args(model_dir) -> ModelOptions:
    return ModelOptions(name_or_path=str(model_dir), batch_size=3)


def ray_runner(job: ScoreOptions, model: ModelOptions, layout: RayOptions) -> RayRunner:
    return RayRunner(ScorePlan.build(job, folder_output=True), model, layout)


def local_outputs(files: Sequence, model_dir, tmp_path, **fields) -> list[pa.Table]:
    """Each file scored by the local engine, the reference for the Ray output."""
    scorer = LabelScorer.from_options(model_args(model_dir))
    tables = []
    for index, path in enumerate(files):
        out = tmp_path / f"local-{index}.parquet"
        score_file(options(path, out, **fields), scorer)
        tables.append(pq.read_table(out))
    return tables


def assert_same_tables(tables: Sequence[pa.Table], files: Sequence, model_dir, tmp_path, **fields) -> None:
    """Each file's Ray output (``tables``) equals the local run of it, schema metadata included."""
    references = local_outputs(files, model_dir, tmp_path, **fields)
    assert len(tables) == len(references)
    for path, table, local in zip(files, tables, references):
        assert table.equals(local), f"{path}: the Ray output differs from the local run"
        assert table.schema.metadata == local.schema.metadata
