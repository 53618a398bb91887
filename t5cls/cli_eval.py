"""The ``t5cls eval`` and ``t5cls calibrate`` commands.

``eval_command`` and ``calibrate_command`` only declare the options (typer reads their
signatures); `t5cls.cli` registers them wrapped in its ``one_line_errors``, which consumes
``--debug``. The work is in `run_eval` and `run_calibrate`, plain functions that raise
`t5cls.errors.InputError` for anything the user can fix. Heavy imports (numpy, rich,
matplotlib, torch) happen inside them so ``t5cls --help`` stays fast.
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from t5cls.errors import InputError

if TYPE_CHECKING:
    from rich.table import Table

    from t5cls.calibration import Calibration

Debug = Annotated[bool, typer.Option("--debug", help="Show tracebacks instead of one-line errors.")]


def eval_command(
    scored: Annotated[str, typer.Argument(help="Output of `t5cls score` (CSV, JSONL or Parquet) with a gold column.")],
    gold: Annotated[str, typer.Option("--gold", "-g", help="Column holding the true label of each row.")],
    task: Annotated[Optional[str], typer.Option("--task", help="Evaluate task NAME's columns (NAME_p_<label>).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON instead of tables.")] = False,
    plots: Annotated[Optional[str], typer.Option("--plots", help="Write reliability, confusion-matrix and entropy PNGs to this folder.")] = None,
    debug: Debug = False,
) -> None:
    """Accuracy, F1, NLL, Brier, calibration error and confusion matrix of scored rows against gold labels."""
    run_eval(scored=scored, gold=gold, task=task, json_output=json_output, plots=plots)


def calibrate_command(
    dev: Annotated[str, typer.Argument(help="Labelled dev file (CSV, JSONL or Parquet) to fit on.")],
    gold: Annotated[str, typer.Option("--gold", "-g", help="Column holding the true label of each row.")],
    labels: Annotated[str, typer.Option("--labels", "-l", help="Comma-separated labels, e.g. positive,negative.")],
    output: Annotated[str, typer.Option("--output", "-o", help="Config file to write, e.g. configs/fitted.toml.")],
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Hub name or local folder \\[default: $T5CLS_MODEL or google/flan-t5-small].")] = None,
    template: Annotated[Optional[str], typer.Option("--template", "-t", help="Prompt format string: {text}, any {column}, {labels}.")] = None,
    text_column: Annotated[str, typer.Option(help="Column that {text} refers to.")] = "text",
    task: Annotated[str, typer.Option("--task", help="Name of the task in the written config.")] = "default",
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
    dtype: Annotated[str, typer.Option(help="auto (bfloat16 on CUDA, else float32), float32, bfloat16, float16.")] = "auto",
    batch_size: Annotated[str, typer.Option(help="Rows per model batch, or 'auto'.")] = "auto",
    label_end: Annotated[Optional[str], typer.Option(help="Decoder-only models: none, eos or a text, as for `score`.")] = None,
    chat: Annotated[bool, typer.Option("--chat", help="Decoder-only instruct models: the chat template, as for `score`.")] = False,
    debug: Debug = False,
) -> None:
    """Fit a softmax temperature on a labelled dev file and write it as a task config for `score --config`.

    Fit with the model options you will score with (--label-end, --chat): T belongs to those scores.
    """
    run_calibrate(
        dev=dev, gold=gold, labels=labels, output=output, model=model, template=template, text_column=text_column,
        task=task, device=device, dtype=dtype, batch_size=batch_size, label_end=label_end, chat=chat,
    )


def run_eval(*, scored: str, gold: str, task: str | None = None, json_output: bool = False, plots: str | None = None) -> None:
    """Load the scored file, print the report (tables or JSON), and write the plots if asked."""
    from rich.console import Console

    from t5cls.evaluate import build_report, load_scored, render_report

    scored_file = load_scored(scored, gold, task)
    report = build_report(scored_file)
    if plots is not None:
        from t5cls.plots import plot_folder, write_plots

        folder = plot_folder(plots)
    if json_output:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        render_report(report, Console())
    if plots is not None:
        paths = write_plots(scored_file, folder)
        print(f"t5cls: wrote {', '.join(str(path) for path in paths)}", file=sys.stderr)


def run_calibrate(
    *, dev: str, gold: str, labels: str, output: str, model: str | None = None, template: str | None = None,
    text_column: str = "text", task: str = "default", device: str = "auto", dtype: str = "auto", batch_size: str = "auto",
    label_end: str | None = None, chat: bool = False,
) -> None:
    """Check the inputs, score the dev file, fit T, write the config and print before/after."""
    from rich.console import Console

    from t5cls.calibration import FittedTask, calibrate, config_toml, read_dev_file
    from t5cls.labels import parse_labels
    from t5cls.prompts import DEFAULT_TEMPLATE, PromptTemplate
    from t5cls.scorer import LabelScorer, parse_batch_size

    label_list = parse_labels(labels)
    prompt = PromptTemplate(template or DEFAULT_TEMPLATE, text_column)
    rows_per_batch = parse_batch_size(batch_size)
    _check_output_folder(output)
    dev_set = read_dev_file(dev, prompt, label_list, gold)  # before the model loads: bad input fails fast
    scorer = LabelScorer.from_pretrained(model, device=device, dtype=dtype, batch_size=rows_per_batch,
                                         label_end=label_end, chat=chat)
    logprobs = scorer.score(dev_set.prompts, label_list).logprobs
    result = calibrate(logprobs, dev_set.gold)
    fitted = FittedTask(task, prompt.template, text_column, label_list, result.temperature)
    with open(output, "w", encoding="utf-8") as stream:
        stream.write(config_toml(fitted, result, dev, scorer.name_or_path))
    Console().print(_calibration_table(result))
    print(f"t5cls: wrote {output}", file=sys.stderr)


def _check_output_folder(output: str) -> None:
    folder = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(folder):
        raise InputError(f"{output}: output directory {folder} does not exist")


def _calibration_table(result: Calibration) -> Table:
    """Dev-set NLL and ECE at T = 1 and at the fitted T (accuracy cannot change)."""
    from rich.table import Table

    from t5cls.metrics import ECE_BINS

    table = Table(title=f"Temperature {result.temperature:.4f} fitted on {result.rows} rows", title_justify="left")
    table.add_column("metric")
    table.add_column("before (T = 1)", justify="right")
    table.add_column(f"after (T = {result.temperature:.4f})", justify="right")
    table.add_row("NLL (nats)", f"{result.nll_before:.4f}", f"{result.nll_after:.4f}")
    table.add_row(f"ECE ({ECE_BINS} bins)", f"{result.ece_before:.4f}", f"{result.ece_after:.4f}")
    return table
