"""``dtype int8``: int8 linear layers on the CPU, within the stated error of float32, recorded like any dtype."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from helpers.cli import assert_one_line_error, invoke
from helpers.trained_model import LABELS, TEMPLATE
from t5cls import LabelScorer
from t5cls.errors import OptionError
from t5cls.models.identity import describe_pretrained
from t5cls.models.loading import resolve_dtype
from t5cls.models.quantize import is_int8
from t5cls.options import ModelOptions

MAX_DELTA = 0.15  # nats, on any label log-prob
ARGMAX_AGREEMENT = 0.97


@pytest.mark.parametrize("device", ["cuda", "mps"])
def test_int8_is_refused_off_the_cpu(device):
    with pytest.raises(OptionError, match=r"dtype int8 runs on the CPU only.*use bfloat16"):
        resolve_dtype("int8", torch.device(device))


def test_every_linear_layer_but_the_lm_head_is_int8(t5_dir):
    model = LabelScorer.from_pretrained(str(t5_dir), device="cpu", dtype="int8").model
    assert is_int8(model)
    assert type(model.lm_head) is torch.nn.Linear and model.lm_head.weight.dtype == torch.float32
    assert not [name for name, module in model.named_modules() if type(module) is torch.nn.Linear and name != "lm_head"]


def test_int8_is_the_identity_dtype_in_the_library_and_the_output(t5_dir, tmp_path):
    scorer = LabelScorer.from_pretrained(str(t5_dir), device="cpu", dtype="int8")
    assert scorer.identity.dtype == "int8"
    assert describe_pretrained(ModelOptions(str(t5_dir), device="cpu", dtype="int8")) == scorer.identity
    source, out = tmp_path / "in.csv", tmp_path / "out.parquet"
    source.write_text("text\ngood film\nawful\n")
    result = invoke("score", source, "-l", "good,bad", "-m", t5_dir, "--dtype", "int8", "-o", out, "-q")
    assert result.returncode == 0, result.stderr.decode()
    assert len(result.stderr.decode().splitlines()) == 1  # the summary: no deprecation warnings
    assert pq.read_table(out).schema.metadata[b"t5cls.dtype"] == b"int8"


def test_int8_scores_are_within_the_stated_error_and_accuracy_of_float32(trained_t5):
    dev = pd.read_csv(trained_t5.data.dev, dtype=str, keep_default_na=False)
    prompts = [TEMPLATE.format(text=text) for text in dev["text"]]
    scores = {
        dtype: LabelScorer.from_pretrained(str(trained_t5.folder), device="cpu", dtype=dtype).score(prompts, LABELS)
        for dtype in ("float32", "int8")
    }
    exact, int8 = scores["float32"], scores["int8"]
    assert 0 < np.abs(int8.logprobs - exact.logprobs).max() <= MAX_DELTA
    assert np.mean(int8.pred_index == exact.pred_index) >= ARGMAX_AGREEMENT
    gold = dev["label"].to_numpy()
    accuracy = {dtype: np.mean(np.array(s.predictions) == gold) for dtype, s in scores.items()}
    assert abs(accuracy["int8"] - accuracy["float32"]) <= 0.01


def test_a_bad_dtype_names_the_choices(t5_dir, tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("text\ngood\n")
    result = invoke("score", source, "-l", "a,b", "-m", t5_dir, "--dtype", "int4", "-q")
    assert_one_line_error(result, "--dtype: unknown dtype 'int4'", "int8")
