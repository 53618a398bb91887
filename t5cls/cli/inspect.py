"""``t5cls inspect``: the rows a task was surest or least sure about, as a table or a file."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from t5cls.cli.flags import Debug, TaskName, one_line_errors, option, output_option

Scored = Annotated[str, typer.Argument(metavar="SCORED", help="Output of `t5cls score` (CSV, JSONL or Parquet).")]
Lowest = Annotated[
    int | None, option("lowest_entropy", "--lowest-entropy", help="Show the N rows the model was surest about.")
]
Highest = Annotated[
    int | None, option("highest_entropy", "--highest-entropy", help="Show the N rows the model was least sure about.")
]
Output = Annotated[str | None, output_option("Write the rows to this .csv/.jsonl/.parquet instead of a table.")]


@one_line_errors
def inspect_command(
    scored: Scored,
    lowest_entropy: Lowest = None,
    highest_entropy: Highest = None,
    task: TaskName = None,
    output: Output = None,
    debug: Debug = False,
) -> None:
    """Show (or write) the rows with the lowest or highest entropy, for triage."""
    from t5cls.eval.triage import run_inspect

    run_inspect(scored=scored, lowest_entropy=lowest_entropy, highest_entropy=highest_entropy, task=task, output=output)
    if output is not None:
        print(f"t5cls: wrote {output}", file=sys.stderr)
