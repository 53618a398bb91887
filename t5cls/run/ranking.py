"""Ranks within groups (``rank_by``), added to a finished scored output in a second pass.

A row's rank depends on every row of its group, and a group's rows may be spread over the
whole input, so ranks cannot be streamed out with the scores. With ``rank_by`` the scores are
written (resumably, as usual) to a hidden file beside the output; `add_ranks` then reads only
the group and score columns (a key and a float per row in memory), ranks every group, and
streams the file once more with ``<task>_rank`` after ``<task>_score`` into a temporary file
that is renamed onto the output. The output path never holds a file without its ranks.

A Ray run (`t5cls.run.ray`) makes the same second pass over its folder of parts, read as one
table in part order: `ranks_of` over the parts' group and score columns, then `with_ranks` on
each part, so its ranks are those of a local run over the concatenated rows.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from t5cls.io.atomic import write_atomically
from t5cls.io.paths import sidecar
from t5cls.io.readers import SCAN_CHUNK_ROWS, open_input
from t5cls.io.writers import open_writer


@dataclass(frozen=True)
class Ranking:
    """Rank rows by ``score_column`` within each value of ``group_column``, into ``rank_column``."""

    score_column: str
    group_column: str
    rank_column: str


def unranked_path(output: str) -> str:
    """Where the scores wait for their ranks: a hidden file beside the output."""
    return str(sidecar(output, "unranked"))


def ranks_within_groups(groups: Sequence, scores: np.ndarray) -> np.ndarray:
    """1 for the highest score of each group, 2 for the next...; equal scores keep file order."""
    if not len(scores):
        return np.zeros(0, dtype=np.int64)
    codes: dict = {}
    group_ids = np.array([codes.setdefault(group, len(codes)) for group in groups], dtype=np.int64)
    order = np.argsort(-scores, kind="stable")
    order = order[np.argsort(group_ids[order], kind="stable")]
    in_order = group_ids[order]
    starts_group = np.r_[True, in_order[1:] != in_order[:-1]]
    positions = np.arange(len(order))
    group_start = np.maximum.accumulate(np.where(starts_group, positions, 0))
    ranks = np.empty(len(order), dtype=np.int64)
    ranks[order] = positions - group_start + 1
    return ranks


def add_ranks(scored: str, target: str, fmt: str, rankings: Sequence[Ranking], metadata: dict[str, str]) -> None:
    """Write ``scored`` plus its rank columns to ``target`` (atomically) and remove ``scored``."""
    if os.path.getsize(scored) == 0:  # JSONL without rows: nothing to rank
        os.replace(scored, target)
        return
    with closing(open_input(scored, SCAN_CHUNK_ROWS, fmt)) as source:
        ranks = ranks_of(source.chunks, rankings)

    def write(stream) -> None:
        with closing(open_input(scored, SCAN_CHUNK_ROWS, fmt)) as source:
            schema = with_ranks(source.empty, rankings, ranks, 0).schema
            writer = open_writer(fmt, stream, schema, metadata=metadata)
            done = 0
            for table in source.chunks:
                writer.write(with_ranks(table, rankings, ranks, done))
                done += table.num_rows
        writer.close()

    write_atomically(Path(target), write, fixed_temporary=True)
    os.remove(scored)


def with_ranks(table: pa.Table, rankings: Sequence[Ranking], ranks: dict[str, np.ndarray], done: int) -> pa.Table:
    """``table`` (rows ``done`` onwards of the file) with each rank column after its score column."""
    for ranking in rankings:
        after = table.column_names.index(ranking.score_column) + 1
        values = pa.array(ranks[ranking.rank_column][done : done + table.num_rows], pa.int64())
        table = table.add_column(after, ranking.rank_column, values)
    return table


def ranking_columns(rankings: Sequence[Ranking]) -> list[str]:
    """The group and score columns the rankings read (all a second pass needs of the scored rows)."""
    columns: list[str] = []
    for ranking in rankings:
        columns += [name for name in (ranking.group_column, ranking.score_column) if name not in columns]
    return columns


def ranks_of(tables: Iterable[pa.Table], rankings: Sequence[Ranking]) -> dict[str, np.ndarray]:
    """Each ranking's ranks over the rows of ``tables`` taken as one table, in order (a rank column's name: its ranks).

    Only the group and score columns are read; they are all that is kept in memory.
    """
    groups: dict[str, list] = {ranking.rank_column: [] for ranking in rankings}
    scores: dict[str, list[np.ndarray]] = {ranking.rank_column: [] for ranking in rankings}
    for table in tables:
        for ranking in rankings:
            groups[ranking.rank_column].extend(table.column(ranking.group_column).to_pylist())
            score = pc.cast(table.column(ranking.score_column), pa.float64())
            scores[ranking.rank_column].append(score.to_numpy(zero_copy_only=False))
    return {
        name: ranks_within_groups(groups[name], np.concatenate(scores[name]) if scores[name] else np.zeros(0))
        for name in groups
    }
