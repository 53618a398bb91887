"""A model's identity (`t5cls.models.identity`): a local folder's content digest, its cache, and the one builder."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import pyarrow.parquet as pq
import pytest

from helpers.model_files import rewrite_in_place
from helpers.runs import StopAfter, plan_for
from t5cls.errors import Interrupted
from t5cls.models import identity
from t5cls.options import ModelOptions, RayOptions, ScoreOptions
from t5cls.run.finished import up_to_date
from t5cls.run.job import score_file
from t5cls.run.plan import ScorePlan


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(identity, "_memory", {})
    root = tmp_path / "model"
    root.mkdir()
    (root / "config.json").write_text('{"model_type": "t5"}')
    (root / "model.safetensors").write_bytes(bytes(range(256)) * 64)
    return root


def test_a_rewrite_in_place_is_another_model_even_with_a_warm_cache(folder, monkeypatch):
    monkeypatch.setattr(identity, "SETTLED_NS", 0)  # trust every key at once, so the cache is used
    before = identity.folder_digest(folder)
    assert list((folder.parent / "cache" / "t5cls" / "digests").iterdir()), "the digests were cached"
    time.sleep(0.02)  # past the kernel's timestamp tick: the rewrite's ctime is a later one
    weights = folder / "model.safetensors"
    rewrite_in_place(weights, bytes(reversed(weights.read_bytes())))
    after = identity.folder_digest(folder)
    assert after != before
    monkeypatch.setattr(identity, "_memory", {})  # a new process: only the disk cache
    assert identity.folder_digest(folder) == after


def test_the_cache_spares_reading_a_settled_file_and_keeps_a_fresh_one_out(folder, monkeypatch):
    digest = identity.folder_digest(folder)  # just written: not settled, nothing cached
    assert not (folder.parent / "cache").exists()
    monkeypatch.setattr(identity, "SETTLED_NS", 0)
    assert identity.folder_digest(folder) == digest
    monkeypatch.setattr(identity, "_memory", {})

    def unread(*_):
        raise AssertionError("a cached file was read again")

    monkeypatch.setattr(identity.hashlib, "file_digest", unread)
    assert identity.folder_digest(folder) == digest


def test_the_files_that_count_are_those_loading_may_read(folder):
    digest = identity.folder_digest(folder)
    (folder / ".gitattributes").write_text("*.safetensors filter=lfs")
    (folder / "plots").mkdir()
    (folder / "plots" / "reliability.png").write_bytes(b"png")
    assert identity.folder_digest(folder) == digest  # hidden files and other subfolders are not the model
    templates = folder / "additional_chat_templates"
    templates.mkdir()
    (templates / "tools.jinja").write_text("{{ messages }}")
    with_template = identity.folder_digest(folder)
    assert with_template != digest
    (templates / "tools.jinja").write_text("{{ message }}!")
    assert identity.folder_digest(folder) != with_template
    (folder / "tokenizer_config.json").write_text("{}")
    assert identity.folder_digest(folder) not in (digest, with_template)


@pytest.fixture
def patched(monkeypatch):
    """`model_identity` replaced by one whose revision is ``patched-<n>``; setting ``n`` changes what it builds."""
    real = identity.model_identity
    marker = {"n": 1}

    def model_identity(*args):
        return replace(real(*args), revision=f"patched-{marker['n']}")

    monkeypatch.setattr(identity, "model_identity", model_identity)
    return marker


def revision_of(fingerprint: dict) -> str:
    return json.loads(fingerprint["model"])["revision"]


def test_every_route_takes_its_identity_from_the_one_builder(t5_dir, tmp_path, patched):
    """A checkpoint, the provenance, the up-to-date record and check, Ray's manifest and workers: one builder."""
    source = tmp_path / "in.csv"
    source.write_text("text\n" + "".join(f"row {i}\n" for i in range(8)))
    out = tmp_path / "out.parquet"
    options = ScoreOptions(str(source), ("yes", "no"), str(out), chunk_rows=4, resume=True)
    model = ModelOptions(str(t5_dir), device="cpu")
    with pytest.raises(Interrupted):
        score_file(options, model, stop=StopAfter(1))
    checkpoint = json.loads((tmp_path / ".out.parquet.t5cls-parts" / "checkpoint.json").read_text())
    assert revision_of(checkpoint["fingerprint"]) == "patched-1"  # the local checkpoint
    score_file(options, model)
    assert pq.read_schema(out).metadata[b"t5cls.model_revision"] == b"patched-1"  # the provenance
    record = json.loads((tmp_path / ".out.parquet.t5cls-done").read_text())
    assert revision_of(record["fingerprint"]) == "patched-1"  # the up-to-date record
    assert up_to_date(plan_for(options), model)
    patched["n"] = 2
    assert not up_to_date(plan_for(options), model)  # the up-to-date check builds it again, the same way

    pytest.importorskip("ray")
    from t5cls.run.ray import RayRunner, ScoreWorker, WorkerSpec

    folder_options = replace(options, output=str(tmp_path / "scored"), resume=False)
    runner = RayRunner(ScorePlan.build(folder_options, folder_output=True), model, RayOptions())
    assert revision_of(runner.fingerprint()) == "patched-2"  # Ray's manifest (an explicit device: Ray not started)
    worker = ScoreWorker(WorkerSpec(runner.plan, runner.worker_model, runner.identity, str(tmp_path / "parts")))
    assert worker.metadata["t5cls.model_revision"] == "patched-2"  # a Ray worker's scorer
