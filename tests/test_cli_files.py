"""The `score` command end to end: file round trips, formats, pipelines (a real process where a pipe matters)."""

from __future__ import annotations

import csv
import gzip
import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from helpers.cli import csv_rows, invoke, run_cli
from helpers.labels import UNSURE as LABELS
from t5cls import LabelScorer
from t5cls.tasks.prompts import DEFAULT_TEMPLATE, PromptTemplate

NASTY_ROWS = [
    ["007", "plain text", "NA", "2024-01-02"],
    ["008", "quoted, with comma", "", "null"],
    ["009", 'embedded "quotes" here', "N/A", "1e5"],
    ["010", "multi\nline\r\nvalue", "None", " padded "],
    ["011", "unicode: café 東京 🙂 – ü", "nan", "TRUE"],
    ["012", "x" * 300, "-0", "0.10"],
]
HEADER = ["id", "text", "flag", "other"]


def write_nasty_csv(path, rows=NASTY_ROWS):
    """BOM, CRLF line ends, quoted newlines, quotes, commas, unicode, leading zeros, NA-likes."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows([HEADER, *rows])
    path.write_bytes(b"\xef\xbb\xbf" + buffer.getvalue().encode("utf-8"))
    return path


def expected_scores(model_dir, texts, labels=LABELS):
    prompts = PromptTemplate(DEFAULT_TEMPLATE).render({"text": texts}, labels)
    return LabelScorer.from_pretrained(str(model_dir), device="cpu").score(prompts, labels)


def read_csv_rows(data: bytes):
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def check_scores(probs, preds, entropy, reference):
    np.testing.assert_allclose(probs, reference.probs, atol=1e-6)
    assert list(preds) == reference.predictions
    np.testing.assert_allclose(entropy, reference.entropy, atol=1e-6)


def test_csv_round_trip_keeps_every_value_and_row_order(t5_dir, tmp_path):
    source = write_nasty_csv(tmp_path / "in.csv")
    out = tmp_path / "out.csv"
    result = invoke(
        "score", source, "--labels", ",".join(LABELS), "--model", t5_dir, "-o", out, "--chunk-size", "4", "-q"
    )
    assert result.returncode == 0, result.stderr
    rows = read_csv_rows(out.read_bytes())
    assert rows[0] == HEADER + [f"p_{label}" for label in LABELS] + ["pred", "entropy"]
    assert [row[:4] for row in rows[1:]] == NASTY_ROWS
    reference = expected_scores(t5_dir, [row[1] for row in NASTY_ROWS])
    probs = np.array([[float(v) for v in row[4:7]] for row in rows[1:]])
    check_scores(probs, [row[7] for row in rows[1:]], [float(row[8]) for row in rows[1:]], reference)
    assert "6 rows, 0 skipped, 0 truncated" in result.stderr.decode()


def test_parquet_round_trip_with_logprobs_and_provenance(t5_dir, tmp_path):
    table = pa.table({"id": [1, 2, 3], "text": ["good", "bad", "meh"], "when": pa.array([1.5, None, 3.0])})
    pq.write_table(table, tmp_path / "in.parquet")
    out = tmp_path / "out.parquet"
    result = invoke(
        "score", tmp_path / "in.parquet", "-l", ",".join(LABELS), "-m", t5_dir, "-o", out, "--logprobs", "-q"
    )
    assert result.returncode == 0, result.stderr
    scored = pq.read_table(out)
    assert scored.select(["id", "text", "when"]).equals(table)
    reference = expected_scores(t5_dir, ["good", "bad", "meh"])
    np.testing.assert_allclose(
        np.column_stack([scored[f"logp_{label}"].to_numpy() for label in LABELS]), reference.logprobs, atol=1e-6
    )
    check_scores(
        np.column_stack([scored[f"p_{label}"].to_numpy() for label in LABELS]),
        scored["pred"].to_pylist(),
        scored["entropy"].to_numpy(),
        reference,
    )
    metadata = {k.decode(): v.decode() for k, v in scored.schema.metadata.items()}
    assert json.loads(metadata["t5cls.labels"]) == LABELS
    assert metadata["t5cls.template"] == DEFAULT_TEMPLATE
    assert metadata["t5cls.model"] == str(t5_dir)


def test_jsonl_in_and_out_keeps_types(t5_dir, tmp_path):
    records = [
        {"id": 7, "text": "fine", "tags": ["a"], "score": None},
        {"id": 8, "text": "awful", "tags": [], "score": 0.5},
    ]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "out.jsonl"
    assert (
        invoke("score", tmp_path / "in.jsonl", "-l", "positive,negative", "-m", t5_dir, "-o", out, "-q").returncode == 0
    )
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [{k: line[k] for k in records[0]} for line in lines] == records
    assert all(abs(line["p_positive"] + line["p_negative"] - 1) < 1e-9 for line in lines)


def test_stdin_to_stdout_in_a_gzip_pipeline(t5_dir, tmp_path):
    source = write_nasty_csv(tmp_path / "in.csv")
    result = run_cli(
        "score",
        "-",
        "-l",
        ",".join(LABELS),
        "-m",
        t5_dir,
        "-q",
        stdin=gzip.decompress(gzip.compress(source.read_bytes())),
    )
    assert result.returncode == 0, result.stderr
    rows = read_csv_rows(result.stdout)
    assert [row[:4] for row in rows[1:]] == NASTY_ROWS


def test_gzipped_input_file_and_jsonl_to_stdout(t5_dir, tmp_path):
    source = tmp_path / "in.csv.gz"
    source.write_bytes(gzip.compress(b"id,text\n1,good\n2,bad\n"))
    result = invoke("score", source, "-l", "positive,negative", "-m", t5_dir, "--format", "jsonl", "-q")
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["id"] for line in result.stdout.decode().splitlines()] == ["1", "2"]


def test_parquet_to_stdout(t5_dir, tmp_path):
    pq.write_table(pa.table({"text": ["good", "bad"]}), tmp_path / "in.parquet")
    result = invoke(
        "score", tmp_path / "in.parquet", "-l", "positive,negative", "-m", t5_dir, "--format", "parquet", "-q"
    )
    assert result.returncode == 0, result.stderr
    assert pq.read_table(pa.BufferReader(result.stdout)).column("text").to_pylist() == ["good", "bad"]


def test_template_with_other_columns_and_labels(t5_dir, tmp_path):
    (tmp_path / "nli.csv").write_text("premise,hypothesis\nA man sleeps.,A person rests.\nIt rains.,It is dry.\n")
    template = "premise: {premise} hypothesis: {hypothesis} options: {labels}"
    result = invoke(
        "score", tmp_path / "nli.csv", "-l", "entailment,not entailment", "-m", t5_dir, "-t", template, "-q"
    )
    assert result.returncode == 0, result.stderr
    prompts = [
        "premise: A man sleeps. hypothesis: A person rests. options: entailment, not entailment",
        "premise: It rains. hypothesis: It is dry. options: entailment, not entailment",
    ]
    reference = LabelScorer.from_pretrained(str(t5_dir), device="cpu").score(prompts, ["entailment", "not entailment"])
    rows = read_csv_rows(result.stdout)
    np.testing.assert_allclose([float(r[2]) for r in rows[1:]], reference.probs[:, 0], atol=1e-6)


def test_bart_model_through_the_cli(bart_dir, tmp_path):
    (tmp_path / "in.csv").write_text("text\ngood\nbad\n")
    result = invoke("score", tmp_path / "in.csv", "-l", ",".join(LABELS), "-m", bart_dir, "-q")
    assert result.returncode == 0, result.stderr
    reference = expected_scores(bart_dir, ["good", "bad"])
    rows = read_csv_rows(result.stdout)
    np.testing.assert_allclose([[float(v) for v in r[1:4]] for r in rows[1:]], reference.probs, atol=1e-6)


@pytest.mark.parametrize("policy, expected_ids", [("skip", ["1", "3"]), ("empty", ["1", "2", "3"])])
def test_null_text_policies(t5_dir, tmp_path, policy, expected_ids):
    (tmp_path / "in.csv").write_text("id,text\n1,good\n2,\n3,bad\n")
    result = invoke("score", tmp_path / "in.csv", "-l", "positive,negative", "-m", t5_dir, "--on-null", policy)
    assert result.returncode == 0, result.stderr
    assert [row[0] for row in read_csv_rows(result.stdout)[1:]] == expected_ids
    assert f"{3 - len(expected_ids)} skipped" in result.stderr.decode()


def test_long_texts_are_truncated_and_counted(t5_dir, tmp_path):
    (tmp_path / "in.csv").write_text("text\nshort\n" + "word " * 50 + "\n")
    result = invoke(
        "score", tmp_path / "in.csv", "-l", "positive,negative", "-m", t5_dir, "-t", "{text}", "--max-length", "8"
    )
    assert result.returncode == 0, result.stderr
    assert "1 truncated" in result.stderr.decode()


def test_empty_input_gives_header_only(t5_dir, tmp_path):
    (tmp_path / "in.csv").write_text("id,text\n")
    out = tmp_path / "out.csv"
    assert invoke("score", tmp_path / "in.csv", "-l", "a,b", "-m", t5_dir, "-o", out, "-q").returncode == 0
    assert out.read_text() == "id,text,p_a,p_b,pred,entropy\n"


def test_jsonl_on_stdin_is_recognised_and_its_bools_are_written_as_json_spells_them(t5_dir, tmp_path):
    lines = b'{"text": "good", "flag": true}\n{"text": "bad", "flag": false}\n'
    piped = run_cli("score", "-", "-l", "positive,negative", "-m", t5_dir, stdin=lines)
    assert piped.returncode == 0, piped.stderr
    (tmp_path / "in.jsonl").write_bytes(lines)
    named = invoke("score", tmp_path / "in.jsonl", "-l", "positive,negative", "-m", t5_dir)
    assert piped.stdout == named.stdout
    assert [(row["text"], row["flag"]) for row in csv_rows(piped.stdout)] == [("good", "true"), ("bad", "false")]
