"""The few-shot rules as the README states them, written independently of `t5cls.tasks.examples`."""

from __future__ import annotations

import hashlib


def row_key(seed: int, row: int) -> str:
    """SHA-256 of ``"<seed>:<row>"`` in hex (fixed width, so it sorts like the number)."""
    return hashlib.sha256(f"{seed}:{row}".encode()).hexdigest()


def expected_rows(golds: list[str], classes: list[str], seed: int, per_class: int) -> list[int]:
    """Per class the ``per_class`` rows (1-based) with the smallest keys; all of them in increasing key order."""
    by_key = sorted(range(1, len(golds) + 1), key=lambda row: row_key(seed, row))
    picked = [row for name in classes for row in [r for r in by_key if golds[r - 1] == name][:per_class]]
    return sorted(picked, key=lambda row: row_key(seed, row))


def few_shot_prompt(demonstrations: list[tuple[str, str]], prompt: str, separator: str = "\n\n", end: str = "") -> str:
    """The whole prompt: each (prompt, answer) as ``prompt.rstrip() + " " + answer + end``, then the separator."""
    return "".join(f"{shown.rstrip()} {answer}{end}{separator}" for shown, answer in demonstrations) + prompt
