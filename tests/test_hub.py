"""A hub name while the Hub cannot be reached: the cached copy in seconds, or one line (exit 3) in seconds.

The Hub here is a local address that refuses connections, or one that accepts and never answers,
so the tests send nothing off this machine. Bounds are generous (15 s: the CLI's imports take a
few seconds on a loaded machine); without the probe the same runs take about 30 s.
"""

from __future__ import annotations

import shutil
import socket
import time

import pandas as pd
import pytest

from helpers.cli import assert_one_line_error, invoke, run_cli
from t5cls import LabelScorer
from t5cls.errors import ModelLoadError

BOUND_S = 15


@pytest.fixture
def closed_port():
    """A local port nothing listens on: a connection is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def silent_port():
    """A local port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


@pytest.fixture
def reviews(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("text\ngood film\nbad film\n")
    return path


def without_hub(port: int, **env) -> dict[str, str]:
    return {"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": f"http://127.0.0.1:{port}", "T5CLS_HUB_TIMEOUT": "2", **env}


def timed(*args, env):
    started = time.monotonic()
    result = run_cli(*args, env=env, timeout=400)
    return result, time.monotonic() - started


@pytest.mark.parametrize("hub", ["closed_port", "silent_port"], ids=["refused", "no-answer"])
def test_a_hub_name_without_the_hub_fails_in_seconds_with_one_line(reviews, hub, request):
    port = request.getfixturevalue(hub)
    result, seconds = timed(
        "score", reviews, "-l", "a,b", "-m", "googel/flan-t5-base", env=without_hub(port, HF_HUB_CACHE="/nonexistent")
    )
    assert_one_line_error(result, "'googel/flan-t5-base'", "cannot be reached", "no copy is cached", "--model", code=3)
    assert seconds < BOUND_S, seconds


def test_a_cached_hub_name_loads_from_the_cache_without_the_hub(t5_dir, reviews, tmp_path, silent_port):
    """The Hub accepts and never answers, and a Hub request would wait 300 s: the probe gives up after 2 s."""
    cache = tmp_path / "hub-cache"
    repo = cache / "models--t5cls-tests--tiny-t5"
    commit = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(t5_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    from_cache, from_folder = tmp_path / "cache.csv", tmp_path / "folder.csv"
    assert invoke("score", reviews, "-l", "positive,negative", "-m", t5_dir, "-o", from_folder).returncode == 0

    env = without_hub(silent_port, HF_HUB_CACHE=str(cache), HF_HUB_ETAG_TIMEOUT="300", HF_HUB_DOWNLOAD_TIMEOUT="300")
    args = ("score", reviews, "-l", "positive,negative", "-m", "t5cls-tests/tiny-t5", "-o", from_cache)
    result, seconds = timed(*args, env=env)
    assert result.returncode == 0, result.stderr
    assert seconds < 120, seconds  # 15-20 s on a loaded 2-core machine; without the probe over 300 s
    pd.testing.assert_frame_equal(pd.read_csv(from_cache), pd.read_csv(from_folder))


def test_the_python_api_names_its_parameter_not_the_flag():
    """Tests run with HF_HUB_OFFLINE=1 (conftest): the same refusal as an unreachable Hub."""
    with pytest.raises(ModelLoadError) as raised:
        LabelScorer.from_pretrained("googel/flan-t5-base")
    message = str(raised.value)
    assert "could not load model 'googel/flan-t5-base'" in message and "name_or_path" in message, message
    assert "--model" not in message, message
