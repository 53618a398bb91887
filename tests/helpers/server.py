"""A real ``t5cls serve`` process on a free loopback port, for tests that talk HTTP to it.

`served` starts ``python -m t5cls.cli serve ARGS --port 0``, reads the port it printed, waits
(bounded) for ``/health`` to say 200 and yields a `Served`; the process is killed on the way out
whatever happened. Every wait is bounded, and all traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from helpers.cli import SINGLE_THREAD

START_TIMEOUT = 180.0  # seconds: importing torch and loading a tiny model on a loaded 2-core machine


@dataclass
class Served:
    process: subprocess.Popen
    url: str
    stderr_path: str

    def client(self, **settings) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60.0, **settings)

    def post(self, path: str, body, **settings) -> httpx.Response:
        with self.client() as client:
            return client.post(path, json=body, **settings)

    def metric(self, name: str) -> float:
        """The sum of /metrics samples named ``name`` (with its labels, if given: ``x{a="b"}``)."""
        return metric(self.client().get("/metrics").text, name)

    def stderr(self) -> str:
        with open(self.stderr_path, encoding="utf-8", errors="replace") as handle:
            return handle.read()

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 120.0) -> int:
        """Send ``signum`` and wait for the exit status."""
        self.process.send_signal(signum)
        return self.process.wait(timeout=timeout)


def metric(text: str, name: str) -> float:
    """The sum of the samples of Prometheus ``text`` named ``name`` (labels included in ``name`` if given)."""
    pattern = re.compile(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", re.M)
    return sum(float(value) for value in pattern.findall(text))


def start(*args, env: dict | None = None) -> tuple[subprocess.Popen, str]:
    """Start the server; its stderr goes to a temporary file (returned) so that it can never block on a pipe."""
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **SINGLE_THREAD, **(env or {})}
    command = [sys.executable, "-m", "t5cls.cli", "serve", *map(str, args), "--host", "127.0.0.1", "--port", "0"]
    with tempfile.NamedTemporaryFile("wb", suffix=".stderr", delete=False) as stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, env=full_env)
    return process, stderr.name


def wait_for_url(process: subprocess.Popen, stderr_path: str, timeout: float = START_TIMEOUT) -> str | None:
    """The URL the server printed once it listens; ``None`` if it exited first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(stderr_path, encoding="utf-8", errors="replace") as handle:
            found = re.search(r"listening on (http://127\.0\.0\.1:\d+)", handle.read())
        if found:
            return found.group(1)
        if process.poll() is not None:
            return None
        time.sleep(0.1)
    raise TimeoutError(f"the server printed no address within {timeout} s")


def wait_until_healthy(process: subprocess.Popen, url: str, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=url, timeout=5.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode} before it was healthy")
            try:
                if client.get("/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    raise TimeoutError(f"/health did not answer 200 within {timeout} s")


@contextmanager
def served(*args, env: dict | None = None, healthy: bool = True) -> Iterator[Served]:
    """A running server for ``t5cls serve ARGS``; killed (and reaped) on exit."""
    process, stderr_path = start(*args, env=env)
    try:
        url = wait_for_url(process, stderr_path)
        if url is None:
            with open(stderr_path, encoding="utf-8") as handle:
                raise RuntimeError(f"the server exited with {process.returncode}: {handle.read()}")
        if healthy:
            wait_until_healthy(process, url)
        yield Served(process, url, stderr_path)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=60)
        os.unlink(stderr_path)
