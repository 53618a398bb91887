"""``t5cls eval``: metrics, tables and plots of a scored file against its gold labels."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from t5cls.cli.flags import Debug, Gold, TaskName, flag, one_line_errors, option

Scored = Annotated[
    str, typer.Argument(metavar="SCORED", help="Output of `t5cls score` (CSV, JSONL or Parquet) with a gold column.")
]
Json = Annotated[bool, flag("json_output", "--json", help="Print the report as JSON instead of tables.")]
Plots = Annotated[
    str | None, option("plots", "--plots", help="Write reliability, confusion-matrix and entropy PNGs to this folder.")
]


@one_line_errors
def eval_command(
    scored: Scored,
    gold: Gold,
    task: TaskName = None,
    json_output: Json = False,
    plots: Plots = None,
    debug: Debug = False,
) -> None:
    """Accuracy, F1, NLL, Brier, calibration error and confusion matrix of scored rows against gold labels."""
    from rich.console import Console

    from t5cls.eval.report import build_report, load_scored, render_report

    scored_file = load_scored(scored, gold, task)
    report = build_report(scored_file)
    if plots is not None:
        from t5cls.eval.plots import plot_folder, write_plots

        folder = plot_folder(plots)
    if json_output:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        render_report(report, Console())
    if plots is not None:
        paths = write_plots(scored_file, folder)
        print(f"t5cls: wrote {', '.join(str(path) for path in paths)}", file=sys.stderr)
