"""What ``-o`` names decides how it is written: a symlink's target, a FIFO or device as a stream, never replaced.

Each run is a real process, forked (`run_forked`: no second start-up of torch). The character
device is a null device made with ``os.mknod`` in the test's own folder (as root only), never the
real ``/dev/null``, which a failing test would turn into a regular file on the machine running it.
"""

from __future__ import annotations

import os
import socket
import stat
import threading

import pytest

from helpers.cli import assert_one_line_error, csv_rows, invoke, run_forked
from helpers.labels import BINARY_FLAG as LABELS


@pytest.fixture
def reviews(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("id,text\n1,great food\n2,cold soup\n3,fine\n")
    return path


@pytest.fixture
def reference(t5_dir, reviews, tmp_path):
    """The bytes a plain ``-o file.csv`` run writes."""
    out = tmp_path / "reference.csv"
    result = invoke("score", reviews, "-l", LABELS, "-m", t5_dir, "-o", out, "-q")
    assert result.returncode == 0, result.stderr
    return out.read_bytes()


def score(model, source, out, *extra):
    return run_forked("score", source, "-l", LABELS, "-m", model, "-o", out, "-q", *extra)


def test_a_symlink_output_writes_its_target_and_keeps_the_link(t5_dir, reviews, reference, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = elsewhere / "target.csv"
    target.write_text("old\n")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    result = score(t5_dir, reviews, link)
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_bytes() == reference
    assert sorted(p.name for p in elsewhere.iterdir()) == ["target.csv"]  # no parts, lock or temporary left


def test_a_dangling_symlink_creates_its_target(t5_dir, reviews, reference, tmp_path):
    link = tmp_path / "link.csv"
    link.symlink_to(tmp_path / "new.csv")
    assert score(t5_dir, reviews, link).returncode == 0
    assert link.is_symlink() and (tmp_path / "new.csv").read_bytes() == reference


def test_a_fifo_output_is_written_as_a_stream_to_its_reader(t5_dir, reviews, reference, tmp_path):
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    result = score(t5_dir, reviews, fifo)
    reader.join(timeout=60)
    assert result.returncode == 0, result.stderr
    assert received == [reference]
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "pipe.csv", "reference.csv"]


def test_a_fifo_cannot_be_resumed(t5_dir, reviews, tmp_path):
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    result = invoke("score", reviews, "-l", LABELS, "-m", t5_dir, "-o", fifo, "--resume")
    assert_one_line_error(result, f"-o {fifo} is a FIFO", "drop --resume")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


@pytest.mark.skipif(os.geteuid() != 0, reason="making a character device needs root")
def test_a_character_device_is_written_not_replaced(t5_dir, reviews, tmp_path):
    null = tmp_path / "null.csv"  # inspect has no --format: the name says CSV
    os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # the null device, in the test's own folder
    scored, dev = tmp_path / "scored.csv", tmp_path / "dev.csv"
    assert score(t5_dir, reviews, scored).returncode == 0
    dev.write_text("text,label\ngreat,positive\nawful,negative\n")
    for result in (
        score(t5_dir, reviews, null, "--format", "csv"),
        run_forked("inspect", scored, "--lowest-entropy", "1", "-o", null),
        run_forked("calibrate", dev, "--gold", "label", "-l", LABELS, "-m", t5_dir, "-o", null),
    ):
        assert result.returncode == 0, result.stderr
        assert stat.S_ISCHR(os.stat(null).st_mode) and os.stat(null).st_rdev == os.makedev(1, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dev.csv", "in.csv", "null.csv", "scored.csv"]


def test_a_socket_is_refused_and_kept(t5_dir, reviews, tmp_path):
    path = tmp_path / "sock.csv"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    try:
        result = score(t5_dir, reviews, path)
    finally:
        server.close()
    assert_one_line_error(result, str(path), "cannot write", code=5)
    assert stat.S_ISSOCK(os.stat(path).st_mode)


def test_calibrate_and_inspect_write_through_a_symlink(t5_dir, reviews, tmp_path):
    dev = tmp_path / "dev.csv"
    dev.write_text("text,label\ngreat,positive\nawful,negative\n")
    config_target = tmp_path / "real.toml"
    config_link = tmp_path / "fitted.toml"
    config_link.symlink_to(config_target)
    result = invoke("calibrate", dev, "--gold", "label", "-l", LABELS, "-m", t5_dir, "-o", config_link)
    assert result.returncode == 0, result.stderr
    assert config_link.is_symlink() and "temperature" in config_target.read_text()

    scored = tmp_path / "scored.csv"
    assert invoke("score", reviews, "-l", LABELS, "-m", t5_dir, "-o", scored, "-q").returncode == 0
    rows_target, rows_link = tmp_path / "rows-real.csv", tmp_path / "rows.csv"
    rows_link.symlink_to(rows_target)
    assert invoke("inspect", scored, "--lowest-entropy", "2", "-o", rows_link).returncode == 0
    assert rows_link.is_symlink() and len(rows_target.read_text().splitlines()) == 3


def test_eval_plots_go_through_a_symlinked_folder_and_file(t5_dir, tmp_path):
    dev = tmp_path / "dev.csv"
    dev.write_text("text,label\ngreat,positive\nawful,negative\nok,positive\n")
    scored = tmp_path / "scored.csv"
    assert invoke("score", dev, "-l", LABELS, "-m", t5_dir, "-o", scored, "-q").returncode == 0
    real = tmp_path / "real-plots"
    real.mkdir()
    (tmp_path / "plots").symlink_to(real)
    png = tmp_path / "elsewhere.png"
    (real / "entropy.png").symlink_to(png)
    result = invoke("eval", scored, "--gold", "label", "--plots", tmp_path / "plots", "--json")
    assert result.returncode == 0, result.stderr
    assert (real / "entropy.png").is_symlink() and png.read_bytes().startswith(b"\x89PNG")
    assert sorted(p.name for p in real.iterdir()) == ["confusion_matrix.png", "entropy.png", "reliability.png"]


@pytest.mark.parametrize(
    ("name", "flag", "named"),
    [("x.parquet", "csv", "parquet"), ("x.csv", "parquet", "csv"), ("x.jsonl", "csv", "jsonl")],
)
def test_format_and_extension_that_disagree_are_refused(t5_dir, reviews, tmp_path, name, flag, named):
    out = tmp_path / name
    result = invoke("score", reviews, "-l", LABELS, "-m", t5_dir, "-o", out, "--format", flag)
    assert_one_line_error(result, f"-o {out} names a {named} file but --format is {flag}", "drop --format")
    assert not out.exists()


def test_format_decides_where_the_name_says_nothing(t5_dir, reviews, reference, tmp_path):
    same = invoke("score", reviews, "-l", LABELS, "-m", t5_dir, "-o", tmp_path / "x.csv", "--format", "csv", "-q")
    assert same.returncode == 0 and (tmp_path / "x.csv").read_bytes() == reference
    odd = tmp_path / "x.out"
    assert invoke("score", reviews, "-l", LABELS, "-m", t5_dir, "-o", odd, "--format", "jsonl", "-q").returncode == 0
    assert odd.read_text().startswith('{"id": ')


def test_missing_output_folders_are_created(t5_dir, short_reviews, tmp_path):
    out = tmp_path / "new" / "deeper" / "scored.csv"
    result = invoke("score", short_reviews, "-l", "positive,negative", "-m", t5_dir, "-o", out)
    assert result.returncode == 0, result.stderr
    assert [row["id"] for row in csv_rows(out.read_bytes())] == ["1", "2", "3"]
