"""Runs through the Python API, as a long-lived program would make them (issue 13's API cases).

A `LabelScorer` wrapped around a model you hold, a dry run's first prompts before the run itself,
non-finite scores named by file and row, failed runs that leave no thread and no open file, and
progress (percent, ETA) from the bytes read where a file has no row count.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import signal
import threading
from contextlib import closing

import numpy as np
import pyarrow.parquet as pq
import pytest

from helpers.files import write_texts
from helpers.labels import BINARY as LABELS
from helpers.runs import StopAfter, plan_for, poison
from helpers.stub_scorer import StubScorer, stub_probs
from t5cls import LabelScorer
from t5cls.errors import InputError, Interrupted, NumericError, OptionError
from t5cls.io.readers import open_input
from t5cls.options import RayOptions, ScoreOptions
from t5cls.run.job import score_file
from t5cls.run.local import LocalRunner
from t5cls.run.progress import RowProgress
from t5cls.tasks.prompts import DEFAULT_TEMPLATE, PromptTemplate


def test_score_file_with_a_label_scorer_around_a_model_you_hold(t5_dir, tmp_path):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    scorer = LabelScorer(AutoModelForSeq2SeqLM.from_pretrained(t5_dir), AutoTokenizer.from_pretrained(t5_dir))
    source = write_texts(tmp_path / "in.csv", ["good", "bad", "meh"])
    summary = score_file(ScoreOptions(str(source), LABELS, str(tmp_path / "out.parquet")), scorer)
    assert summary.rows == 3
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.schema.metadata[b"t5cls.model"].decode() == str(t5_dir)  # the name from the model's config
    prompts = PromptTemplate(DEFAULT_TEMPLATE).render({"text": ["good", "bad", "meh"]}, LABELS)
    expected = LabelScorer.from_pretrained(str(t5_dir), device="cpu").score(prompts, LABELS).probs
    np.testing.assert_allclose(np.column_stack([table["p_positive"], table["p_negative"]]), expected, atol=1e-6)


def test_a_ray_run_from_python_needs_model_options_not_a_loaded_scorer(tmp_path):
    options = ScoreOptions(str(write_texts(tmp_path / "in.csv", ["good"])), LABELS, str(tmp_path / "scored"))
    with pytest.raises(OptionError, match=r"^ray loads a model in every worker: give ModelOptions") as raised:
        score_file(options, StubScorer(), ray=RayOptions())
    assert raised.value.for_flags({"ray": "--engine ray"}).startswith("--engine ray loads a model in every worker")


def test_interrupted_names_the_parameter_and_the_cli_its_flag():
    stopped = Interrupted(signal.SIGTERM, "interrupted after 4 input rows; rerun the same command with {resume}")
    assert str(stopped).endswith("with resume") and stopped.exit_code == 143
    assert stopped.for_flags({"resume": "--resume"}).endswith("with --resume")


def test_first_prompts_leave_every_row_to_a_later_run(tmp_path):
    texts = ["", " ", "", "first kept", "b", "c", "d"]  # the dry run reads two chunks to find a usable row
    options = ScoreOptions(
        str(write_texts(tmp_path / "in.csv", texts)), LABELS, str(tmp_path / "out.csv"),
        template="{text}", on_null="skip", chunk_rows=2,
    )  # fmt: skip
    runner = LocalRunner(plan_for(options), StubScorer())
    with closing(open_input(options.input, options.chunk_rows)) as source:
        assert runner.first_prompts(source) == ["first kept"]
        summary = runner.run(source)
    assert (summary.rows, summary.skipped) == (4, 3)
    rows = (tmp_path / "out.csv").read_text().splitlines()[1:]
    assert [row.split(",")[1] for row in rows] == ["first kept", "b", "c", "d"]


def test_a_second_run_of_a_read_source_is_refused_before_it_writes(tmp_path):
    options = ScoreOptions(str(write_texts(tmp_path / "in.csv", ["a", "b"])), LABELS, str(tmp_path / "out.csv"))
    runner = LocalRunner(plan_for(options), StubScorer())
    with closing(open_input(options.input, options.chunk_rows)) as source:
        runner.run(source)
        first = (tmp_path / "out.csv").read_bytes()
        with pytest.raises(ValueError, match="already read; open the input again"):
            runner.run(source)  # it would write an output without rows
    assert (tmp_path / "out.csv").read_bytes() == first and sorted(os.listdir(tmp_path)) == ["in.csv", "out.csv"]


# Non-finite scores ----------------------------------------------------------------------------------


@pytest.fixture
def bad_row_file(tmp_path):
    """Row 37 holds the text that scores NaN; rows 3 to 6 are blank (``skip`` must not shift the count)."""
    texts = [f"review {i}" for i in range(1, 61)]
    texts[2:6] = [""] * 4
    texts[36] = "the poisoned review"
    return write_texts(tmp_path / "in.csv", texts)


@pytest.mark.parametrize("on_null", ["skip", "empty"])
def test_non_finite_scores_name_the_file_and_its_row(t5_dir, bad_row_file, tmp_path, monkeypatch, on_null):
    scorer = LabelScorer.from_pretrained(str(t5_dir), device="cpu", batch_size=4)
    poison(monkeypatch, scorer, ["the poisoned review"])
    options = ScoreOptions(
        str(bad_row_file), LABELS, str(tmp_path / "out.csv"), template="{text}", on_null=on_null, chunk_rows=10
    )
    with pytest.raises(NumericError, match=rf"^{bad_row_file}: row 37: non-finite label scores") as raised:
        score_file(options, scorer)
    assert raised.value.exit_code == 4 and "\n" not in str(raised.value)
    assert not (tmp_path / "out.csv").exists()


def test_non_finite_scores_of_a_multi_label_question_name_the_row(t5_dir, bad_row_file, tmp_path, monkeypatch):
    config = tmp_path / "tasks.toml"
    config.write_text(
        '[[task]]\nname = "aspects"\ntemplate = "{text} Is it about {label}?"\n'
        'labels = ["price", "staff", "place"]\nmulti_label = true\n'
    )
    scorer = LabelScorer.from_pretrained(str(t5_dir), device="cpu", batch_size=4)
    poison(monkeypatch, scorer, ["the poisoned review Is it about staff?"])  # the second class's question
    options = ScoreOptions(str(bad_row_file), output=str(tmp_path / "out.csv"), config=str(config), on_null="skip")
    with pytest.raises(NumericError, match=rf"^{bad_row_file}: row 37: non-finite"):
        score_file(options, scorer)


def test_non_finite_content_free_scores_are_not_blamed_on_a_row(t5_dir, bad_row_file, tmp_path, monkeypatch):
    config = tmp_path / "tasks.toml"
    config.write_text('[[task]]\nname = "t"\ntemplate = "{text}"\nlabels = ["yes", "no"]\nmode = "pmi"\n')
    scorer = LabelScorer.from_pretrained(str(t5_dir), device="cpu")
    poison(monkeypatch, scorer, ["N/A"])
    options = ScoreOptions(str(bad_row_file), output=str(tmp_path / "out.csv"), config=str(config), on_null="skip")
    with pytest.raises(NumericError, match=r"task 't': content-free prompts: non-finite") as raised:
        score_file(options, scorer)
    assert "row" not in str(raised.value)


# Failed runs in a long-lived process ------------------------------------------------------------------


def open_files() -> set[str]:
    """The paths this process holds open (Linux)."""
    folder = "/proc/self/fd"
    links = set()
    for fd in os.listdir(folder):
        try:
            links.add(os.readlink(os.path.join(folder, fd)))
        except OSError:
            continue
    return links


FAILURES = {"bad row": InputError, "non-finite": NumericError, "stop": Interrupted, "disk full": OSError}  # as raised


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="lists open files through /proc")
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@pytest.mark.parametrize("failure", ["bad row", "non-finite", "stop", "disk full"])
def test_a_failed_run_leaves_no_thread_and_no_open_file(t5_dir, tmp_path, monkeypatch, failure, fmt):
    texts = [f"review {i}" for i in range(200)]
    source = write_texts(tmp_path / "in.csv", texts)
    if fmt == "jsonl":
        source = tmp_path / "in.jsonl"
        source.write_text("".join(json.dumps({"id": i, "text": text}) + "\n" for i, text in enumerate(texts)))
    if failure == "bad row":
        source.write_text(source.read_text() + ("201,one,field too many\n" if fmt == "csv" else '{"text": 1\n'))
    scorer = LabelScorer.from_pretrained(str(t5_dir), device="cpu", batch_size=4)
    stop = StopAfter(2) if failure == "stop" else None
    if failure == "non-finite":
        poison(monkeypatch, scorer, ["review 57"])
    if failure == "disk full":
        from t5cls.io.output import FileOutput

        def full_disk(*args):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(FileOutput, "write_chunk", full_disk)
    options = ScoreOptions(str(source), LABELS, str(tmp_path / "out.csv"), template="{text}", chunk_rows=5)
    threads = set(threading.enumerate())
    for _ in range(3):  # a long-lived process: failures must not pile up threads or files
        with pytest.raises(FAILURES[failure]):
            score_file(options, scorer, stop=stop)
        stop = StopAfter(2) if failure == "stop" else None
    assert set(threading.enumerate()) <= threads
    assert str(source) not in open_files()


# Progress: percent and ETA ---------------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    "start, advance, expected",
    [
        ((None, 0, 1000), (50, (0, 250)), "50 rows, 25%, 5.0 rows/s, ETA 30s"),  # bytes of a CSV file
        ((None, 100, 1000), (50, (400, 600)), "150 rows, 60%, 5.0 rows/s, ETA 20s"),  # resumed: its own pace
        ((200, 50, None), (50, None), "100/200 rows, 50%, 5.0 rows/s, ETA 20s"),  # rows of a Parquet file
        ((None, 0, None), (50, None), "50 rows, 5.0 rows/s"),  # stdin: no size
    ],
    ids=["bytes", "bytes-resumed", "rows", "unknown"],
)
def test_progress_status_and_eta(start, advance, expected):
    clock, lines = Clock(), io.StringIO()
    progress = RowProgress(log_every=5, stream=lines, clock=clock)
    progress.start(*start)
    clock.now = 10.0
    progress.advance(*advance)
    assert progress.status() == expected
    assert lines.getvalue() == f"t5cls: {expected}\n"  # the plain line off a terminal says the same

    bar = RowProgress(stream=Terminal(), clock=clock)
    clock.now = 0.0
    bar.start(*start)
    clock.now = 10.0
    bar.advance(*advance)
    task = bar.bar.tasks[0]
    assert task.description == expected  # the bar on a terminal too
    assert task.completed == pytest.approx(100 * bar.fraction) if bar.fraction is not None else task.total is None
    bar.stop()


def test_progress_of_a_gzip_csv_follows_the_compressed_bytes_read(tmp_path):
    rng = random.Random(0)
    texts = [f"{rng.getrandbits(128):032x}" for _ in range(40_000)]  # hex compresses about 2:1
    source = tmp_path / "in.csv.gz"
    source.write_bytes(gzip.compress(("id,text\n" + "".join(f"{i},{t}\n" for i, t in enumerate(texts))).encode()))
    lines = io.StringIO()
    progress = RowProgress(log_every=0, stream=lines, clock=Clock())
    options = ScoreOptions(str(source), LABELS, str(tmp_path / "out.csv"), template="{text}", chunk_rows=4000)
    score_file(options, StubScorer(), progress)
    assert progress.total_bytes == source.stat().st_size
    percents = [int(line.split(", ")[1].removesuffix("%")) for line in lines.getvalue().splitlines()]
    assert len(percents) == 10 and percents[-1] == 100
    # Reading runs ahead of the rows by what the decompressor and the text decoder buffer (< 256 KiB).
    ahead = 100 * (256 << 10) / source.stat().st_size
    assert all(10 * (k + 1) - 1 <= percent <= 10 * (k + 1) + ahead for k, percent in enumerate(percents)), percents
    probs = np.loadtxt(tmp_path / "out.csv", delimiter=",", skiprows=1, usecols=(2, 3))
    np.testing.assert_allclose(probs, stub_probs(texts, LABELS), rtol=1e-12)
