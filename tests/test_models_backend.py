"""`t5cls.models.backend.Backend`: both model families' scoring code provides the written interface."""

from __future__ import annotations

import inspect

from helpers.tiny_causal_models import build_causal
from t5cls import LabelScorer
from t5cls.models.backend import Backend
from t5cls.models.causal import CausalBackend
from t5cls.models.seq2seq import Seq2SeqBackend


def test_both_backends_provide_the_protocol_with_its_signatures(t5_dir, tmp_path):
    causal = LabelScorer.from_pretrained(str(build_causal(tmp_path / "llama", "llama")), device="cpu")
    seq2seq = LabelScorer.from_pretrained(str(t5_dir), device="cpu")
    assert isinstance(seq2seq.backend, Seq2SeqBackend) and isinstance(causal.backend, CausalBackend)
    for backend in (seq2seq.backend, causal.backend):
        assert isinstance(backend, Backend)
        for name in ("label_logprobs", "first_token_logits", "session"):
            expected = list(inspect.signature(getattr(Backend, name)).parameters)[1:]
            assert list(inspect.signature(getattr(backend, name)).parameters) == expected, (type(backend), name)
