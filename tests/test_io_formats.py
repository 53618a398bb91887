"""`t5cls.io.formats`: ``--input-format`` names a format, and stdin is read in it."""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from helpers.cli import SCORE_LABELS, assert_one_line_error, score
from helpers.generated import NUMBERED_CSV, drifting_rows
from t5cls import LabelScorer


def test_an_unknown_input_format_is_refused(t5_dir, tmp_path):
    source = tmp_path / "in.csv"
    source.write_bytes(NUMBERED_CSV[:100])
    assert_one_line_error(score(t5_dir, source, "--input-format", "xlsx"), "--input-format", "'xlsx'", "csv")


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_parquet_and_jsonl_on_stdin_are_read(t5_dir, fmt):
    if fmt == "parquet":
        sink = io.BytesIO()
        pq.write_table(pa.table({"id": [1, 2, 3], "text": ["good", "bad", "meh"]}), sink)
        data = sink.getvalue()
    else:
        data = "".join(json.dumps(row) + "\n" for row in drifting_rows()).encode()
    result = score(t5_dir, "-", "--input-format", fmt, "--format", "jsonl", "--chunk-size", 2, stdin=data)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert len(rows) == (3 if fmt == "parquet" else 12)
    reference = LabelScorer.from_pretrained(str(t5_dir), device="cpu")
    from t5cls.tasks.prompts import DEFAULT_TEMPLATE, PromptTemplate

    prompts = PromptTemplate(DEFAULT_TEMPLATE).render({"text": [row["text"] for row in rows]}, SCORE_LABELS.split(","))
    expected = reference.score(prompts, SCORE_LABELS.split(",")).probs
    np.testing.assert_allclose([[row["p_positive"], row["p_negative"]] for row in rows], expected, atol=1e-6)
