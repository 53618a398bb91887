"""`t5cls serve` over HTTP: a real server process on a free 127.0.0.1 port, answers equal to `t5cls score`'s.

Each module-scoped server is started once (`helpers.server.served`) and killed at the end; the
reference values come from `t5cls score` on the same rows written to a CSV file.
"""

from __future__ import annotations

import csv
import json
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from helpers.cli import invoke
from helpers.server import metric, served
from helpers.tiny_models import skip_without_digits

ROOT = Path(__file__).resolve().parents[1]
LABELS = "positive,negative,neutral"
TEXTS = [
    "the movie was great and the acting was wonderful",
    "terrible plot, boring characters",
    "café naïve 東京 🙂",
    'quotes " and commas , everywhere',
    "not sure",
    "a",
    "strongly positive strongly negative somewhat positive not sure",
    "line\nbreak",
]
TWO_TASKS = """
[[task]]
name = "sentiment"
template = "Review: {text} Sentiment:"
labels = { positive = ["positive", "great"], negative = ["negative"], mixed = ["mixed feelings"] }

[[task]]
name = "stars"
template = "Title: {title} Review: {text} Stars:"
labels = ["1", "2", "3"]
mode = "mean"
"""
TOLERANCE = 1e-6  # the same rows in another batch: padding changes the float rounding, nothing else


def reference(tmp_path: Path, rows: list[dict], *args) -> list[dict]:
    """`t5cls score`'s output rows for ``rows`` (a CSV input), as dicts of text."""
    columns = list(rows[0])
    source, output = tmp_path / "reference-in.csv", tmp_path / "reference-out.csv"
    with open(source, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(rows)
    result = invoke("score", source, *args, "-q", "-o", output)
    assert result.returncode == 0, result.stderr.decode()
    with open(output, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def assert_same_values(served_row: dict, reference_row: dict, columns: list[str]) -> None:
    for column in columns:
        expected, got = reference_row[column], served_row[column]
        if isinstance(got, str):
            assert got == expected, column
        else:
            assert got == pytest.approx(float(expected), abs=TOLERANCE), column


def added_columns(reference_rows: list[dict], input_columns: list[str]) -> list[str]:
    return [name for name in reference_rows[0] if name not in input_columns]


@pytest.fixture(scope="module")
def one_task(t5_dir):
    with served("-m", t5_dir, "-l", LABELS, "-t", "{text} Sentiment:", "--max-rows", "50", "--max-bytes", "4000") as s:
        yield s


@pytest.fixture(scope="module")
def two_tasks(t5_dir, tmp_path_factory):
    skip_without_digits(t5_dir, 4)  # the stars task's labels 1, 2, 3
    config = tmp_path_factory.mktemp("serve-config") / "two.toml"
    config.write_text(TWO_TASKS)
    with served("-m", t5_dir, "-c", config, "--logprobs") as s:
        yield s, config


@pytest.fixture(scope="module")
def ranking(t5_dir):
    with served("-m", t5_dir, "-c", ROOT / "configs" / "relevance.toml") as s:
        yield s


# What is answered ------------------------------------------------------------------------------


def test_classify_answers_what_score_writes_in_vllms_shape(one_task, t5_dir, tmp_path):
    response = one_task.post("/v1/classify", {"input": TEXTS})
    assert response.status_code == 200, response.text
    body = response.json()
    expected = reference(tmp_path, [{"text": t} for t in TEXTS], "-m", t5_dir, "-l", LABELS, "-t", "{text} Sentiment:")
    assert body["object"] == "list" and body["model"] == str(t5_dir) and body["id"].startswith("classify-")
    assert body["labels"] == LABELS.split(",")
    assert [item["index"] for item in body["data"]] == list(range(len(TEXTS)))
    for item, row in zip(body["data"], expected):
        assert item["label"] == row["pred"] and item["num_classes"] == 3
        assert item["probs"] == pytest.approx([float(row[f"p_{label}"]) for label in LABELS.split(",")], abs=TOLERANCE)
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > len(TEXTS)

    single = one_task.post("/v1/classify", {"input": TEXTS[2]}).json()["data"]
    assert len(single) == 1 and single[0]["index"] == 0
    assert single[0]["probs"] == pytest.approx(body["data"][2]["probs"], abs=TOLERANCE)
    assert one_task.post("/v1/classify", {"input": []}).json()["data"] == []


def test_score_of_a_two_task_config_equals_score_on_the_same_rows(two_tasks, t5_dir, tmp_path):
    server, config = two_tasks
    rows = [{"title": f"title {i}", "text": text, "id": i} for i, text in enumerate(TEXTS)]
    response = server.post("/v1/score", {"rows": rows})
    assert response.status_code == 200, response.text
    body = response.json()
    expected = reference(tmp_path, rows, "-m", t5_dir, "-c", config, "--logprobs")
    columns = added_columns(expected, ["title", "text", "id"])
    assert body["columns"] == columns and "stars_logp_1" in columns and "sentiment_pred" in columns
    assert len(body["rows"]) == len(rows)
    for served_row, reference_row in zip(body["rows"], expected):
        assert list(served_row) == columns
        assert_same_values(served_row, reference_row, columns)


def test_rerank_orders_the_documents_by_the_ranking_tasks_score(ranking, t5_dir, tmp_path):
    documents = TEXTS[:6]
    query = "is this review positive"
    response = ranking.post("/v1/rerank", {"query": query, "documents": documents, "return_documents": True})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    rows = [{"query": query, "document": document} for document in documents]
    expected = reference(tmp_path, rows, "-m", t5_dir, "-c", ROOT / "configs" / "relevance.toml")
    scores = [float(row["relevance_score"]) for row in expected]
    assert sorted(item["index"] for item in results) == list(range(len(documents)))
    for item in results:
        assert item["relevance_score"] == pytest.approx(scores[item["index"]], abs=TOLERANCE)
        assert item["document"] == {"text": documents[item["index"]]}
    served_scores = [item["relevance_score"] for item in results]
    assert served_scores == sorted(served_scores, reverse=True)
    ranks = {int(row["relevance_rank"]): i for i, row in enumerate(expected)}  # score's ranks: the same order
    assert [item["index"] for item in results] == [ranks[rank] for rank in sorted(ranks)]

    top = ranking.post("/v1/rerank", {"query": query, "documents": documents, "top_n": 2}).json()["results"]
    assert [item["index"] for item in top] == [item["index"] for item in results[:2]]
    assert all(item["document"] is None for item in top)
    scored = ranking.post("/v1/score", {"rows": rows}).json()
    assert scored["columns"] == [name for name in expected[0] if name not in ("query", "document", "relevance_rank")]
    assert "configs/relevance.toml: task 'relevance': rank_by is not served" in ranking.stderr()


def test_models_lists_the_tasks_labels_columns_and_endpoints(one_task, two_tasks, ranking):
    card = one_task.client().get("/v1/models").json()["data"][0]
    assert card["tasks"][0]["classes"] == LABELS.split(",") and card["tasks"][0]["columns_read"] == ["text"]
    assert card["endpoints"] == ["/v1/score", "/v1/classify"]
    two = two_tasks[0].client().get("/v1/models").json()["data"][0]
    assert [task["name"] for task in two["tasks"]] == ["sentiment", "stars"] and two["endpoints"] == ["/v1/score"]
    assert ranking.client().get("/v1/models").json()["data"][0]["endpoints"] == ["/v1/score", "/v1/rerank"]
    spec = one_task.client().get("/openapi.json").json()
    assert {"/v1/classify", "/v1/score", "/v1/rerank", "/v1/models", "/health", "/metrics"} <= set(spec["paths"])


# Bad requests: one error body each, OpenAI's shape ----------------------------------------------------


def assert_error(response: httpx.Response, status: int, param: str | None, *fragments: str) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == status
    assert error["param"] == param, error
    for fragment in fragments:
        assert fragment in error["message"], error
    return error


@pytest.mark.parametrize(
    ("body", "param", "fragment"),
    [
        ({"rows": [{"text": "fine"}, {"text": None}]}, "rows[1].text", "empty or null"),
        ({"rows": [{"text": "fine"}, {"text": "   "}]}, "rows[1].text", "empty or null"),
        ({"rows": [{"text": "fine"}, {"other": "x"}]}, "rows[1].text", "missing"),
        ({"rows": [{"text": 7}]}, "rows[0].text", "must be a string"),
        ({"rows": "text"}, "rows", "valid list"),
        ({"rows": [], "labels": ["a", "b"]}, "labels", "Extra inputs are not permitted"),
    ],
)
def test_a_row_or_field_that_cannot_be_read_is_422_naming_it(one_task, body, param, fragment):
    error = assert_error(one_task.post("/v1/score", body), 422, param, fragment)
    assert error["type"] == "invalid_request_error"


def test_malformed_json_and_wrong_types_are_422(one_task):
    with one_task.client() as client:
        bad_json = client.post("/v1/classify", content=b'{"input": ["a",', headers={"content-type": "application/json"})
        assert_error(bad_json, 422, None, "not valid JSON")
        assert_error(client.post("/v1/classify", json={"input": 5}), 422, "input")
        assert_error(client.post("/v1/classify", json={"input": ["a", None]}), 422, "input[1]")
        assert_error(client.post("/v1/classify", json={"input": ["fine", " "]}), 422, "input[1]", "empty or null")
        assert_error(client.post("/v1/classify", content=b"[1]", headers={"content-type": "application/json"}), 422,
                     None, "JSON object")  # fmt: skip


def test_requests_over_the_row_or_byte_limit_are_413(one_task):
    assert_error(one_task.post("/v1/classify", {"input": ["x"] * 51}), 413, "input", "at most 50")
    assert_error(one_task.post("/v1/score", {"rows": [{"text": "x"}] * 51}), 413, "rows", "at most 50")
    assert_error(one_task.post("/v1/classify", {"input": ["y" * 5000]}), 413, None, "4000 bytes")
    chunked = iter([b'{"input": ["', b"z" * 3000, b"z" * 3000, b'"]}'])  # no Content-Length: counted as it comes
    with one_task.client() as client:
        assert_error(client.post("/v1/classify", content=chunked, headers={"content-type": "application/json"}), 413,
                     None, "4000 bytes")  # fmt: skip
    assert one_task.post("/v1/classify", {"input": ["fine"] * 50}).status_code == 200


def test_an_endpoint_the_servers_tasks_do_not_allow_says_which_to_use(one_task, two_tasks):
    assert_error(two_tasks[0].post("/v1/classify", {"input": ["x"]}), 400, None, "one task", "/v1/score")
    assert_error(one_task.post("/v1/rerank", {"query": "q", "documents": ["x"]}), 400, None, "ranking task")
    assert_error(one_task.post("/v1/classify", {"model": "gpt-4", "input": ["x"]}), 404, "model", "not served here")
    assert_error(one_task.client().get("/v1/nothing"), 404, None)


def test_a_bad_request_fails_alone_while_others_are_answered(one_task):
    """Concurrent good and bad requests: each bad one gets its 422, every good one its values."""
    good = one_task.post("/v1/classify", {"input": TEXTS}).json()["data"]
    outcomes: dict[int, httpx.Response] = {}

    def send(i: int) -> None:
        body = {"input": TEXTS} if i % 2 == 0 else {"input": [*TEXTS[:3], None]}
        outcomes[i] = one_task.post("/v1/classify", body)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(outcomes) == list(range(8))
    for i, response in outcomes.items():
        if i % 2:
            assert_error(response, 422, "input[3]")
        else:
            got = [item["probs"] for item in response.json()["data"]]
            np.testing.assert_allclose(got, [item["probs"] for item in good], rtol=0, atol=TOLERANCE)


# Metrics --------------------------------------------------------------------------------------------


def test_metrics_count_requests_rows_batches_and_latency(one_task):
    before = one_task.client().get("/metrics").text
    assert one_task.post("/v1/classify", {"input": TEXTS[:3]}).status_code == 200
    after = one_task.client().get("/metrics")
    assert after.headers["content-type"].startswith("text/plain")
    text = after.text
    assert (
        metric(text, 't5cls_rows_total{endpoint="/v1/classify"}')
        - metric(before, 't5cls_rows_total{endpoint="/v1/classify"}')
        == 3
    )
    assert metric(text, 't5cls_requests_total{endpoint="/v1/classify",status="200"}') >= 1
    assert metric(text, "t5cls_batch_rows_count") >= 1 and metric(text, "t5cls_batch_rows_sum") >= 3
    assert metric(text, 't5cls_request_seconds_count{endpoint="/v1/classify"}') >= 1
    assert "t5cls_queue_requests 0.0" in text and "# TYPE t5cls_request_seconds histogram" in text
    assert json.loads(one_task.client().get("/health").text) == {"status": "ok"}


# Load: concurrent clients, a full queue, non-finite scores ----------------------------------------------


def run_clients(count: int, send) -> dict:
    """``send(i)`` in ``count`` threads started together (bounded waits); their results by ``i``."""
    start = threading.Barrier(count, timeout=60)
    results: dict = {}

    def client(i: int) -> None:
        start.wait()
        results[i] = send(i)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert sorted(results) == list(range(count)), "a client did not finish"
    return results


def test_concurrent_clients_are_batched_together_and_each_gets_its_own_answers(t5_dir, tmp_path):
    expected = reference(tmp_path, [{"text": t} for t in TEXTS], "-m", t5_dir, "-l", LABELS)
    by_text = {text: [float(row[f"p_{label}"]) for label in LABELS.split(",")] for text, row in zip(TEXTS, expected)}
    with served("-m", t5_dir, "-l", LABELS, "--batch-wait-ms", "50") as server:

        def send(i: int) -> list[tuple[list[str], httpx.Response]]:
            answers = []
            with server.client() as client:
                for j in range(5):
                    texts = [TEXTS[(i * 3 + j * 5 + k) % len(TEXTS)] for k in range(1 + (i + j) % 4)]
                    answers.append((texts, client.post("/v1/classify", json={"input": texts})))
            return answers

        results = run_clients(8, send)
        metrics = server.client().get("/metrics").text
    for answers in results.values():
        for texts, response in answers:
            assert response.status_code == 200, response.text
            got = [item["probs"] for item in response.json()["data"]]
            np.testing.assert_allclose(got, [by_text[text] for text in texts], rtol=0, atol=TOLERANCE)
    assert metric(metrics, 't5cls_rows_total{endpoint="/v1/classify"}') == sum(
        len(texts) for answers in results.values() for texts, _ in answers
    )
    batches, requests = metric(metrics, "t5cls_batch_requests_count"), metric(metrics, "t5cls_batch_requests_sum")
    assert requests == 40 and batches < requests, "no scorer call served two requests"


def test_past_the_queue_limit_requests_get_503_with_retry_after_and_the_rest_their_answers(t5_dir, tmp_path):
    texts = [f"review number {i}: {TEXTS[i % len(TEXTS)]}" for i in range(40)]
    expected = reference(tmp_path, [{"text": t} for t in texts], "-m", t5_dir, "-l", LABELS)
    probs = [[float(row[f"p_{label}"]) for label in LABELS.split(",")] for row in expected]
    with served("-m", t5_dir, "-l", LABELS, "--batch-size", "1", "--queue-size", "1") as server:
        results = run_clients(10, lambda i: server.post("/v1/classify", {"input": texts}))
        assert server.post("/v1/classify", {"input": texts[:2]}).status_code == 200  # and it goes on
    statuses = sorted(response.status_code for response in results.values())
    assert 200 in statuses and 503 in statuses and set(statuses) == {200, 503}, statuses
    for response in results.values():
        if response.status_code == 503:
            assert_error(response, 503, None, "queue is full")
            assert response.headers["retry-after"] == "1"
        else:
            got = [item["probs"] for item in response.json()["data"]]
            np.testing.assert_allclose(got, probs, rtol=0, atol=TOLERANCE)


def test_non_finite_scores_fail_only_the_request_that_caused_them_and_the_server_stays_up(tmp_path):
    from helpers.tiny_models import build_poisoned_t5

    model = build_poisoned_t5(tmp_path / "poisoned")
    with served("-m", model, "-l", LABELS, "--batch-wait-ms", "100") as server:
        clean = server.post("/v1/classify", {"input": TEXTS[:3]}).json()["data"]

        def send(i: int) -> httpx.Response:
            texts = [TEXTS[0], "a <poison> review", TEXTS[2]] if i % 3 == 0 else TEXTS[:3]
            return server.post("/v1/classify", {"input": texts})

        results = run_clients(6, send)
        for i, response in results.items():
            if i % 3 == 0:
                error = assert_error(response, 500, "input[1]", "non-finite")
                assert error["type"] == "server_error"
            else:
                got = [item["probs"] for item in response.json()["data"]]
                np.testing.assert_allclose(got, [item["probs"] for item in clean], rtol=0, atol=TOLERANCE)
        assert server.client().get("/health").status_code == 200
        assert server.post("/v1/classify", {"input": TEXTS[:3]}).status_code == 200


def test_a_client_that_leaves_before_its_batch_costs_no_scoring(t5_dir):
    texts = [f"review {i}: the movie was great" for i in range(1000)]
    with served("-m", t5_dir, "-l", LABELS, "--batch-size", "1", "--max-rows", "2000") as server:
        big: dict[str, httpx.Response] = {}
        scoring = threading.Thread(target=lambda: big.update(r=server.post("/v1/classify", {"input": texts})))
        scoring.start()
        deadline = time.monotonic() + 60
        while server.metric("t5cls_scoring_rows") != len(texts):
            assert time.monotonic() < deadline and not big, "the request was never seen scoring"
            time.sleep(0.02)
        with httpx.Client(base_url=server.url, timeout=0.5) as impatient, pytest.raises(httpx.ReadTimeout):
            impatient.post("/v1/classify", json={"input": ["gone", "before", "its", "turn"]})
        scoring.join(timeout=120)
        assert big["r"].status_code == 200
        while server.metric('t5cls_rejected_total{reason="client_gone"}') != 1:
            assert time.monotonic() < deadline + 60, "the server never saw the client leave"
            time.sleep(0.05)
        assert server.metric("t5cls_batch_rows_sum") == len(texts)  # the 4 rows were never scored
        assert server.post("/v1/classify", {"input": ["still up"]}).status_code == 200
