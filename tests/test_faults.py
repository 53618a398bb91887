"""The machine failing under a run: a write refused at every moment, a SIGKILL at chosen moments, overlapping runs.

For each fault: the exit code, a one-line message naming the path and the fix, nothing at the
output path unless it is complete, no temporary file left, and ``--resume`` once the fault is gone
giving the bytes of a clean run (rows for Parquet). Writes fail through `helpers.faults.WriteFaults`
(the k-th write operation and every one after it, for every k of a small run), and through a real
64 KiB tmpfs in a private mount namespace where the machine allows it (root). Killed and
overlapping runs are forked processes: real ones, without a second start-up of torch.

CI (about 100 s) fails every k of a CSV run with a full disk, and for a read-only disk, a Parquet
output and a ranking pass every third k and the last three (the join's or ranking pass's write,
fsync and rename); it SIGKILLs a ranking run at two random moments and at its last three.
``T5CLS_FAULTS=all`` runs every k of every case, and kills at every k (several minutes).
"""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import signal
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from helpers.cli import Result, assert_one_line_error, invoke, run_forked, start_forked
from helpers.configs import RELEVANCE
from helpers.faults import NO_NAMESPACE, WriteFaults, grow_tmpfs, private_tmpfs
from t5cls.io.lock import output_lock

ALL = os.environ.get("T5CLS_FAULTS") == "all"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fault-inputs")
    rows = "".join(f'q{i % 4},"row {i}: {"good " * (i % 5)}, ""quoted"" {"bad " * (i % 3)}"\n' for i in range(20))
    (folder / "in.csv").write_text("query,text\n" + rows)
    (folder / "rel.toml").write_text(RELEVANCE)
    return folder


def arguments(model, inputs, out, kind):
    """The run of ``kind``: labels to CSV or Parquet (2 chunks), or a config with a ranking pass."""
    task = ["--config", inputs / "rel.toml", "--rank-by", "query"] if kind == "rank" else ["-l", "good,bad,not sure"]
    return ["score", inputs / "in.csv", *task, "-m", model, "-o", out, "--chunk-size", "10", "--batch-size", "8", "-q"]


def output_name(kind):
    return "out.parquet" if kind == "parquet" else "out.csv"


def same_output(out: Path, reference: Path) -> bool:
    if out.suffix == ".parquet":
        return pq.read_table(out).equals(pq.read_table(reference))
    return out.read_bytes() == reference.read_bytes()


def resumed_files(out: Path) -> list[str]:
    """What a finished ``--resume`` leaves in the output's folder: the output and its up-to-date record."""
    return sorted([out.name, f".{out.name}.t5cls-done"])


def leftovers(folder: Path) -> list[str]:
    """Temporary files anywhere under ``folder`` (a failed or killed write must leave none behind for good)."""
    return [str(p) for p in folder.rglob("*") if p.name.endswith((".tmp", ".t5cls-tmp"))]


@pytest.fixture(scope="module")
def clean_runs(t5_dir, inputs, tmp_path_factory):
    """Per kind: the output of an undisturbed run, and how many write operations it makes."""
    runs = {}
    for kind in ("csv", "parquet", "rank"):
        folder = tmp_path_factory.mktemp(f"clean-{kind}")
        out = folder / output_name(kind)
        with WriteFaults(folder) as counted:
            result = invoke(*arguments(t5_dir, inputs, out, kind))
        assert result.returncode == 0, result.stderr
        assert sorted(p.name for p in folder.iterdir()) == [out.name]
        runs[kind] = (out, counted.count)
    return runs


def moments(total: int, every: bool) -> list[int]:
    """Every write operation of a run, or every third and the last three."""
    return list(range(1, total + 1)) if every or ALL else sorted({*range(1, total + 1, 3), total - 2, total - 1, total})


@pytest.mark.parametrize(
    ("kind", "code", "fix", "every"),
    [
        ("csv", errno.ENOSPC, "free space on", True),
        ("csv", errno.EROFS, "is mounted read-only", False),
        ("parquet", errno.ENOSPC, "free space on", False),
        ("rank", errno.ENOSPC, "free space on", False),
    ],
)
def test_a_write_refused_at_any_moment(t5_dir, inputs, clean_runs, tmp_path, kind, code, fix, every):
    reference, total = clean_runs[kind]
    assert total > 15  # the lock, the parts folder, 2 parts and checkpoints, the join (and the ranking pass)
    for k in moments(total, every):
        folder = tmp_path / f"k{k}"
        folder.mkdir()
        out = folder / reference.name
        with WriteFaults(folder, fail_at=k, code=code):
            failed = invoke(*arguments(t5_dir, inputs, out, kind))
        assert_one_line_error(failed, str(folder), os.strerror(code), fix, "then rerun", code=5)
        assert not out.exists(), k
        assert leftovers(folder) == [], k
        resumed = invoke(*arguments(t5_dir, inputs, out, kind), "--resume")
        assert resumed.returncode == 0, (k, resumed.stderr)
        assert same_output(out, reference), k
        assert sorted(p.name for p in folder.iterdir()) == resumed_files(out), k  # no parts, lock or unranked file


def test_a_failed_part_keeps_the_finished_chunks_for_resume(t5_dir, inputs, clean_runs, tmp_path):
    """A full disk at the third part: the message says --resume, and the resumed run scores only what is left."""
    reference, _ = clean_runs["csv"]
    out = tmp_path / "out.csv"
    with WriteFaults(tmp_path) as counted:
        invoke(*arguments(t5_dir, inputs, out, "csv"))
    out.unlink()
    second_part = 1 + next(k for k, path in enumerate(counted.paths) if path and ".part-000001.csv." in path)
    with WriteFaults(tmp_path, fail_at=second_part):
        failed = invoke(*arguments(t5_dir, inputs, out, "csv"))
    assert_one_line_error(failed, ".out.csv.t5cls-parts/part-000001.csv: cannot write", "with --resume", code=5)
    checkpoint = json.loads((tmp_path / ".out.csv.t5cls-parts" / "checkpoint.json").read_text())
    assert [part["file"] for part in checkpoint["parts"]] == ["part-000000.csv"]
    resumed = invoke(*arguments(t5_dir, inputs, out, "csv"), "--resume", "-q")
    assert resumed.returncode == 0 and same_output(out, reference)


def test_sigkill_at_chosen_moments_then_resume(t5_dir, inputs, clean_runs, tmp_path):
    """Killed at random write operations and at the last ones (the ranking pass's write, fsync and rename)."""
    reference, total = clean_runs["rank"]
    chosen = range(1, total + 1) if ALL else {*random.Random(23).sample(range(1, total - 2), 2), total - 1, total}
    for k in sorted(chosen):
        folder = tmp_path / f"k{k}"
        folder.mkdir()
        out = folder / reference.name
        killed = run_forked(*arguments(t5_dir, inputs, out, "rank"), before=WriteFaults(folder, kill_at=k).install)
        assert killed.returncode == -signal.SIGKILL, (k, killed.stderr)
        assert not out.exists(), k
        resumed = invoke(*arguments(t5_dir, inputs, out, "rank"), "--resume")  # the dead run's lock died with it
        assert resumed.returncode == 0, (k, resumed.stderr)
        assert same_output(out, reference), k
        assert sorted(p.name for p in folder.iterdir()) == resumed_files(out), k


def test_an_overlapping_run_stops_at_once_and_touches_nothing(t5_dir, inputs, tmp_path):
    big = tmp_path / "big.csv"
    big.write_text((inputs / "in.csv").read_text() + "".join(f"q,row {i} of a longer input\n" for i in range(400)))
    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / "out.csv"
    args = arguments(t5_dir, inputs, out, "csv")
    args[1] = big
    pid = start_forked(lambda: invoke(*args).returncode)  # the first run, in a process of its own
    lock = folder / ".out.csv.t5cls-lock"
    deadline = time.monotonic() + 120
    while not (lock.exists() and lock.read_text()) and time.monotonic() < deadline:
        time.sleep(0.01)
    for extra in ([], ["--resume"]):
        with WriteFaults(folder) as touched:
            second = invoke(*args, *extra)
        assert_one_line_error(second, str(out), f"pid {pid} on ", "since ", "wait for it", code=2)
        assert touched.paths == [str(lock)]  # opened the existing lock file, nothing else
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    clean = tmp_path / "clean.csv"
    assert invoke(*[clean if a == out else a for a in args]).returncode == 0
    assert out.read_bytes() == clean.read_bytes()
    assert sorted(p.name for p in folder.iterdir()) == ["out.csv"]


def hold_lock(output: Path) -> int:
    """A forked process that holds the lock of ``output`` until killed; its pid, once it holds it."""
    ready, told = os.pipe()

    def hold() -> int:
        with output_lock(output):
            os.write(told, b"held")
            time.sleep(120)
        return 0

    pid = start_forked(hold)
    assert os.read(ready, 4) == b"held"
    os.close(ready)
    os.close(told)
    return pid


@pytest.mark.parametrize("command", ["calibrate", "train", "ray"])
def test_calibrate_train_and_ray_outputs_are_locked_too(t5_dir, tmp_path, command):
    dev = tmp_path / "dev.csv"
    dev.write_text("text,label\ngood,good\nbad,bad\n")
    out = tmp_path / {"calibrate": "fitted.toml", "train": "model", "ray": "scored"}[command]
    task = ["-l", "good,bad", "-m", t5_dir, "-o", out, "--device", "cpu"]
    args = ["score", dev, *task, "--engine", "ray"] if command == "ray" else [command, dev, "--gold", "label", *task]
    pid = hold_lock(out)
    try:
        result = invoke(*args)
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert_one_line_error(result, str(out), f"pid {pid}", code=2)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".{out.name}.t5cls-lock", "dev.csv"]  # the dead holder's


def test_a_real_full_tmpfs(t5_dir, inputs, tmp_path):
    """A 64 KiB tmpfs in a private mount namespace: exit 5 naming it, then more room and --resume give the bytes."""
    big = tmp_path / "big.csv"
    big.write_text("query,text\n" + "".join(f'q,"{"long text " * 40}{i}"\n' for i in range(200)))
    disk, copy = tmp_path / "disk", tmp_path / "copy.csv"
    disk.mkdir()
    args = arguments(t5_dir, inputs, disk / "out.csv", "csv")
    args[1] = big
    args[args.index("--chunk-size") + 1] = "50"

    def run() -> int:
        if not private_tmpfs(disk, "64k"):
            return NO_NAMESPACE
        failed = invoke(*args)
        (tmp_path / "err").write_bytes(failed.stderr)
        (tmp_path / "state").write_text(f"{failed.returncode} {sorted(p.name for p in disk.iterdir())}")
        grow_tmpfs(disk, "4m")
        resumed = invoke(*args, "--resume")
        shutil.copy(disk / "out.csv", copy)
        return resumed.returncode

    code = os.waitstatus_to_exitcode(os.waitpid(start_forked(run), 0)[1])
    if code == NO_NAMESPACE:
        pytest.skip("needs unshare(CLONE_NEWNS): root")
    assert code == 0
    failed = Result(int((tmp_path / "state").read_text().split()[0]), b"", (tmp_path / "err").read_bytes())
    assert_one_line_error(
        failed, f"t5cls: error: {disk}/", f"free space on {disk} ", "then rerun with --resume", code=5
    )
    assert "'out.csv'" not in (tmp_path / "state").read_text()  # the parts folder only
    clean = tmp_path / "clean.csv"
    assert invoke(*[clean if a == disk / "out.csv" else a for a in args]).returncode == 0
    assert copy.read_bytes() == clean.read_bytes()


def test_a_filesystem_without_locks_runs_unlocked_with_a_note(t5_dir, inputs, clean_runs, tmp_path, monkeypatch):
    import fcntl

    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", no_locks)
    reference, _ = clean_runs["csv"]
    out = tmp_path / "out.csv"
    result = invoke(*arguments(t5_dir, inputs, out, "csv"))
    assert result.returncode == 0, result.stderr
    assert result.stderr.decode().splitlines()[0] == (
        f"t5cls: note: {tmp_path}/.out.csv.t5cls-lock: this filesystem has no locks; nothing stops a second run"
    )
    assert same_output(out, reference)
