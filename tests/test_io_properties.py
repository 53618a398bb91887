"""Properties of reading, writing and resuming, over generated tables of every shape the README allows.

The oracle of every case: **either** exit 0, every kept row and value unchanged (CSV values as
text), p_ columns summing to 1 and equal to the scorer's for that very row, the summary line's
counts right, and nothing beside the output; **or** exit 2, exactly one stderr line ``t5cls:
error: ...`` holding what a rule says, no file at the output path and no temporary file (a
resumable parts folder may stay). Never exit 1.

Engines: `StubScorer` (no model; its scores are a checksum of the prompt, so a row paired with
another row's scores shows) runs the I/O properties: round trips over every input × output
format × chunk size × --on-null, chunk-size invariance, stop-and-resume, and corrupted inputs.
`test_tiny_models_keep_every_row_and_score_it_exactly` runs the same round trip through tiny
random T5 and GPT-2 models on small tables and compares the p_ columns with `LabelScorer.score`.

Examples: tests/conftest.py's ``ci`` profile (the default) runs a fixed sequence of 540 in under
a minute; ``--hypothesis-profile local`` runs four times as many (2,160), drawn afresh.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from helpers.cli import invoke
from helpers.generated import (
    INPUTS,
    LABELS,
    OUTPUTS,
    TEXT_FORMATS,
    Case,
    as_written,
    cases,
    expected_rows,
    kept,
    prompt_texts,
    read_output,
    refusals,
    same_value,
    write_input,
)
from helpers.runs import StopAfter
from helpers.stub_scorer import StubScorer, stub_probs
from t5cls.models.scorer import LabelScorer
from t5cls.options import ScoreOptions
from t5cls.run import job
from t5cls.run.job import score_file
from t5cls.signals import Interrupted

ADDED = [f"p_{label}" for label in LABELS] + ["pred", "entropy"]
ON_NULL = st.sampled_from(["error", "skip", "empty"])


def examples(share: float) -> int:
    """A test's share of the profile's ``max_examples`` (150 in ``ci``), so a long profile scales every test."""
    return max(1, round(settings().max_examples * share))


@contextmanager
def model_loads(scorer):
    """``t5cls score`` gets ``scorer`` instead of loading a model (patched per example, inside the test body)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(LabelScorer, "from_options", classmethod(lambda cls, options: scorer))
        patch.setattr(job, "hub_files", lambda name, revision: {})  # no model name is loaded: none is looked up
        yield


def chunk_sizes(rows: int):
    """From 1 up; at most ~60 chunks, so a big table does not write thousands of checkpointed parts."""
    least = max(1, math.ceil(rows / 60))
    return st.integers(least, least + 8) | st.integers(least, max(least, rows + 5))


def score(folder: Path, source: Path, fmt: str, output: str, *options, stdin: bytes | None = None):
    """Run ``t5cls score`` on ``source`` (stdin formats: its bytes on stdin); returns the result and output path."""
    kind = fmt.removeprefix("stdin-")
    args = ["score", "-" if fmt.startswith("stdin-") else source, "-l", ",".join(LABELS), "-t", "{text}", "-q"]
    if fmt.startswith("stdin-") and kind != "csv":
        args += ["--input-format", kind]
    out = None
    if output.startswith("stdout-"):
        args += ["--format", output.removeprefix("stdout-")]
    else:
        out = folder / f"out.{output}"
        args += ["-o", out]
    return invoke(*args, *map(str, options), stdin=stdin), out


def prompts(case: Case, fmt: str, rows) -> list[str]:
    """The prompts of ``rows`` under ``-t "{text}"``: each row's text (null: empty)."""
    texts = prompt_texts(case, fmt)
    return ["" if texts[i] is None else texts[i] for i in rows]


def check_refused(result, folder: Path, source: Path, out: Path | None, fragments: list[str]) -> None:
    """Exit 2, one stderr line holding one of ``fragments``, no output, nothing left but a parts folder."""
    stderr = result.stderr.decode()
    assert result.returncode == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("t5cls: error: "), stderr
    assert any(fragment in lines[0] for fragment in fragments), (lines[0], fragments)
    left = set(os.listdir(folder)) - {source.name}
    assert left <= ({f".{out.name}.t5cls-parts"} if out else set()), left


def check_scored(result, folder: Path, source: Path, out: Path | None, expected: list[dict], probs, fmt, rtol=1e-12):
    """Exit 0, the summary line, nothing beside the output, every kept row's values, ``probs`` in its p_ columns.

    ``rtol``: the stub's scores are exact; a float32 model's differ in the last digits with the batch's shape.
    """
    stderr = result.stderr.decode()
    assert result.returncode == 0, stderr
    assert len(stderr.splitlines()) == 1 and stderr.startswith("t5cls: "), stderr  # -q: the summary line alone
    assert set(os.listdir(folder)) == {source.name} | ({out.name} if out else set())
    data = out.read_bytes() if out else result.stdout
    names, rows = read_output(data, fmt)
    assert len(rows) == len(expected)
    if rows:
        assert names == [*expected[0], *ADDED]
    for got, want in zip(rows, expected):
        for name, value in want.items():
            assert same_value(got[name], as_written(value, fmt)), (name, got[name], value)
    check_probabilities(rows, probs, rtol)


def check_probabilities(rows: list[dict], expected: np.ndarray, rtol: float) -> None:
    """p_ columns sum to 1 and are the scorer's for the row's own prompt; pred is their argmax; entropy in nats."""
    if not rows:
        return
    probs = np.array([[float(row[name]) for name in ADDED[: len(LABELS)]] for row in rows])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(probs, expected, rtol=rtol, atol=rtol * 1e-3)
    assert [row["pred"] for row in rows] == [LABELS[i] for i in probs.argmax(axis=1)]
    entropy = -(probs * np.log(probs)).sum(axis=1)
    np.testing.assert_allclose([float(row["entropy"]) for row in rows], entropy, rtol=1e-9, atol=1e-12)


@settings(max_examples=examples(1.5))
@given(st.data())
def test_every_row_and_value_comes_back_or_the_run_stops_with_one_line(data):
    fmt = data.draw(st.sampled_from(INPUTS), "input")
    output = data.draw(st.sampled_from(OUTPUTS), "output")
    case = data.draw(cases(fmt), "case")
    on_null = data.draw(ON_NULL, "on_null")
    chunk = data.draw(chunk_sizes(case.rows), "chunk")
    bom, crlf = data.draw(st.booleans(), "bom"), data.draw(st.booleans(), "crlf")
    with tempfile.TemporaryDirectory() as name, model_loads(StubScorer()):
        folder = Path(name)
        source, raw = write_input(case, fmt, folder, bom=bom, crlf=crlf)
        result, out = score(folder, source, fmt, output, "--on-null", on_null, "--chunk-size", chunk, stdin=raw)
        refused = refusals(case, fmt, on_null)
        event("refused" if refused else "scored")
        event(f"rows: {'0' if not case.rows else '1-99' if case.rows < 100 else '100+'}")
        if refused:
            check_refused(result, folder, source, out, refused)
            return
        rows = kept(case, on_null, fmt)
        assert f"t5cls: {len(rows)} rows, {case.rows - len(rows)} skipped, 0 truncated" in result.stderr.decode()
        expected = expected_rows(case, fmt, source)
        probs = stub_probs(prompts(case, fmt, rows), LABELS)
        check_scored(result, folder, source, out, [expected[i] for i in rows], probs, output.removeprefix("stdout-"))


def read_back(path: Path, fmt: str):
    """CSV and JSONL outputs as bytes; Parquet as a table with its schema (row groups follow the chunks)."""
    return pq.read_table(path) if fmt == "parquet" else path.read_bytes()


def draw_run(data):
    """An input format, an output format, a table of up to 600 rows and an ``--on-null`` policy."""
    fmt = data.draw(st.sampled_from([*TEXT_FORMATS, "parquet"]), "input")
    output = data.draw(st.sampled_from(["csv", "jsonl", "parquet"]), "output")
    case = data.draw(cases(fmt, max_rows=600), "case")
    on_null = data.draw(st.sampled_from(["skip", "empty"]), "on_null")
    return fmt, output, case, on_null


@settings(max_examples=examples(0.4))
@given(st.data())
def test_same_output_whatever_the_chunk_size(data):
    """The I/O layer adds nothing that depends on the chunking: types, values, bytes (the stub scores exactly)."""
    fmt, output, case, on_null = draw_run(data)
    assume(not refusals(case, fmt, on_null))
    sizes = data.draw(st.lists(chunk_sizes(case.rows), min_size=2, max_size=2), "chunks")
    with tempfile.TemporaryDirectory() as name, model_loads(StubScorer()):
        folder = Path(name)
        source, _ = write_input(case, fmt, folder)
        outputs = []
        for size in sizes:
            result, out = score(folder, source, fmt, output, "--on-null", on_null, "--chunk-size", size)
            assert result.returncode == 0, result.stderr.decode()
            outputs.append(read_back(out, output))
            out.unlink()
        assert outputs[0] == outputs[1] if output != "parquet" else outputs[0].equals(outputs[1], check_metadata=True)


@settings(max_examples=examples(0.4))
@given(st.data())
def test_a_stopped_run_resumed_gives_the_output_of_an_uninterrupted_one(data):
    fmt, output, case, on_null = draw_run(data)
    assume(case.rows > 1 and not refusals(case, fmt, on_null))
    chunk = data.draw(st.integers(max(1, case.rows // 40), case.rows - 1), "chunk")
    stop_after = data.draw(st.integers(0, math.ceil(case.rows / chunk) - 2), "stop after")
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        source, _ = write_input(case, fmt, folder)
        options = ScoreOptions(
            str(source), LABELS, str(folder / f"out.{output}"), template="{text}", on_null=on_null, chunk_rows=chunk
        )
        score_file(ScoreOptions(**{**options.__dict__, "output": str(folder / f"whole.{output}")}), StubScorer())
        with pytest.raises(Interrupted):
            score_file(options, StubScorer(), stop=StopAfter(stop_after))
        assert not (folder / f"out.{output}").exists()
        score_file(ScoreOptions(**{**options.__dict__, "resume": True}), StubScorer())
        done = f".out.{output}.t5cls-done"  # the record that makes the next --resume a no-op
        assert set(os.listdir(folder)) == {source.name, f"out.{output}", f"whole.{output}", done}
        resumed, whole = read_back(folder / f"out.{output}", output), read_back(folder / f"whole.{output}", output)
        assert resumed == whole if output != "parquet" else resumed.equals(whole, check_metadata=True)


# Corrupted inputs ---------------------------------------------------------------------------------


def corrupt(data: bytes, how: str, where: float, fmt: str) -> bytes:
    """Cut ``data`` short, put bytes that are not UTF-8, a ragged row, a bad JSON line or garbage into it."""
    at = int(where * len(data))
    if how == "truncate":
        return data[:at]
    if how == "cut-at-line":  # often a shorter file that is whole (unless inside a quoted value)
        return data[: data.rfind(b"\n", 0, at) + 1]
    if how == "not-utf8":
        return data[:at] + b"\xff\xc3(" + data[at:]
    if how == "garbage":
        return data[:at] + bytes((b * 37 + 11) % 256 for b in data[at : at + 16]) + data[at + 16 :]
    line_start = max(data.rfind(b"\n", 0, at), data.find(b"\n")) + 1  # after the header: a bad row, not a bad header
    bad = b'1,"a",b,c,d,e,f,g\n' if how == "ragged" else b'{"text": oops}\n'
    return data[:line_start] + bad + data[line_start:]


CORRUPTIONS = {
    "csv": ["truncate", "cut-at-line", "not-utf8", "ragged"],
    "jsonl": ["truncate", "cut-at-line", "not-utf8", "bad-json"],
    "compressed": ["truncate", "garbage"],
    "parquet": ["truncate", "garbage"],
}


def reference_case(path: Path, fmt: str) -> Case | None:
    """What an independent reader gets from a (corrupted) file, or None where it finds the file unreadable."""
    try:
        if fmt == "parquet":
            table = pq.read_table(path)
            return Case(table.column_names, table.to_pydict(), {})
        text = pa.input_stream(str(path), compression="detect").read().decode("utf-8").removeprefix("\ufeff")
        if fmt.startswith("csv"):
            records = [record for record in csv.reader(io.StringIO(text, newline=""), strict=True) if record]
            if any(len(record) != len(records[0]) for record in records):
                return None
            return Case(records[0], {name: [r[i] for r in records[1:]] for i, name in enumerate(records[0])}, {})
        rows = [json.loads(line) for line in text.split("\n") if line.strip()]
        if not rows or not all(isinstance(row, dict) for row in rows):
            return None
        names = list(dict.fromkeys(name for row in rows for name in row))
        return Case(names, {name: [row.get(name) for row in rows] for name in names}, {})
    except (OSError, pa.ArrowException, UnicodeDecodeError, ValueError, IndexError, csv.Error):
        return None


@settings(max_examples=examples(1.0))
@given(st.data())
def test_a_corrupted_input_is_read_as_a_reader_reads_it_or_refused_in_one_line(data):
    fmt = data.draw(st.sampled_from([*TEXT_FORMATS, "parquet"]), "input")
    family = "compressed" if fmt.count(".") else fmt
    how = data.draw(st.sampled_from(CORRUPTIONS[family]), "corruption")
    case = data.draw(cases(fmt, max_rows=300), "case")
    where = data.draw(st.floats(0, 1), "where")
    with tempfile.TemporaryDirectory() as name, model_loads(StubScorer()):
        folder = Path(name)
        source, raw = write_input(case, fmt, folder)
        source.write_bytes(corrupt(raw, how, where, fmt))
        result, out = score(folder, source, fmt, "csv", "--on-null", "empty", "--chunk-size", 7)
        event(f"exit {result.returncode}")
        if result.returncode == 2:
            check_refused(result, folder, source, out, [f"t5cls: error: {source}"])
            assert how != "ragged" or "expected" in result.stderr.decode()
            return
        reference = reference_case(source, fmt)
        assert reference is not None, f"read a file that no reader reads: {result.stderr.decode()}"
        probs = stub_probs(prompts(reference, fmt, range(reference.rows)), LABELS)
        check_scored(result, folder, source, out, expected_rows(reference, fmt, source), probs, "csv")


# The same round trip through real (tiny, random) models --------------------------------------------


@pytest.fixture(scope="module")
def tiny_scorers(tmp_path_factory):
    from helpers.tiny_causal_models import build_causal
    from helpers.tiny_models import build_t5

    folder = tmp_path_factory.mktemp("property-models")
    return {
        "t5": LabelScorer.from_pretrained(str(build_t5(folder / "t5")), device="cpu", batch_size=4),
        "gpt2": LabelScorer.from_pretrained(str(build_causal(folder / "gpt2", "gpt2")), device="cpu", batch_size=4),
    }


@settings(max_examples=examples(0.3))
@given(st.data())
def test_tiny_models_keep_every_row_and_score_it_exactly(tiny_scorers, data):
    model = data.draw(st.sampled_from(sorted(tiny_scorers)), "model")
    fmt = data.draw(st.sampled_from(INPUTS), "input")
    output = data.draw(st.sampled_from(OUTPUTS), "output")
    case = data.draw(cases(fmt, max_rows=24), "case")
    on_null = data.draw(ON_NULL, "on_null")
    chunk = data.draw(st.integers(1, 9), "chunk")
    scorer = tiny_scorers[model]
    assert isinstance(scorer, LabelScorer)
    with tempfile.TemporaryDirectory() as name, model_loads(scorer):
        folder = Path(name)
        source, raw = write_input(case, fmt, folder)
        result, out = score(folder, source, fmt, output, "--on-null", on_null, "--chunk-size", chunk, stdin=raw)
        rows = kept(case, on_null, fmt)
        texts = prompts(case, fmt, rows)
        refused = refusals(case, fmt, on_null)
        empty = [row for row, text in zip(rows, texts) if not text.rstrip()]
        if not refused and scorer.causal and empty:  # GPT-2 has no BOS: an empty prompt gives it nothing to go on
            refused = [f"row {empty[0] + 1}: the prompt has no tokens"]
        if refused:
            check_refused(result, folder, source, out, refused)
            return
        probs = scorer.score(texts, list(LABELS)).probs if texts else np.zeros((0, len(LABELS)))
        expected = expected_rows(case, fmt, source)
        fmt_out = output.removeprefix("stdout-")
        check_scored(result, folder, source, out, [expected[i] for i in rows], probs, fmt_out, rtol=1e-5)
