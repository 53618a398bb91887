"""Where a CSV reader is: the position behind the progress percentage follows the rows read, not the read-ahead."""

from __future__ import annotations

import pytest

from t5cls.io.readers import open_input

ROWS, CHUNK = 2000, 200


@pytest.mark.parametrize("text", ["fine", "très bien « vraiment »"], ids=["ascii", "utf-8"])
def test_the_csv_position_after_each_chunk_is_the_share_of_rows_read(tmp_path, text):
    path = tmp_path / "big.csv"
    path.write_text("id,text\n" + "".join(f"{i:04d},review {i:04d} is {text}\n" for i in range(ROWS)), encoding="utf-8")
    header = len(b"id,text\n")
    row_bytes = (path.stat().st_size - header) / ROWS  # every row has the same length
    source = open_input(str(path), CHUNK)
    try:
        assert source.size == path.stat().st_size
        for number, _ in enumerate(source.take_chunks(), start=1):
            assert source.position() == header + round(number * CHUNK * row_bytes)
    finally:
        source.close()
