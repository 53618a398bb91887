"""What ``GET /metrics`` reports, in Prometheus's text format, through ``prometheus_client``.

The library (not hand-written text) because the format's details (escaping, histogram buckets
with cumulative ``le`` labels, ``_sum``/``_count``, ``_total`` counters) are easy to get subtly
wrong, and the library is small, pure Python and the format's reference implementation. Each
server has its own registry, so nothing is global and nothing of the Python process is mixed in.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

disable_created_metrics()  # no *_created series: a timestamp per label set that no dashboard here reads

CONTENT_TYPE = CONTENT_TYPE_LATEST
ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, float("inf"))
SECOND_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, float("inf"))


class Metrics:
    """Requests and rows served, batch sizes, the queue, latencies."""

    def __init__(self):
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "t5cls_requests", "HTTP requests answered, by endpoint and status code", ["endpoint", "status"], registry=r
        )
        self.rows = Counter("t5cls_rows", "Rows scored and answered, by endpoint", ["endpoint"], registry=r)
        self.latency = Histogram(
            "t5cls_request_seconds", "Time from a request's arrival to its answer", ["endpoint"],
            buckets=SECOND_BUCKETS, registry=r,
        )  # fmt: skip
        self.batch_rows = Histogram("t5cls_batch_rows", "Rows per scorer call", buckets=ROW_BUCKETS, registry=r)
        self.batch_requests = Histogram(
            "t5cls_batch_requests", "Requests per scorer call", buckets=ROW_BUCKETS, registry=r
        )
        self.batch_seconds = Histogram(
            "t5cls_batch_seconds", "Time of one scorer call", buckets=SECOND_BUCKETS, registry=r
        )
        self.queue_requests = Gauge("t5cls_queue_requests", "Requests waiting for the scorer", registry=r)
        self.queue_rows = Gauge("t5cls_queue_rows", "Rows waiting for the scorer", registry=r)
        self.scoring_rows = Gauge("t5cls_scoring_rows", "Rows in the scorer call running now", registry=r)
        self.rejected = Counter(
            "t5cls_rejected", "Requests refused before scoring, by reason (queue_full, too_large, ...)", ["reason"],
            registry=r,
        )  # fmt: skip

    def text(self) -> bytes:
        return generate_latest(self.registry)
