"""`t5cls.run.manifest.PartsFolder`: the records of a Ray run's chunks, on a local disk."""

from __future__ import annotations

import json

import pytest

from t5cls.io.storage import Location
from t5cls.run.manifest import PartsFolder


def summary(chunk: int, rows: int = 4) -> dict:
    return {
        "file": 0, "chunk": chunk, "first_row": 4 * chunk, "last": False, "part": f"part-000000-{chunk:09d}.parquet",
        "input_rows": rows, "rows": rows, "skipped": 0, "truncated": 0, "provenance": "{}",
    }  # fmt: skip


def test_a_chunk_scored_again_after_a_lost_node_is_recorded_once(tmp_path):
    """A retried read task re-reads a file from its start: its chunks come again, with the same results."""
    parts = PartsFolder(Location.of(str(tmp_path / "scored")), {"job": "1"}, resume=False)
    assert parts.record(summary(0)) and parts.record(summary(1))
    assert not parts.record(summary(0))
    assert parts.counters()["input_rows"] == 8
    records = sorted(p.name for p in (tmp_path / ".scored.t5cls-parts").iterdir() if p.name.startswith("done-"))
    assert records == ["done-000000-000000000.json", "done-000000-000000001.json"]
    resumed = PartsFolder(Location.of(str(tmp_path / "scored")), {"job": "1"}, resume=True)
    assert resumed.done_chunks() == {(0, 0), (0, 1)}
    assert json.loads((tmp_path / ".scored.t5cls-parts" / records[0]).read_text()) == summary(0)


def test_a_chunk_scored_twice_with_different_results_is_a_bug(tmp_path):
    parts = PartsFolder(Location.of(str(tmp_path / "scored")), {"job": "1"}, resume=False)
    parts.record(summary(0))
    with pytest.raises(RuntimeError, match=r"chunk \(0, 0\) was scored twice with different results"):
        parts.record(summary(0, rows=3))
