"""`t5cls.tasks.prompts`: ``--template`` escapes read as TOML reads them, a bad one as one line."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from helpers.cli import SCORE_LABELS, assert_one_line_error, score
from t5cls import LabelScorer


def test_template_escapes_are_read_as_toml_reads_them(t5_dir, tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("id,text\n1,good\n2,bad\n")
    out = tmp_path / "out.parquet"
    result = score(t5_dir, source, "-o", out, "-t", r"Review:\t{text}\nSentiment \u00e9 \\n:")
    assert result.returncode == 0, result.stderr
    table = pq.read_table(out)
    template = "Review:\t{text}\nSentiment é \\n:"
    assert table.schema.metadata[b"t5cls.template"].decode() == template
    prompts = [template.format(text=text) for text in ("good", "bad")]
    expected = LabelScorer.from_pretrained(str(t5_dir), device="cpu").score(prompts, SCORE_LABELS.split(",")).probs
    np.testing.assert_allclose(np.column_stack([table["p_positive"], table["p_negative"]]), expected, atol=1e-6)


@pytest.mark.parametrize("escape", [r"\q", "\\", r"\u12", r"\ud800", r"\U00110000"])
def test_a_bad_template_escape_is_one_line(t5_dir, tmp_path, escape):
    source = tmp_path / "in.csv"
    source.write_text("id,text\n1,good\n")
    assert_one_line_error(score(t5_dir, source, "-t", "{text}" + escape), "--template", "escape")
