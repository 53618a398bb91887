"""ScorePlan's checks of the input against the tasks: a wrong column is blamed on what named it."""

from __future__ import annotations

from pathlib import Path

from helpers.cli import assert_one_line_error, invoke

RELEVANCE = Path(__file__).parents[1] / "configs" / "relevance.toml"


def test_a_rank_by_flag_naming_no_column_blames_the_flag(tmp_path):
    (tmp_path / "in.csv").write_text("query,document\nq1,pasta\n")
    args = ("score", "in.csv", "--config", RELEVANCE, "-o", "out.csv", "-m", "unused")
    result = invoke(*args, "--rank-by", "qurey", cwd=tmp_path)
    assert_one_line_error(result, "--rank-by 'qurey': no such column in in.csv", "columns are: query, document")
    assert "relevance" not in result.stderr.decode()  # the config's task is not at fault


def test_a_config_rank_by_naming_no_column_blames_the_config(tmp_path):
    (tmp_path / "in.csv").write_text("question,document\nq1,pasta\n")
    config = tmp_path / "relevance.toml"
    config.write_text(RELEVANCE.read_text().replace("{query}", "{question}"))
    result = invoke("score", "in.csv", "--config", config, "-o", "out.csv", "-m", "unused", cwd=tmp_path)
    assert_one_line_error(result, "relevance", "'rank_by' column 'query' is not in in.csv")
