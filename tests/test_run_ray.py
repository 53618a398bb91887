"""``--engine ray`` on a local 2-CPU Ray: the same output as local runs, retries without loss, resume.

Every Ray run here is compared with local runs (`score_file`) on each input file, value for value
and including the Parquet metadata: the chunks are the same, so the numbers are bit-identical.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from helpers.cli import SINGLE_THREAD, assert_one_line_error, run_cli

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.timeout(300)  # a scheduling deadlock (reads starved by actors) hangs rather than fails

from helpers.configs import RELEVANCE  # noqa: E402
from helpers.ray_runs import CHUNK, LABELS, assert_same_tables, local_outputs, model_args, options, ray_runner  # noqa: E402
from helpers.ray_workers import CrashOnce, FullDiskOnce  # noqa: E402
from helpers.runs import StopAfter  # noqa: E402
from t5cls.errors import FileSystemError, InputError, Interrupted  # noqa: E402
from t5cls.options import RayOptions  # noqa: E402
from t5cls.run.job import score_file  # noqa: E402
from t5cls.run.manifest import MANIFEST  # noqa: E402
from t5cls.run.ranking import ranks_within_groups  # noqa: E402

TWO_WORKERS = RayOptions(num_workers=2)  # every CPU held by an actor: the reads must still run

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test module


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    # Two GPUs that Ray schedules but torch cannot see: GPU actors get placed, then score on the CPU.
    ray.init(
        num_cpus=2,
        num_gpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {**SINGLE_THREAD, "HF_HUB_OFFLINE": "1"}},
    )
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Two CSV files (one with quoted newlines and codes like 007) and a Parquet file in a subfolder."""
    root = tmp_path_factory.mktemp("ray-data") / "data"
    (root / "more").mkdir(parents=True)
    reviews = pd.read_csv(Path(__file__).parents[1] / "sample_data" / "reviews.csv", dtype=str)
    reviews.iloc[:13].to_csv(root / "a.csv", index=False)
    (root / "b.csv").write_text('id,text\n007,"two\nlines, ""quoted"""\nNA,plain\n')
    reviews.iloc[13:30].to_parquet(root / "more" / "c.parquet", index=False)
    (root / "_ignored.csv").write_text("id,text\n1,skipped: names starting with _ are not data\n")
    return root


def ray_outputs(output: Path) -> tuple[dict, list[pa.Table]]:
    """The manifest, and each input file's rows read back from its parts."""
    manifest = json.loads((output / MANIFEST).read_text())
    return manifest, [
        pa.concat_tables([pq.read_table(output / part) for part in entry["parts"]]) for entry in manifest["inputs"]
    ]


def assert_same_as_local(output: Path, files, model_dir, tmp_path, **fields):
    manifest, tables = ray_outputs(output)
    assert [entry["path"] for entry in manifest["inputs"]] == [str(path) for path in files]
    assert_same_tables(tables, files, model_dir, tmp_path, **fields)
    whole = pq.read_table(output)  # the part names sort into input order
    assert whole.column("id").to_pylist() == [i for table in tables for i in table.column("id").to_pylist()]


def test_multi_file_dataset_equals_local_runs(dataset, t5_dir, tmp_path):
    out = tmp_path / "scored"
    summary = ray_runner(options(dataset, out), model_args(t5_dir), TWO_WORKERS).run()
    files = [dataset / "a.csv", dataset / "b.csv", dataset / "more" / "c.parquet"]
    assert_same_as_local(out, files, t5_dir, tmp_path)
    assert summary.rows == 13 + 2 + 17
    assert not (tmp_path / ".scored.t5cls-parts").exists()


def test_gpu_workers_default_to_one_per_gpu(dataset, t5_dir, tmp_path):
    def pool(**layout):
        return ray_runner(options(dataset, tmp_path / "scored"), model_args(t5_dir), RayOptions(**layout)).pool_size(
            ray
        )

    assert (pool(), pool(gpus_per_worker=1), pool(gpus_per_worker=0.5), pool(num_workers=3, gpus_per_worker=1)) == (
        1,
        2,
        4,
        3,
    )
    with pytest.raises(Exception, match="gpus_per_worker 4: the Ray cluster has 2 GPUs"):
        pool(gpus_per_worker=4)
    out = tmp_path / "scored"
    ray_runner(options(dataset, out), model_args(t5_dir), RayOptions(gpus_per_worker=1)).run()
    assert_same_as_local(out, [dataset / "a.csv", dataset / "b.csv", dataset / "more" / "c.parquet"], t5_dir, tmp_path)


def test_glob_of_uris_with_a_task_config_to_a_file_uri(dataset, t5_dir, tmp_path):
    out = tmp_path / "scored"
    spec = f"file://{dataset}/[ab].csv"
    config = {"config": str(Path(__file__).parents[1] / "configs" / "sentiment.toml"), "logprobs": True}
    ray_runner(options(spec, f"file://{out}/", **config), model_args(t5_dir), RayOptions()).run()  # a local disk
    assert not (tmp_path / ".scored.t5cls-parts").exists()
    assert_same_as_local(out, [f"file://{dataset}/a.csv", f"file://{dataset}/b.csv"], t5_dir, tmp_path, **config)
    assert "sentiment_p_positive" in pq.read_table(out).column_names


def test_crashed_actor_is_retried_without_losing_or_duplicating_rows(dataset, t5_dir, tmp_path):
    marker = tmp_path / "crashed"
    worker = type("CrashOnceHere", (CrashOnce,), {"marker": str(marker)})
    runner = ray_runner(options(dataset, tmp_path / "scored"), model_args(t5_dir), TWO_WORKERS)
    runner.worker_class = worker
    runner.run()
    assert marker.exists(), "the injected crash did not happen"
    files = [dataset / "a.csv", dataset / "b.csv", dataset / "more" / "c.parquet"]
    assert_same_as_local(tmp_path / "scored", files, t5_dir, tmp_path)


def test_a_part_that_cannot_be_written_stops_the_run_in_one_line_and_resumes(dataset, t5_dir, tmp_path):
    """A worker's disk is full for one part: exit 5 naming it, the chunks written before kept, --resume finishes."""
    marker, out = tmp_path / "full", tmp_path / "scored"
    job_options = options(dataset, out)
    runner = ray_runner(job_options, model_args(t5_dir), RayOptions())
    runner.worker_class = type("FullDiskHere", (FullDiskOnce,), {"marker": str(marker)})
    with pytest.raises(FileSystemError) as raised:
        runner.run()
    assert marker.exists(), "the injected fault did not happen"
    parts = tmp_path / ".scored.t5cls-parts"
    message = str(raised.value)
    assert raised.value.exit_code == 5 and "\n" not in message
    assert message.startswith(f"{parts}/part-0000") and ": cannot write: No space left on device; " in message
    assert message.endswith("(or raise the quota), then rerun with --resume")
    assert not out.exists()
    kept = sorted(p.name for p in parts.iterdir() if p.name.startswith("done-"))
    assert len(kept) == 2  # the chunks finished before the fault, kept for --resume
    summary = ray_runner(replace(job_options, resume=True), model_args(t5_dir), RayOptions()).run()
    assert summary.scored_now < summary.rows == 32
    assert_same_as_local(out, [dataset / "a.csv", dataset / "b.csv", dataset / "more" / "c.parquet"], t5_dir, tmp_path)


def test_interrupted_run_resumes_to_the_same_output(dataset, t5_dir, tmp_path):
    out = tmp_path / "scored"
    job_options = options(dataset / "a.csv", out)
    with pytest.raises(Interrupted, match=r"rerun the same command with resume$") as raised:
        # SIGINT during the first chunk
        ray_runner(job_options, model_args(t5_dir), RayOptions()).run(stop=StopAfter(0, signal.SIGINT))
    assert raised.value.for_flags({"resume": "--resume"}).endswith("with --resume")  # as the CLI shows it
    assert not out.exists()
    parts = tmp_path / ".scored.t5cls-parts"
    (parts / ".done-000000-000000001.json.0123.tmp").write_text('{"file": 0, "chunk": 1, "first')  # killed mid-record
    (parts / ".part-000000-000000002.parquet.0123.tmp").write_text("killed mid-write")
    changed = replace(job_options, labels="positive,negative", resume=True)
    with pytest.raises(Exception, match=r"cannot resume .*labels changed \(was positive,negative,not sure, now pos"):
        ray_runner(changed, model_args(t5_dir), RayOptions()).run()
    resumed = ray_runner(replace(job_options, resume=True), model_args(t5_dir), RayOptions())
    summary = resumed.run()
    assert summary.rows == 13 and summary.scored_now < 13
    assert_same_as_local(out, [str(dataset / "a.csv")], t5_dir, tmp_path)
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST] + [f"part-000000-00000000{i}.parquet" for i in range(4)]


@pytest.fixture(scope="module")
def ranking_data(tmp_path_factory):
    """Two CSV files whose queries (the groups) span both files, repeated texts for equal scores, and a config."""
    root = tmp_path_factory.mktemp("ray-rank")
    (root / "in").mkdir()
    texts = ["the pasta was great", "rude waiter, cold food", "never again", "lovely staff", "fine"]
    for name, count, shift in (("r1.csv", 10, 0), ("r2.csv", 7, 2)):
        rows = "".join(f'{name}-{i},q{(i + shift) % 3},"{texts[(i * 2) % 5]}"\n' for i in range(count))
        (root / "in" / name).write_text("id,query,text\n" + rows)
    (root / "rel.toml").write_text(RELEVANCE)
    return root


def ranking_files(data) -> list[Path]:
    return [data / "in" / "r1.csv", data / "in" / "r2.csv"]


def ranking_fields(data) -> dict:
    return {"config": str(data / "rel.toml"), "rank_by": "query"}


def assert_ranked_across_files(output: Path, files, data, model_dir, tmp_path):
    """Ranks over the whole output (files in order, then rows); every other column as each file's local run."""
    manifest, tables = ray_outputs(output)
    assert [entry["path"] for entry in manifest["inputs"]] == [str(path) for path in files]
    assert manifest["rankings"] == [{"score_column": "rel_score", "group_column": "query", "rank_column": "rel_rank"}]
    locals_ = local_outputs(files, model_dir, tmp_path, **ranking_fields(data))
    for table, local in zip(tables, locals_):
        assert table.column_names == local.column_names
        rank = table.column_names.index("rel_rank")
        assert table.remove_column(rank).equals(local.remove_column(rank))
        assert table.schema.metadata == local.schema.metadata
    whole = pa.concat_tables(locals_)
    expected = ranks_within_groups(whole.column("query").to_pylist(), whole.column("rel_score").to_numpy())
    assert pq.read_table(output).column("rel_rank").to_pylist() == expected.tolist()
    assert expected.tolist() != whole.column("rel_rank").to_pylist()  # the groups do span the files
    assert [p.name for p in output.parent.iterdir() if p.name.startswith(".")] == []


def test_rank_by_on_one_file_equals_the_local_run(ranking_data, t5_dir, tmp_path):
    out = tmp_path / "scored"
    source = ranking_data / "in" / "r1.csv"
    summary = ray_runner(options(source, out, **ranking_fields(ranking_data)), model_args(t5_dir), TWO_WORKERS).run()
    assert summary.rows == 10
    assert_same_as_local(out, [source], t5_dir, tmp_path, **ranking_fields(ranking_data))
    assert pq.read_table(out).column_names[-2:] == ["rel_score", "rel_rank"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["local-0.parquet", "scored"]


def test_rank_by_ranks_groups_that_span_files_and_parts(ranking_data, t5_dir, tmp_path):
    out = tmp_path / "scored"
    job = options(ranking_data / "in", out, **ranking_fields(ranking_data))
    ray_runner(job, model_args(t5_dir), TWO_WORKERS).run()
    assert_ranked_across_files(out, ranking_files(ranking_data), ranking_data, t5_dir, tmp_path)


def test_rank_by_to_a_file_uri(ranking_data, t5_dir, tmp_path):
    out = tmp_path / "scored"
    job = options(f"file://{ranking_data}/in/", f"file://{out}/", **ranking_fields(ranking_data))
    ray_runner(job, model_args(t5_dir), RayOptions()).run()
    files = [f"file://{ranking_data}/in/r1.csv", f"file://{ranking_data}/in/r2.csv"]
    assert_ranked_across_files(out, files, ranking_data, t5_dir, tmp_path)


def test_rank_by_dry_run_shows_the_first_file(ranking_data, t5_dir, tmp_path):
    job = options(ranking_data / "in", tmp_path / "scored", **ranking_fields(ranking_data))
    summary = score_file(job, model_args(t5_dir), ray=RayOptions(), dry_run=True)
    assert summary.plan.startswith("engine: ray, 2 input files; the first one:\n")
    assert "  Query: q0 Document: the pasta was great Relevant:\n" in summary.plan
    assert f"\noutput: {tmp_path / 'scored'} (a folder of Parquet parts)\n" in summary.plan
    assert "stdout" not in summary.plan
    assert list(tmp_path.iterdir()) == []


def test_run_stopped_after_scoring_and_during_the_rank_pass_resumes(ranking_data, t5_dir, tmp_path):
    out = tmp_path / "scored"
    job = options(ranking_data / "in", out, **ranking_fields(ranking_data))
    state, ranked = tmp_path / ".scored.t5cls-parts", tmp_path / ".scored.t5cls-ranked"
    with pytest.raises(Interrupted, match=r"5 chunks kept, rerun the same command with resume$"):
        ray_runner(job, model_args(t5_dir), TWO_WORKERS).run(stop=StopAfter(4, signal.SIGINT))  # after the last chunk
    assert not out.exists() and not ranked.exists()
    assert sum(name.startswith("part-") for name in os.listdir(state)) == 5
    resumed = ray_runner(replace(job, resume=True), model_args(t5_dir), TWO_WORKERS)
    with pytest.raises(Interrupted, match=r"interrupted while ranking; 5 chunks kept"):
        resumed.run(stop=StopAfter(2, signal.SIGINT))  # two parts ranked, then the stop
    assert not out.exists()
    assert sorted(os.listdir(ranked)) == ["part-000000-000000000.parquet", "part-000000-000000001.parquet"]
    (ranked / ".part-000000-000000002.parquet.0123.tmp").write_text("killed mid-write")
    summary = resumed.run()
    assert (summary.rows, summary.scored_now) == (17, 0)
    assert_ranked_across_files(out, ranking_files(ranking_data), ranking_data, t5_dir, tmp_path)
    parts = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]
    assert sorted(os.listdir(out)) == [MANIFEST] + [f"part-00000{f}-00000000{c}.parquet" for f, c in parts]


def test_jsonl_files_are_typed_as_local_runs_type_them(t5_dir, tmp_path):
    """Each JSONL file keeps the one schema a local run gives it (mixed kinds as JSON text, ints widened to floats)."""
    (tmp_path / "in").mkdir()
    first = [{"id": "007", "text": "good", "n": 1}, {"id": 8, "text": "bad", "n": 2.5}, {"id": None, "text": "meh"}]
    second = [{"id": [1, 2], "text": "fine", "n": 3}]
    for name, lines in (("a.jsonl", first), ("b.jsonl", second)):
        (tmp_path / "in" / name).write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "scored"
    ray_runner(options(tmp_path / "in", out, chunk_rows=2), model_args(t5_dir), TWO_WORKERS).run()
    files = [tmp_path / "in" / "a.jsonl", tmp_path / "in" / "b.jsonl"]
    assert_same_as_local(out, files, t5_dir, tmp_path, chunk_rows=2)
    assert pq.read_table(out / "part-000000-000000000.parquet").schema.field("id").type == pa.json_()

    (tmp_path / "in" / "b.jsonl").write_text('{"id": [3], "text": "fine", "n": "three"}\n')
    with pytest.raises(InputError, match=r"b.jsonl: column 'n' is string, but in .*a.jsonl it is double"):
        ray_runner(options(tmp_path / "in", out), model_args(t5_dir), TWO_WORKERS)


def test_cli_scores_a_folder_and_replaces_its_earlier_output(dataset, t5_dir, tmp_path):
    out = tmp_path / "scored"
    for _ in range(2):
        result = run_cli(
            "score",
            dataset,
            "-l",
            LABELS,
            "-m",
            t5_dir,
            "--engine",
            "ray",
            "-o",
            out,
            "--chunk-size",
            CHUNK,
            "-q",
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr.decode()
        assert result.stderr.decode().strip().splitlines()[-1].startswith("t5cls: 32 rows, 0 skipped")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    manifest, tables = ray_outputs(out)
    assert sum(table.num_rows for table in tables) == manifest["rows"] == 32


def test_cli_worker_error_is_one_line(dataset, t5_dir, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "blank.csv").write_text("id,text\n1,fine\n2,\n")
    result = run_cli("score", tmp_path / "in", "-l", LABELS, "-m", t5_dir, "--engine", "ray", "-o", tmp_path / "out")
    assert result.returncode == 2, result.stderr.decode()
    last = result.stderr.decode().strip().splitlines()[-1]
    assert (
        last == f"t5cls: error: {tmp_path / 'in' / 'blank.csv'}: row 2: column 'text' is empty or null; "
        "fix the row or pass --on-null skip|empty"
    )


def test_a_damaged_file_found_by_a_ray_read_task_is_one_line(t5_dir, tmp_path):
    import gzip

    (tmp_path / "in").mkdir()
    data = gzip.compress(b"id,text\n" + b"".join(b"%d,review %d\n" % (i, i) for i in range(30000)))
    (tmp_path / "in" / "cut.csv.gz").write_bytes(data[: len(data) * 2 // 3])
    settings = replace(options(tmp_path / "in", tmp_path / "out"), chunk_rows=5000)
    runner = ray_runner(settings, model_args(t5_dir), TWO_WORKERS)
    with pytest.raises(InputError) as raised:
        runner.run()
    message = str(raised.value)
    assert message.startswith(f"{tmp_path / 'in' / 'cut.csv.gz'}: line ") and "\n" not in message
    assert "damaged or cut short" in message and not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["-", "-o", "out"], ["not stdin"]),
        (["data"], ["-o FOLDER"]),
        (["data", "-o", "out", "--format", "csv"], ["Parquet only"]),
        (["nowhere", "-o", "out"], ["nowhere: no such file"]),
        (["empty", "-o", "out"], ["empty: no CSV, JSONL or Parquet files found there"]),
        (["data", "-o", "s3://bucket?region=eu-west-1"], ["s3://bucket: name a folder inside the bucket"]),
        (["data", "-o", "taken"], ["taken: exists and is not a t5cls output folder"]),
        (["data", "-o", "out", "--num-workers", "0"], ["--num-workers must be at least 1"]),
        (["data", "-o", "o/r1.csv"], ["-o o/r1.csv names a .csv file", "folder of Parquet parts"]),
    ],
)
def test_cli_bad_ray_input_fails_before_starting_ray(dataset, tmp_path, args, fragments):
    (tmp_path / "data").symlink_to(dataset)
    (tmp_path / "empty").mkdir()
    (tmp_path / "taken").mkdir()
    result = run_cli("score", *args, "-l", LABELS, "-m", "unused", "--engine", "ray", cwd=tmp_path, timeout=60)
    assert_one_line_error(result, *fragments)
