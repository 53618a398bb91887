"""``t5cls serve`` under load against ``score_frame`` in one process: rows/s, latency, the server's peak RSS.

    python benchmarks/bench_serve.py [--rows 2000] [--labels positive,negative,neutral] [--soak 600]

Model: the t5-small architecture with random weights (``../shared/t5-small-tokenizer``; without
it, the tests' tiny T5), saved to a temporary folder. Three ways over the same review-like rows:
(a) ``score_frame`` in this process, the rows in 1,000-row length-sorted chunks (the limit a
server can approach), run before and after the server's runs and averaged; (b) 32 concurrent
clients, one row per request; (c) 8 concurrent clients, 16 rows per request. The clients are
asyncio tasks in this process, each on its own keep-alive HTTP/1.1 connection written and read
with asyncio streams (as wrk does: a load generator that costs the machine as little as it can;
httpx's client took ~1.7 ms of CPU a request, ~20 % of (b)'s rows/s on 2 cores). They run on the
same machine as the server and take CPU from it: that is part of what is measured. Printed: rows/s
of each, (b)/(a) (target ≥ 0.8: batching works) and (c)/(a), p50/p99 request latency, the mean
rows per scorer call (from /metrics), the limit of (b) (the server's scorer alone, in this
process, on the rows in random 32-row calls: 32 clients never queue more) and the server's RSS
after warm-up and its peak (VmHWM).
``--soak S`` then keeps (b)'s load on for S seconds and prints the server's RSS each minute: it
must stay flat (no growth with the requests served).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

SHARED = Path(__file__).resolve().parents[2] / "shared" / "t5-small-tokenizer"


def build_model(folder: Path) -> Path:
    """t5-small with random weights and the real tokenizer (or the tests' tiny T5 without ../shared)."""
    if not SHARED.is_dir():
        from helpers.tiny_models import build_t5

        return build_t5(folder)
    import torch
    from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    T5ForConditionalGeneration(T5Config.from_pretrained(SHARED)).save_pretrained(folder)
    AutoTokenizer.from_pretrained(SHARED).save_pretrained(folder)
    return folder


def texts(rows: int) -> list[str]:
    moods = ("good", "bad", "fine", "an odd mix of lovely and awful, and the staff could not say why")
    return [f"review {i}: the food was {moods[i % 4]}{', really' * (i % 5)}" for i in range(rows)]


def in_process(model: Path, rows: list[str], labels: list[str]) -> float:
    """(a): rows/s of ``score_frame`` on every row, after a warm-up."""
    import pandas as pd

    from t5cls import LabelScorer, score_frame

    scorer = LabelScorer.from_pretrained(str(model), device="cpu")
    score_frame(pd.DataFrame({"text": rows[:64]}), labels, model=scorer)
    started = time.perf_counter()
    score_frame(pd.DataFrame({"text": rows}), labels, model=scorer)
    return len(rows) / (time.perf_counter() - started)


def batch_limit(model: Path, rows: list[str], labels: list[str], per_call: int) -> float:
    """rows/s of the server's own scorer, in this process, on the rows in random ``per_call``-row calls.

    What a server whose queue holds ``per_call`` rows of mixed lengths can reach at most: (a) sorts
    1,000 rows before cutting batches, a server groups only the rows it has (`length_groups`).
    """
    import random

    import pyarrow as pa

    from t5cls import LabelScorer
    from t5cls.options import ModelOptions, ScoreOptions
    from t5cls.serve.scoring import BatchScorer
    from t5cls.serve.server import plan_for_serving

    scorer = LabelScorer.from_options(ModelOptions(name_or_path=str(model), device="cpu"))
    batches = BatchScorer(plan_for_serving(ScoreOptions(input="-", labels=tuple(labels))), scorer)
    shuffled = random.Random(0).sample(rows, len(rows))
    calls = [pa.table({"text": shuffled[i : i + per_call]}) for i in range(0, len(rows), per_call)]
    batches.score(calls[0])
    started = time.perf_counter()
    for call in calls:
        batches.score(call)
    return len(rows) / (time.perf_counter() - started)


async def load(url: str, rows: list[str], clients: int, per_request: int) -> tuple[float, np.ndarray]:
    """(b), (c): ``clients`` tasks sending ``per_request`` rows each until every row is sent; rows/s, latencies."""
    host, port = url.removeprefix("http://").split(":")
    requests = [rows[i : i + per_request] for i in range(0, len(rows), per_request)]
    latencies: list[float] = []

    async def client() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while requests:
                batch = requests.pop()
                sent = time.perf_counter()
                answer = await classify(reader, writer, host, batch)
                assert len(answer["data"]) == len(batch)
                latencies.append(time.perf_counter() - sent)
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return len(rows) / (time.perf_counter() - started), np.array(latencies)


async def classify(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, texts: list[str]) -> dict:
    """One ``POST /v1/classify`` on a keep-alive connection; its JSON answer (a non-200 status fails the run)."""
    body = json.dumps({"input": texts}).encode()
    head = f"POST /v1/classify HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
    writer.write(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
    lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = next(int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:"))
    answer = json.loads(await reader.readexactly(length))
    if status != 200:
        raise RuntimeError(f"/v1/classify answered {status}: {answer}")
    return answer


def memory_mib(pid: int, field: str) -> float:
    with open(f"/proc/{pid}/status") as status:
        return int(re.search(rf"^{field}:\s+(\d+) kB", status.read(), re.M).group(1)) / 1024


def rows_per_call(metrics: str) -> float:
    total = float(re.search(r"^t5cls_batch_rows_sum (\S+)$", metrics, re.M).group(1))
    return total / float(re.search(r"^t5cls_batch_rows_count (\S+)$", metrics, re.M).group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--labels", default="positive,negative,neutral")
    parser.add_argument("--soak", type=float, default=0, help="seconds of (b)'s load after the runs")
    args = parser.parse_args()
    import torch

    from helpers.server import served

    labels = args.labels.split(",")
    rows = texts(args.rows)
    threads = str(torch.get_num_threads())  # the server computes with as many threads as (a)
    with tempfile.TemporaryDirectory() as folder:
        model = build_model(Path(folder) / "model")
        a_before = in_process(model, rows, labels)
        env = {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
        with served("-m", model, "-l", args.labels, "--device", "cpu", "--max-rows", "64", env=env) as server:
            asyncio.run(load(server.url, rows[:256], 8, 16))  # warm-up
            warm_rss = memory_mib(server.process.pid, "VmRSS")
            b, b_latency = asyncio.run(load(server.url, rows, 32, 1))
            c, c_latency = asyncio.run(load(server.url, rows, 8, 16))
            peak_rss = memory_mib(server.process.pid, "VmHWM")
            per_call = rows_per_call(server.client().get("/metrics").text)
            soak_rss = soak(server, rows, args.soak)
        a_after = in_process(model, rows, labels)  # (a) again: a shared machine's load drifts during the run
        limit = batch_limit(model, rows, labels, 32)
    a = (a_before + a_after) / 2
    print(f"rows: {args.rows}, labels: {args.labels}, torch threads: {threads}")
    print(f"(a) score_frame in one process: {a:.1f} rows/s (mean of {a_before:.1f} before and {a_after:.1f} after)")
    for name, rate, latency in (("(b) 32 clients x 1 row", b, b_latency), ("(c) 8 clients x 16 rows", c, c_latency)):
        p50, p99 = np.percentile(latency, [50, 99]) * 1000
        print(f"{name}: {rate:.1f} rows/s, {rate / a:.2f}x (a); latency p50 {p50:.0f} ms, p99 {p99:.0f} ms")
    print(f"rows per scorer call over the server's life (warm-up, b and c): {per_call:.1f}")
    print(
        f"the server's scorer alone on random 32-row calls (what 32 waiting rows allow): {limit:.1f} rows/s, "
        f"{limit / a:.2f}x (a); (b) reached {b / limit:.2f}x of it"
    )
    print(f"server RSS after warm-up {warm_rss:.0f} MiB, peak {peak_rss:.0f} MiB")
    if soak_rss:
        minutes = ", ".join(f"{rss:.0f}" for rss in soak_rss[:-1])
        print(f"soak, (b)'s load for {args.soak:.0f} s: RSS each minute {minutes} MiB; peak {soak_rss[-1]:.0f} MiB")


def soak(server, rows: list[str], seconds: float) -> list[float]:
    """(b)'s load for ``seconds``: the server's RSS after each minute, then its peak (VmHWM) last."""
    samples: list[float] = []
    started = next_sample = time.monotonic()
    while time.monotonic() - started < seconds:
        asyncio.run(load(server.url, rows, 32, 1))
        if time.monotonic() >= next_sample:
            samples.append(memory_mib(server.process.pid, "VmRSS"))
            next_sample += 60
    return [*samples, memory_mib(server.process.pid, "VmHWM")] if samples else []


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
