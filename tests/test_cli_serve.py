"""`t5cls serve` as a process: 503 while loading, SIGTERM with requests in flight, the API key, start-up errors."""

from __future__ import annotations

import signal
import socket
import threading
import time

import httpx
import numpy as np
import pytest

from helpers.cli import assert_one_line_error, run_cli
from helpers.server import served, wait_until_healthy
from t5cls.errors import EXIT_MODEL, EXIT_USAGE

LABELS = "positive,negative"
KEY_ENV = "T5CLS_TEST_SERVE_KEY"


def test_health_is_503_until_the_model_is_loaded_and_requests_wait_for_it(t5_dir):
    with served("-m", t5_dir, "-l", LABELS, healthy=False) as server:
        with server.client() as client:
            first = client.get("/health")  # the socket is bound before torch is even imported
            early = client.post("/v1/classify", json={"input": ["too early"]})
        assert first.status_code == 503 and first.json()["error"]["type"] == "service_unavailable"
        assert early.status_code in (200, 503)
        if early.status_code == 503:
            assert early.headers["retry-after"] == "5" and "loading" in early.json()["error"]["message"]
        wait_until_healthy(server.process, server.url)
        assert server.post("/v1/classify", {"input": ["now"]}).status_code == 200
        assert "ready" in server.stderr()


def test_sigterm_answers_every_request_in_flight_refuses_new_ones_and_exits_0(t5_dir):
    texts = [f"review {i}: the movie was great" for i in range(1000)]
    with served("-m", t5_dir, "-l", LABELS, "--batch-size", "1", "--max-rows", "2000") as server:
        alone = server.post("/v1/classify", {"input": texts[:3]}).json()["data"]
        answers: dict[str, httpx.Response] = {}

        def send(name: str, body: dict) -> None:
            answers[name] = server.post("/v1/classify", body)

        scoring = threading.Thread(target=send, args=("scoring", {"input": texts}))
        scoring.start()
        deadline = time.monotonic() + 60
        while server.metric("t5cls_scoring_rows") != len(texts):  # the big request is in the scorer now
            assert time.monotonic() < deadline and "scoring" not in answers, "the request was never seen scoring"
            time.sleep(0.02)
        queued = threading.Thread(target=send, args=("queued", {"input": texts[:3]}))
        queued.start()
        time.sleep(0.3)  # queued behind the big one
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        try:
            after = server.post("/v1/classify", {"input": ["after the signal"]}).status_code
        except httpx.TransportError:
            after = "refused"
        assert after in (503, "refused")
        scoring.join(timeout=120)
        queued.join(timeout=120)
        assert server.process.wait(timeout=120) == 0
        assert "stopped" in server.stderr()
    assert answers["scoring"].status_code == 200 and len(answers["scoring"].json()["data"]) == len(texts)
    for answer in (answers["scoring"].json()["data"][:3], answers["queued"].json()["data"]):
        np.testing.assert_allclose([a["probs"] for a in answer], [a["probs"] for a in alone], rtol=0, atol=1e-6)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_signal_on_an_idle_server_exits_0(t5_dir, signum):
    with served("-m", t5_dir, "-l", LABELS) as server:
        assert server.stop(signum) == 0


def test_the_api_key_is_required_on_the_v1_endpoints_and_metrics(t5_dir):
    env = {KEY_ENV: "s3cret-key"}
    with served("-m", t5_dir, "-l", LABELS, "--api-key-env", KEY_ENV, env=env) as server:
        with server.client() as client:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret-key"}):
                response = client.post("/v1/classify", json={"input": ["x"]}, headers=headers)
                assert response.status_code == 401, headers
                assert response.headers["www-authenticate"] == "Bearer"
                assert response.json()["error"]["type"] == "authentication_error"
                assert client.get("/metrics", headers=headers).status_code == 401
            good = {"Authorization": "Bearer s3cret-key"}
            assert client.post("/v1/classify", json={"input": ["x"]}, headers=good).status_code == 200
            assert client.get("/v1/models", headers=good).status_code == 200
            assert client.get("/health").status_code == 200  # load balancers carry no key
        assert "s3cret-key" not in server.stderr()


def test_a_missing_key_variable_is_a_usage_error_before_anything_loads(t5_dir):
    result = run_cli("serve", "-m", t5_dir, "-l", LABELS, "--api-key-env", KEY_ENV, env={KEY_ENV: ""})
    assert_one_line_error(result, f"--api-key-env {KEY_ENV}", "unset or empty", code=EXIT_USAGE)


def test_a_batch_mode_task_is_refused(t5_dir, tmp_path):
    config = tmp_path / "batch.toml"
    config.write_text('[[task]]\nname = "t"\ntemplate = "{text}"\nlabels = ["yes", "no"]\nmode = "batch"\n')
    result = run_cli("serve", "-m", t5_dir, "-c", config)
    assert_one_line_error(result, "task 't'", "mode 'batch'", "other requests' rows", code=EXIT_USAGE)


def test_a_port_in_use_is_a_usage_error(t5_dir):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", "-m", t5_dir, "-l", LABELS, "--port", port)
    assert_one_line_error(result, f"cannot listen on --host 127.0.0.1 --port {port}", code=EXIT_USAGE)


def test_a_model_that_cannot_load_stops_the_server_with_exit_3(tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "t5"}')
    result = run_cli("serve", "-m", broken, "-l", LABELS, "--port", "0")
    lines = result.stderr.decode().strip().splitlines()
    assert result.returncode == EXIT_MODEL, result.stderr.decode()
    assert lines[-1].startswith("t5cls: error: could not load model") and "Traceback" not in result.stderr.decode()
