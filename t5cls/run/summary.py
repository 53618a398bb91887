"""`Summary`: what a scoring run did, local or on Ray, for the caller and the final stderr line."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Summary:
    """Rows written, skipped (``on_null`` skip) and truncated, the time taken, and where the output went.

    ``scored_now`` counts the rows this call scored (not those resumed from a checkpoint), for the
    rate. A dry run scores nothing: its ``plan`` is the text ``t5cls score --dry-run`` prints. A
    ``--resume`` that found its output already written by an identical run is ``up_to_date``.
    """

    rows: int
    skipped: int
    truncated: int
    seconds: float
    output: str
    scored_now: int = 0
    plan: str | None = None
    up_to_date: bool = False

    def line(self) -> str:
        if self.up_to_date:
            return f"t5cls: {self.output} is up to date (an identical run finished it); nothing scored"
        rate = self.scored_now / self.seconds if self.seconds > 0 else 0.0
        return (
            f"t5cls: {self.rows} rows, {self.skipped} skipped, {self.truncated} truncated, "
            f"{self.seconds:.1f} s, {rate:.1f} rows/s -> {self.output}"
        )
