"""``--engine ray`` on a two-node Ray cluster, with its input and output in a bucket of a real S3 endpoint.

The endpoint is ``moto_server`` on 127.0.0.1 (`helpers.s3`); t5cls reaches it through pyarrow's
own S3 client, configured by the environment only (``AWS_*``, ``AWS_ENDPOINT_URL``), as a job on a
cloud cluster would. The cluster is Ray's own `Cluster` utility: a head node and a second node,
each with its own raylet and one CPU, so two actors run on two nodes. Every output is compared
with local runs on local copies of the same files, value for value and with its metadata.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from helpers import s3 as s3_server
from helpers.cli import SINGLE_THREAD, assert_one_line_error, run_cli

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.timeout(600)  # generous: a Ray cluster and an S3 server on a shared 2-core machine

from helpers.configs import RELEVANCE  # noqa: E402
from helpers.ray_runs import CHUNK, LABELS, assert_same_tables, model_args, options, ray_runner  # noqa: E402
from helpers.ray_workers import CrashOnce  # noqa: E402
from t5cls.models.scorer import LabelScorer  # noqa: E402
from t5cls.options import RayOptions  # noqa: E402
from t5cls.run.job import score_file  # noqa: E402
from t5cls.run.manifest import JOB_FILE, MANIFEST  # noqa: E402
from t5cls.run.ray import ScoreWorker  # noqa: E402

FILES = ("a.csv", "b.jsonl", "more/c.parquet")

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test module


@pytest.fixture(scope="module")
def s3():
    with s3_server.start() as server:
        for bucket in ("input", "output"):
            server.filesystem().create_dir(bucket)
        yield server


@pytest.fixture(scope="module")
def cluster(s3):
    """Two Ray nodes whose workers, like the driver, find the endpoint and credentials in the environment."""
    from ray.cluster_utils import Cluster

    saved = dict(os.environ)
    os.environ.update(s3.environment())  # the raylets start with it, and so their workers
    try:
        nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
        # Cluster records its address machine-wide (/tmp/ray/ray_current_cluster), where every plain
        # ray.init() on this machine would join it, other test runs included: the record goes at once.
        ray._common.utils.reset_ray_address()
        nodes.add_node(num_cpus=1)
        nodes.wait_for_nodes()
    except Exception as err:  # no room for a second raylet on this machine: say so
        os.environ.clear()
        os.environ.update(saved)
        pytest.skip(f"a two-node Ray cluster could not start here ({str(err).splitlines()[0]})")
    ray.init(
        address=nodes.address,
        log_to_driver=False,
        runtime_env={"env_vars": {**SINGLE_THREAD, "HF_HUB_OFFLINE": "1"}},
    )
    yield nodes
    ray.shutdown()
    nodes.shutdown()
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="module")
def dataset(s3, tmp_path_factory):
    """A CSV, a JSONL (an array column, kept as JSON text) and a Parquet file, local and in the bucket."""
    root = tmp_path_factory.mktemp("s3-data") / "data"
    (root / "more").mkdir(parents=True)
    reviews = pd.read_csv(Path(__file__).parents[1] / "sample_data" / "reviews.csv", dtype=str)
    reviews.iloc[:13].to_csv(root / "a.csv", index=False)
    lines = [{"id": "007", "text": "two\nlines", "n": 1, "tags": ["a"]}, {"id": "8", "text": "plain", "n": 2.5}]
    (root / "b.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    reviews.iloc[13:30].to_parquet(root / "more" / "c.parquet", index=False)
    s3.upload(root, "s3://input/data")
    return root


def assert_same_as_local(s3, prefix: str, dataset: Path, model_dir, tmp_path, chunk_rows: int = CHUNK) -> None:
    """The bucket holds exactly the manifest and its parts, equal file by file to local runs."""
    written = s3.objects(prefix)
    manifest = json.loads(written[MANIFEST])
    assert [entry["path"] for entry in manifest["inputs"]] == [f"s3://input/data/{name}" for name in FILES]
    assert sorted(written) == sorted([MANIFEST] + [part for entry in manifest["inputs"] for part in entry["parts"]])
    tables = [
        pa.concat_tables([pq.read_table(pa.BufferReader(written[part])) for part in entry["parts"]])
        for entry in manifest["inputs"]
    ]
    assert_same_tables(tables, [dataset / name for name in FILES], model_dir, tmp_path, chunk_rows=chunk_rows)
    assert not s3.objects(f"output/.{prefix.rpartition('/')[2]}.t5cls-parts"), "the run's records were left behind"
    assert not any(s3.secret.encode() in data for data in written.values()), "a secret was written to the output"


def test_bucket_to_bucket_with_a_killed_actor_equals_local_runs(s3, cluster, dataset, t5_dir, tmp_path):
    """Input and output in buckets; an actor dies mid-run and its chunk is retried into the same part."""
    marker = tmp_path / "crashed"
    runner = ray_runner(options("s3://input/data/", "s3://output/scored/"), model_args(t5_dir), RayOptions(2))
    runner.worker_class = type("CrashOnceHere", (CrashOnce,), {"marker": str(marker)})
    summary = runner.run()
    assert marker.exists(), "the injected crash did not happen"
    assert summary.rows == 13 + 2 + 17 and summary.output == "s3://output/scored"
    assert_same_as_local(s3, "output/scored", dataset, t5_dir, tmp_path)
    assert pq.read_table("output/scored", filesystem=s3.filesystem()).num_rows == 32  # the prefix reads as one table


def test_killed_driver_resumes_from_the_parts_recorded(s3, cluster, dataset, t5_dir, tmp_path):
    """SIGKILL to the driver mid-run: no manifest; ``--resume`` continues from the records, changed options refuse."""
    address = cluster.address
    args = ["score", "s3://input/data", "-l", LABELS, "-m", t5_dir, "--engine", "ray", "-o", "s3://output/killed"]
    args += ["--chunk-size", "2", "-q"]  # 17 chunks: time to kill the driver between two of them
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAY_ADDRESS": address}
    # The command itself, with actors that take half a second a chunk: the kill then lands mid-run however fast
    # the machine (unslowed, an idle machine could finish the 17 chunks between two looks at the bucket).
    driver_script = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from helpers.ray_workers import SlowChunks\nfrom t5cls.run.ray import RayRunner\n"
        "RayRunner.worker_class = SlowChunks\nfrom t5cls.cli import main\n"
        f"sys.argv = ['t5cls', *{list(map(str, args))!r}]\nmain()\n"
    )
    driver = subprocess.Popen([sys.executable, "-c", driver_script], env=env, stderr=subprocess.PIPE)
    state = "output/.killed.t5cls-parts"
    deadline = time.monotonic() + 300
    while sum(name.startswith("done-") for name in s3.names(state)) < 2 and time.monotonic() < deadline:
        if driver.poll() is not None:
            stderr = driver.stderr.read().decode()
            assert driver.returncode == 0, stderr
            # Seen once in a full suite run (never alone): every summary reached the driver at the end, so no
            # moment held two records to resume from. Said, not passed: CI prints the reason (-rs).
            pytest.skip("the driver finished before two chunks were recorded: no mid-run moment to kill it at")
        time.sleep(0.1)
    driver.send_signal(signal.SIGKILL)
    driver.wait(timeout=30)
    driver.stderr.close()
    recorded = sum(name.startswith("done-") for name in s3.names(state))
    assert 2 <= recorded < 17 and MANIFEST not in s3.names("output/killed"), "the run was not killed mid-way"

    changed = run_cli(*args[:3], "positive,negative", *args[4:], "--resume", env={"RAY_ADDRESS": address})
    assert_one_line_error(
        changed,
        "cannot resume s3://output/killed: --labels changed (was positive,negative,not sure, now positive,negative)",
    )

    resumed = run_cli(*args, "--resume", env={"RAY_ADDRESS": address})
    assert resumed.returncode == 0, resumed.stderr.decode()
    assert "t5cls: 32 rows" in resumed.stderr.decode()
    assert JOB_FILE not in s3.names(state)
    assert_same_as_local(s3, "output/killed", dataset, t5_dir, tmp_path, chunk_rows=2)


@pytest.mark.parametrize(
    "source, output, secret, fragments",
    [
        ("s3://input/data", "s3://no-such-bucket/out", None, ["s3://no-such-bucket/out: bucket 'no-such-bucket'"]),
        ("s3://no-such-bucket/data", "s3://output/x", None, ["s3://no-such-bucket/data"]),
        ("s3://input/data", "s3://output/x", "wrong-secret", ["s3://input/data: "]),
        ("s3://key:pw@input/data", "s3://output/x", None, ["s3://input/data: credentials in a URI"]),
    ],
)
def test_storage_errors_are_one_line_naming_the_uri(s3, dataset, source, output, secret, fragments):
    result = run_cli(
        "score", source, "-l", LABELS, "-m", "unused", "--engine", "ray", "-o", output,
        env=s3.environment(secret),
        timeout=120,
    )  # fmt: skip
    assert_one_line_error(result, *fragments)
    assert s3.secret not in result.stderr.decode() and ":pw@" not in result.stderr.decode()


def test_rank_by_in_a_bucket_equals_the_local_run(s3, cluster, t5_dir, tmp_path):
    """The rank pass on object storage: the prefix shows only ranked parts and the manifest, as a local run ranks."""
    texts = ["the pasta was great", "rude waiter, cold food", "never again", "lovely staff", "fine"]
    source = tmp_path / "r.csv"
    source.write_text("id,query,text\n" + "".join(f'{i},q{i % 3},"{texts[(i * 2) % 5]}"\n' for i in range(11)))
    (tmp_path / "rel.toml").write_text(RELEVANCE)
    s3.upload(source, "s3://input/rank/r.csv")
    fields = {"config": str(tmp_path / "rel.toml"), "rank_by": "query", "labels": None}
    summary = ray_runner(
        options("s3://input/rank/r.csv", "s3://output/ranked", **fields), model_args(t5_dir), RayOptions(2)
    ).run()
    assert summary.rows == 11
    written = s3.objects("output/ranked")
    manifest = json.loads(written[MANIFEST])
    assert sorted(written) == sorted([MANIFEST, *manifest["inputs"][0]["parts"]])
    assert not s3.objects("output/.ranked.t5cls-parts"), "the unranked parts were left behind"
    score_file(options(source, tmp_path / "local.parquet", **fields), LabelScorer.from_options(model_args(t5_dir)))
    local = pq.read_table(tmp_path / "local.parquet")
    table = pa.concat_tables([pq.read_table(pa.BufferReader(written[part])) for part in manifest["inputs"][0]["parts"]])
    assert table.equals(local) and table.schema.metadata == local.schema.metadata


class OnNode(ScoreWorker):
    """Notes its node once it has scored a chunk (a file per node in ``folder``), then waits for the other node's.

    So the run cannot end, however the machine's load delays one actor's start, before both
    nodes have scored: the state the test kills a node in. Each chunk also takes its time, so the
    kill falls mid-run.
    """

    folder: str

    def score_chunk(self, *args):
        scored = super().score_chunk(*args)
        Path(self.folder, ray.get_runtime_context().get_node_id()).touch()
        deadline = time.monotonic() + 240
        while len(os.listdir(self.folder)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        return scored


def test_a_node_killed_mid_run_loses_no_row(s3, cluster, dataset, t5_dir, tmp_path):
    """Actors on both nodes; the second node's raylet is killed once both have scored: the run finishes whole.

    Runs last in this module: it takes the second node away (and starts another for any test after it).
    """
    import threading

    seen = tmp_path / "nodes"
    seen.mkdir()
    second = next(node for node in cluster.list_all_nodes() if not node.head)
    deadline = time.monotonic() + 120  # the actors of earlier runs (a killed driver's) may still hold a CPU
    while ray.available_resources().get("CPU", 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert ray.available_resources().get("CPU", 0) == 2, "a CPU of the cluster is still held by an earlier run"
    runner = ray_runner(
        options("s3://input/data", "s3://output/nodes", chunk_rows=2), model_args(t5_dir), RayOptions(2)
    )
    runner.worker_class = type("OnNodeHere", (OnNode,), {"folder": str(seen)})

    def kill_when_both_nodes_worked() -> None:
        deadline = time.monotonic() + 300  # the actors wait for each other (OnNode) up to 240 s
        while len(list(seen.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        cluster.remove_node(second, allow_graceful=False)

    killer = threading.Thread(target=kill_when_both_nodes_worked)
    killer.start()
    try:
        summary = runner.run()
    finally:
        killer.join()
        cluster.add_node(num_cpus=1)
    assert len(list(seen.iterdir())) == 2, "the actors did not run on both nodes"
    assert summary.rows == 32
    assert_same_as_local(s3, "output/nodes", dataset, t5_dir, tmp_path, chunk_rows=2)
