"""A local run (``--engine local``) whose ``-o`` is a URI: Parquet in a bucket of a real S3 endpoint, or ``file://``.

The endpoint is ``moto_server`` on 127.0.0.1 (`helpers.s3`), reached through pyarrow's own S3
client configured by the environment only. Every object written is compared with the same run to a
local file. What must hold there as on a disk: the output object appears only complete (an
interrupted run, or a join that fails, leaves only the hidden ``.<name>.t5cls-parts/`` prefix),
``--resume`` continues from the recorded parts, a changed option refuses to resume, and no secret
is written.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from helpers import s3 as s3_server
from helpers.cli import assert_one_line_error, run_cli
from helpers.labels import UNSURE_FLAG as LABELS
from helpers.runs import StopAfter
from t5cls.errors import Interrupted, OptionError
from t5cls.io import output as output_module
from t5cls.models.scorer import LabelScorer
from t5cls.options import ModelOptions, ScoreOptions
from t5cls.run.job import score_file
from t5cls.run.plan import ScorePlan

pytestmark = pytest.mark.timeout(600)  # an S3 server on a shared 2-core machine

CHUNK = 4
ROWS = 13  # four chunks: 4, 4, 4, 1
BUCKET = "scores"
STATE = ".x.parquet.t5cls-parts/"


@pytest.fixture(scope="module")
def s3():
    """The server, a bucket, and this process's environment pointing pyarrow at it."""
    with s3_server.start() as server:
        server.filesystem().create_dir(BUCKET)
        with pytest.MonkeyPatch.context() as patch:
            for name, value in server.environment().items():
                patch.setenv(name, value)
            yield server


@pytest.fixture(scope="module")
def reviews(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("local-storage") / "reviews.csv"
    data = pd.read_csv(Path(__file__).parents[1] / "sample_data" / "reviews.csv", dtype=str)
    data.iloc[:ROWS].to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def scorer(t5_dir) -> LabelScorer:
    return LabelScorer.from_options(ModelOptions(name_or_path=str(t5_dir), batch_size=3))


@pytest.fixture(scope="module")
def reference(reviews, scorer, tmp_path_factory) -> Path:
    """The same run to a local Parquet file."""
    out = tmp_path_factory.mktemp("reference") / "x.parquet"
    score_file(options(reviews, out), scorer)
    return out


def options(source, output, **fields) -> ScoreOptions:
    fields = {"chunk_rows": CHUNK, "labels": LABELS, **fields}
    return ScoreOptions(input=str(source), output=str(output), **fields)


def assert_same_as(data: bytes, reference: Path) -> None:
    table, local = pq.read_table(pa.BufferReader(data)), pq.read_table(reference)
    assert table.equals(local), "the object differs from the local run"
    assert table.schema.metadata == local.schema.metadata
    assert data == reference.read_bytes()


def test_a_run_to_s3_equals_the_run_to_a_local_file(s3, reviews, scorer, reference):
    summary = score_file(options(reviews, f"s3://{BUCKET}/whole/x.parquet"), scorer)
    assert summary.rows == ROWS
    written = s3.objects(f"{BUCKET}/whole")
    assert sorted(written) == ["x.parquet"]  # the hidden state is gone, no lock or record beside it
    assert_same_as(written["x.parquet"], reference)


def test_an_interrupted_run_leaves_only_its_state_then_resumes(s3, reviews, scorer, reference):
    uri = f"s3://{BUCKET}/cut/x.parquet"
    with pytest.raises(Interrupted, match="checkpoint kept"):
        score_file(options(reviews, uri), scorer, stop=StopAfter(1))
    state = s3.objects(f"{BUCKET}/cut")
    assert sorted(state) == [STATE + name for name in ("checkpoint.json", "part-000000.parquet", "part-000001.parquet")]
    assert not any(s3.secret.encode() in data for data in state.values())
    changed = options(reviews, uri, labels="positive,negative", resume=True)
    with pytest.raises(OptionError, match=rf"^cannot resume {uri}: .*labels.* changed \(was {LABELS}, now positive"):
        score_file(changed, scorer)
    assert sorted(s3.objects(f"{BUCKET}/cut")) == sorted(state)  # refused before touching anything
    summary = score_file(options(reviews, uri, resume=True), scorer)
    assert (summary.rows, summary.scored_now) == (ROWS, ROWS - 2 * CHUNK)
    written = s3.objects(f"{BUCKET}/cut")
    assert sorted(written) == ["x.parquet"]
    assert_same_as(written["x.parquet"], reference)


def test_a_join_that_fails_midway_publishes_nothing_and_keeps_the_parts(s3, reviews, scorer, reference, monkeypatch):
    uri = f"s3://{BUCKET}/join/x.parquet"
    real = output_module._parquet_row_groups

    def fails_after_the_first_group(parts):
        groups = real(parts)
        yield next(groups)
        raise RuntimeError("the join failed")

    monkeypatch.setattr(output_module, "_parquet_row_groups", fails_after_the_first_group)
    with pytest.raises(RuntimeError, match="the join failed"):
        score_file(options(reviews, uri), scorer)
    kept = s3.names(f"{BUCKET}/join")
    assert kept == [STATE + "checkpoint.json"] + [f"{STATE}part-00000{i}.parquet" for i in range(4)]
    monkeypatch.undo()
    summary = score_file(options(reviews, uri, resume=True), scorer)
    assert (summary.rows, summary.scored_now) == (ROWS, 0)
    written = s3.objects(f"{BUCKET}/join")
    assert sorted(written) == ["x.parquet"]
    assert_same_as(written["x.parquet"], reference)


def test_the_cli_writes_to_s3_and_refuses_a_missing_bucket_or_bad_credentials(s3, reviews, t5_dir, reference):
    def score(out, env=None):
        arguments = [reviews, "-l", LABELS, "-m", t5_dir, "-o", out, "--chunk-size", CHUNK, "--batch-size", 3, "-q"]
        return run_cli("score", *arguments, env=env or s3.environment())

    result = score(f"s3://{BUCKET}/cli/x.parquet")
    assert result.returncode == 0, result.stderr.decode()
    assert_same_as(s3.objects(f"{BUCKET}/cli")["x.parquet"], reference)
    missing = score("s3://no-such-bucket/x.parquet")
    assert_one_line_error(missing, "s3://no-such-bucket/x.parquet", "bucket 'no-such-bucket' does not exist")
    refused = score(f"s3://{BUCKET}/denied/x.parquet", env=s3.environment(secret="not-the-secret"))
    assert_one_line_error(refused, f"s3://{BUCKET}/denied/x.parquet", "credentials")
    assert "not-the-secret" not in refused.stderr.decode()
    assert s3.names(f"{BUCKET}/denied") == []


@pytest.mark.parametrize("name", ["x.csv", "x.jsonl"])
def test_csv_or_jsonl_to_object_storage_is_refused_up_front(reviews, t5_dir, name):
    result = run_cli("score", reviews, "-l", LABELS, "-m", t5_dir, "-o", f"s3://{BUCKET}/{name}")
    assert_one_line_error(result, f"-o s3://{BUCKET}/{name}", "Parquet", "footer", "local path")


def test_ranking_to_object_storage_is_refused(reviews, tmp_path):
    config = tmp_path / "rank.toml"
    config.write_text(
        '[[task]]\nname = "s"\ntemplate = "{text}"\nlabels = ["positive", "negative"]\npositive = "positive"\n'
    )
    job = ScoreOptions(str(reviews), output=f"s3://{BUCKET}/x.parquet", config=str(config), rank_by="label")
    with pytest.raises(OptionError, match=r"rank_by.*object storage.*local path, or score with ray, whose"):
        ScorePlan.build(job)


@pytest.mark.parametrize("name", ["x.parquet", "x.csv", "x.tsv"])
def test_a_secret_in_the_output_uri_is_refused_first(reviews, name):
    with pytest.raises(Exception, match=rf"^s3://scores/{name}: credentials in a URI") as raised:
        ScorePlan.build(options(reviews, f"s3://key:hunter2@scores/{name}"))
    assert "hunter2" not in str(raised.value)


@pytest.mark.parametrize("name", ["x.parquet", "x.csv"])
def test_a_file_uri_is_a_local_path(reviews, scorer, reference, tmp_path, name):
    out = tmp_path / "sub" / name
    summary = score_file(options(reviews, f"file://{out}", resume=True), scorer)
    assert summary.output == str(out)
    assert sorted(os.listdir(out.parent)) == [f".{name}.t5cls-done", name]  # the local up-to-date record
    if name.endswith(".parquet"):
        assert_same_as(out.read_bytes(), reference)
    else:
        local = tmp_path / "local.csv"
        score_file(options(reviews, local), scorer)
        assert out.read_bytes() == local.read_bytes()
