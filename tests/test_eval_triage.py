"""`t5cls inspect` (`t5cls.eval.triage`) on a file with prediction sets: the set is shown beside the prediction."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from helpers.cli import invoke


def test_inspect_shows_the_prediction_set_and_hides_its_size(tmp_path):
    table = pa.table(
        {
            "text": ["sure", "unsure", "lost"],
            "t_p_x": [0.95, 0.55, 0.5],
            "t_p_y": [0.05, 0.45, 0.5],
            "t_pred": ["x", "x", "x"],
            "t_entropy": [0.2, 0.69, 0.693],
            "t_set": ["x", "x,y", ""],
            "t_set_size": [1, 2, 0],
        }
    )
    pq.write_table(table, tmp_path / "scored.parquet")
    result = invoke("inspect", tmp_path / "scored.parquet", "--highest-entropy", "2", "--task", "t")
    assert result.returncode == 0, result.stderr
    header, *rows = [line for line in result.stdout.decode().splitlines() if "│" in line or "┃" in line]
    cells = [cell.strip() for cell in header.split("┃")]
    assert cells[cells.index("pred") + 1] == "set" and "set_size" not in cells and "t_set" not in cells
    assert any("x,y" in row and "unsure" in row for row in rows)
