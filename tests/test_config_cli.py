"""`t5cls score --config`, ranking and `t5cls inspect` end to end, in real subprocesses."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from helpers.cli import assert_one_line_error, invoke, run_cli
from t5cls.errors import InputError
from t5cls.eval import triage
from t5cls.run.ranking import ranks_within_groups

SENTIMENT = (
    '[[task]]\nname = "sentiment"\ntemplate = "Review: {text} Sentiment:"\n'
    'labels = ["positive", "negative", "not sure"]\n'
)
TOPIC = '[[task]]\nname = "topic"\ntemplate = "{text} Topic: {labels}"\nlabels = ["food", "service"]\nmode = "pmi"\n'
RELEVANCE = (
    '[[task]]\nname = "rel"\ntemplate = "Query: {query} Document: {document} Relevant:"\n'
    'labels = ["true", "false"]\nmode = "first"\npositive = "true"\n'
)
ROWS = [
    ("q1", "the pasta was great"),
    ("q2", "rude waiter, cold food"),
    ("q1", "never again"),
    ("q2", "the staff were lovely"),
    ("q1", "fine, nothing special"),
    ("q3", "best concert in years"),
]


def read_csv(path):
    return list(csv.DictReader(io.StringIO(path.read_text(), newline="")))


@pytest.fixture
def reviews(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("query,text,document\n" + "".join(f'{q},"{t}","{t}"\n' for q, t in ROWS))
    return path


def config(tmp_path, *tasks, name="tasks.toml"):
    path = tmp_path / name
    path.write_text("\n".join(tasks))
    return path


def score(model, source, *extra):
    return invoke("score", source, "-m", model, "-q", "--chunk-size", "4", *extra)


def test_two_tasks_in_one_pass_equal_two_separate_runs_and_the_quick_path(t5_dir, tmp_path, reviews):
    both = score(t5_dir, reviews, "--config", config(tmp_path, SENTIMENT, TOPIC), "-o", tmp_path / "both.csv")
    assert both.returncode == 0, both.stderr
    alone = {}
    for name, body in (("sentiment", SENTIMENT), ("topic", TOPIC)):
        result = score(
            t5_dir, reviews, "--config", config(tmp_path, body, name=f"{name}.toml"), "-o", tmp_path / f"{name}.csv"
        )
        assert result.returncode == 0, result.stderr
        alone[name] = read_csv(tmp_path / f"{name}.csv")
    quick = score(t5_dir, reviews, "-l", "positive,negative,not sure", "-t", "Review: {text} Sentiment:")
    assert quick.returncode == 0, quick.stderr
    combined = read_csv(tmp_path / "both.csv")
    assert list(combined[0]) == [
        "query",
        "text",
        "document",
        "sentiment_p_positive",
        "sentiment_p_negative",
        "sentiment_p_not sure",
        "sentiment_pred",
        "sentiment_entropy",
        "topic_p_food",
        "topic_p_service",
        "topic_pred",
        "topic_entropy",
    ]
    for name, rows in alone.items():
        for row, single in zip(combined, rows, strict=True):
            assert {k: v for k, v in row.items() if k.startswith(name)} == {
                k: v for k, v in single.items() if k.startswith(name)
            }
    quick_rows = list(csv.DictReader(io.StringIO(quick.stdout.decode(), newline="")))
    for row, plain in zip(combined, quick_rows, strict=True):
        assert [row[f"sentiment_{k}"] for k in ("p_positive", "pred", "entropy")] == [
            plain[k] for k in ("p_positive", "pred", "entropy")
        ]


def test_relevance_scores_and_ranks_within_each_query(t5_dir, tmp_path, reviews):
    out = tmp_path / "ranked.csv"
    result = score(t5_dir, reviews, "--config", config(tmp_path, RELEVANCE), "--rank-by", "query", "-o", out)
    assert result.returncode == 0, result.stderr
    rows = read_csv(out)
    assert list(rows[0])[-3:] == ["rel_entropy", "rel_score", "rel_rank"]
    assert [row["rel_score"] for row in rows] == [row["rel_p_true"] for row in rows]
    for query in ("q1", "q2", "q3"):
        group = [row for row in rows if row["query"] == query]
        by_rank = sorted(group, key=lambda row: int(row["rel_rank"]))
        assert [int(row["rel_rank"]) for row in by_rank] == list(range(1, len(group) + 1))
        scores = [float(row["rel_score"]) for row in by_rank]
        assert scores == sorted(scores, reverse=True)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.csv", "ranked.csv", "tasks.toml"]


def test_rank_by_in_the_config_to_parquet_keeps_provenance(t5_dir, tmp_path, reviews):
    out = tmp_path / "ranked.parquet"
    body = RELEVANCE + 'rank_by = "query"\n'
    result = score(t5_dir, reviews, "--config", config(tmp_path, body), "-o", out)
    assert result.returncode == 0, result.stderr
    table = pq.read_table(out)
    assert (
        table["rel_rank"].to_pylist()
        == ranks_within_groups(table["query"].to_pylist(), table["rel_score"].to_numpy()).tolist()
    )
    assert table.schema.metadata[b"t5cls.config"].decode() == body


def test_ranks_within_groups_by_score_ties_in_file_order():
    groups = ["a", "b", "a", "a", "b", "c"]
    scores = np.array([0.2, 0.9, 0.7, 0.2, 0.1, 0.5])
    assert ranks_within_groups(groups, scores).tolist() == [2, 1, 1, 3, 2, 1]
    assert ranks_within_groups([], np.zeros(0)).tolist() == []


def test_multi_label_task_through_the_cli(t5_dir, tmp_path, reviews):
    body = (
        '[[task]]\nname = "about"\ntemplate = "{text} Is it about {label}?"\nlabels = ["food", "staff"]\n'
        "multi_label = true\n"
    )
    result = score(t5_dir, reviews, "--config", config(tmp_path, body), "--format", "jsonl")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.decode().splitlines()]
    for row in rows:
        chosen = [name for name in ("food", "staff") if row[f"about_p_{name}"] > 0.5]
        assert row["about_pred"] == ",".join(chosen)
        assert 0 < row["about_p_food"] < 1 and 0 < row["about_p_staff"] < 1


def test_dry_run_shows_every_task(t5_dir, tmp_path, reviews):
    result = score(t5_dir, reviews, "--config", config(tmp_path, SENTIMENT, TOPIC), "--dry-run")
    assert result.returncode == 0, result.stderr
    plan = result.stdout.decode()
    assert "task sentiment: mode sum, temperature 1" in plan and "task topic: mode pmi" in plan
    assert "Review: the pasta was great Sentiment:" in plan and "the pasta was great Topic: food, service" in plan


@pytest.mark.parametrize(
    "body, extra, fragments",
    [
        (SENTIMENT + 'modee = "sum"\n', [], ["tasks.toml: task 'sentiment': unknown key 'modee'"]),
        ('[[task]]\nname = "s"\ntemplate = "{text}"\n', [], ["tasks.toml: task 's': missing key 'labels'"]),
        (SENTIMENT + 'mode = "max"\n', [], ["task 'sentiment': 'mode' must be one of", "got 'max'"]),
        (
            SENTIMENT.replace("{text}", "{body}"),
            [],
            ["task 'sentiment': 'template' reads column 'body'", "columns are: query, text, document"],
        ),
        (SENTIMENT, ["-l", "a,b"], ["give either --labels or --config, not both"]),
        (SENTIMENT, ["--rank-by", "query"], ["--rank-by needs 'positive', the class whose probability"]),
        (RELEVANCE + 'rank_by = "query"\n', [], ["needs an output file"]),
    ],
    ids=[
        "unknown-key",
        "missing-labels",
        "bad-mode",
        "missing-column",
        "with-labels",
        "rank-by-without-positive",
        "rank-to-stdout",
    ],
)
def test_config_errors_are_one_line_before_the_model_loads(tmp_path, reviews, body, extra, fragments):
    result = score("no-such-org/no-such-model", reviews, "--config", config(tmp_path, body), *extra)
    assert_one_line_error(result, *fragments)


def test_first_with_a_shared_first_token_fails_after_load_before_scoring(t5_dir, tmp_path, reviews):
    body = SENTIMENT.replace('"positive", "negative", ', '"not entailment", ') + 'mode = "first"\n'
    out = tmp_path / "out.csv"
    assert_one_line_error(
        score(t5_dir, reviews, "--config", config(tmp_path, body), "-o", out),
        "task 'sentiment': mode 'first'",
        "'not sure'",
    )
    assert not out.exists()


def test_neither_labels_nor_config(t5_dir, reviews):
    assert_one_line_error(score(t5_dir, reviews), "give the labels with --labels")


ENTROPY_ROWS = [("alpha", 0.5), ("bravo", 0.1), ("charlie", 0.9), ("delta", 0.1), ("echo", 0.7), ("foxtrot", 0.3)]


@pytest.fixture
def scored(tmp_path):
    table = pa.table(
        {
            "text": [text for text, _ in ENTROPY_ROWS],
            "t_p_x": [0.5] * 6,
            "t_p_y": [0.5] * 6,
            "t_pred": ["x"] * 6,
            "t_entropy": [value for _, value in ENTROPY_ROWS],
        }
    )
    pq.write_table(table, tmp_path / "scored.parquet")
    return tmp_path / "scored.parquet"


@pytest.mark.parametrize(
    "highest, expected", [(False, ["bravo", "delta", "foxtrot"]), (True, ["charlie", "echo", "alpha"])]
)
def test_inspect_keeps_the_extreme_rows_across_chunks(scored, monkeypatch, highest, expected):
    monkeypatch.setattr(triage, "SCAN_CHUNK_ROWS", 2)
    rows, table = triage.extreme_rows(str(scored), "t_entropy", 3, highest=highest)
    assert table["text"].to_pylist() == expected
    assert rows == [1 + [text for text, _ in ENTROPY_ROWS].index(text) for text in expected]


def test_inspect_prints_a_table_or_writes_a_file(scored, tmp_path):
    shown = invoke("inspect", scored, "--highest-entropy", "2", "--task", "t")
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout.decode()
    assert "highest t_entropy" in text and "charlie" in text and "echo" in text and "alpha" not in text
    out = tmp_path / "low.csv"
    written = invoke("inspect", scored, "--lowest-entropy", "1", "--task", "t", "-o", out)
    assert written.returncode == 0, written.stderr
    assert read_csv(out) == [{"text": "bravo", "t_p_x": "0.5", "t_p_y": "0.5", "t_pred": "x", "t_entropy": "0.1"}]


def test_inspect_piped_is_not_cut_to_a_terminal_width(tmp_path):
    """Piped or redirected, the title and every row stay on one line, however long the path."""
    folder = tmp_path / ("a-rather-long-folder-name-" * 6) / ("and-another-one-" * 6)
    folder.mkdir(parents=True)
    text = "a review long enough that an eighty-column terminal would have to wrap it " * 2
    table = pa.table({"text": [text, "short"], "t_p_x": [0.5, 0.9], "t_p_y": [0.5, 0.1], "t_entropy": [0.69, 0.33]})
    pq.write_table(table, folder / "scored.parquet")
    result = run_cli("inspect", folder / "scored.parquet", "--highest-entropy", "2", "--task", "t")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert lines[0] == f"2 rows of {folder / 'scored.parquet'} with the highest t_entropy"
    assert any(text.strip() in line and "0.69" in line for line in lines)


def test_inspect_errors(scored):
    assert_one_line_error(invoke("inspect", scored, "--lowest-entropy", "2"), "no 'entropy' column", "--task: t")
    assert_one_line_error(
        invoke("inspect", scored, "--task", "t"), "give one of --lowest-entropy N or --highest-entropy N"
    )
    with pytest.raises(InputError, match="at least 1"):
        triage.run_inspect(scored=str(scored), lowest_entropy=0, task="t")
