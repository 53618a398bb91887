"""`t5cls inspect`: the rows a scored file's model was surest and least sure about."""

from __future__ import annotations

from helpers.cli import invoke
from helpers.files import write_lines


def test_inspect_prints_even_digits_and_says_what_it_wrote(tmp_path):
    path = write_lines(tmp_path / "scored.csv", "text,p_a,p_b,pred,entropy", "x,0.5,0.5,a,0.6931471805599453")
    shown = invoke("inspect", path, "--highest-entropy", "1").stdout.decode()
    assert "0.5000" in shown and "0.6931" in shown
    written = invoke("inspect", path, "--highest-entropy", "1", "-o", tmp_path / "top.csv")
    assert written.returncode == 0 and written.stderr.decode() == f"t5cls: wrote {tmp_path / 'top.csv'}\n"
