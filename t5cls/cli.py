"""The ``t5cls`` command line: a thin layer over `t5cls.job` and `t5cls.scorer`.

Exit codes: 0 success, 1 internal error (a bug), 2 bad usage or input, 3 model could not be
loaded, 4 non-finite scores, 130/143 stopped by SIGINT/SIGTERM (checkpoint kept).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from functools import wraps
from typing import Annotated, Optional

import typer

from t5cls.cli_eval import calibrate_command, eval_command
from t5cls.errors import EXIT_INTERNAL, T5clsError
from t5cls.quiet import quiet_model_loading

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Exact per-class probabilities from text-to-text models (T5, Flan-T5, mT5, BART).",
)


def fail(message: str, code: int) -> None:
    """Print the one-line error and exit with ``code``."""
    print(f"t5cls: error: {message}", file=sys.stderr, flush=True)
    raise typer.Exit(code)


def one_line_errors(command: Callable) -> Callable:
    """Turn `T5clsError` into a one-line message and its exit code; tracebacks only with --debug."""

    @wraps(command)
    def run(*args, debug: bool = False, **kwargs):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `| head` ends the process quietly
        quiet_model_loading()
        try:
            return command(*args, **kwargs)
        except T5clsError as err:
            if debug:
                raise
            fail(str(err), err.exit_code)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as err:
            if debug:
                raise
            fail(f"internal error: {type(err).__name__}: {err} (rerun with --debug for a traceback)", EXIT_INTERNAL)

    return run


@app.callback()
def cli() -> None:
    """Exact per-class probabilities from text-to-text models (T5, Flan-T5, mT5, BART)."""


Debug = Annotated[bool, typer.Option("--debug", help="Show tracebacks instead of one-line errors.")]


@app.command()
def score(
    input: Annotated[str, typer.Argument(help="CSV, JSONL or Parquet file (optionally .gz); '-' reads stdin.")],
    labels: Annotated[Optional[str], typer.Option("--labels", "-l", help="Comma-separated labels, e.g. positive,negative.")] = None,
    config: Annotated[Optional[str], typer.Option("--config", "-c", help="TOML file of \\[\\[task]] tables, all scored in one pass (instead of --labels).")] = None,
    rank_by: Annotated[Optional[str], typer.Option(help="Rank rows by each ranking task's score within groups of this column (needs -o).")] = None,
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Output .csv/.jsonl/.parquet; default: CSV on stdout.")] = None,
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Hub name or local folder \\[default: $T5CLS_MODEL or google/flan-t5-small].")] = None,
    revision: Annotated[Optional[str], typer.Option(help="Model revision (branch, tag or commit) on the Hub.")] = None,
    template: Annotated[Optional[str], typer.Option("--template", "-t", help="Prompt format string: {text}, any {column}, {labels}.")] = None,
    text_column: Annotated[str, typer.Option(help="Column that {text} refers to.")] = "text",
    input_format: Annotated[Optional[str], typer.Option(help="csv, jsonl or parquet, when the extension does not say (stdin).")] = None,
    format: Annotated[Optional[str], typer.Option("--format", help="Output format: csv, jsonl or parquet (for stdout).")] = None,
    batch_size: Annotated[str, typer.Option(help="Rows per model batch, or 'auto' (largest that fits on CUDA).")] = "auto",
    chunk_size: Annotated[int, typer.Option(help="Rows read, scored and checkpointed together.")] = 1000,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
    dtype: Annotated[str, typer.Option(help="auto (bfloat16 on CUDA, else float32), float32, bfloat16, float16.")] = "auto",
    max_length: Annotated[Optional[int], typer.Option(help="Truncate inputs to this many tokens \\[default: the model's].")] = None,
    label_end: Annotated[Optional[str], typer.Option(help="What completes a label for decoder-only models: none, eos or a text \\[default: none; seq2seq: eos].")] = None,
    chat: Annotated[bool, typer.Option("--chat", help="Decoder-only instruct models: wrap each prompt in the tokenizer's chat template.")] = False,
    logprobs: Annotated[bool, typer.Option("--logprobs", help="Also write logp_<label>, the raw sequence log-probabilities.")] = False,
    on_null: Annotated[str, typer.Option(help="Rows whose text is empty or null: error, skip or empty.")] = "error",
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run from its checkpoint.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan (prompt, label token ids) and score nothing.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output (the summary line stays).")] = False,
    log_every: Annotated[float, typer.Option(help="Seconds between progress lines when stderr is not a terminal.")] = 30.0,
    engine: Annotated[str, typer.Option(help="local, or ray: INPUT may be a folder, glob or URI, -o a folder of Parquet parts.")] = "local",
    num_workers: Annotated[Optional[int], typer.Option(help="--engine ray: actors, each with its own copy of the model \\[default: one per GPU with --gpus-per-worker, else 1].")] = None,
    gpus_per_worker: Annotated[float, typer.Option(help="--engine ray: GPUs per actor (0: CPU).")] = 0.0,
    cpus_per_worker: Annotated[float, typer.Option(help="--engine ray: CPUs per actor.")] = 1.0,
    debug: Debug = False,
) -> None:
    """Score every row against every label and write the input plus p_<label>, pred and entropy.

    With --config, every task of the file is scored and its columns are prefixed <task>_.
    With --engine ray, the rows are scored by a pool of Ray actors (local Ray, or $RAY_ADDRESS).
    """
    _score(**locals())


@one_line_errors
def _score(*, model, revision, batch_size, device, dtype, max_length, label_end, chat, dry_run, quiet, log_every, template,
           engine, num_workers, gpus_per_worker, cpus_per_worker, **fields):
    from t5cls.errors import InputError
    from t5cls.job import ScoreOptions
    from t5cls.progress import RowProgress
    from t5cls.scorer import parse_batch_size

    options = ScoreOptions(
        input=fields["input"], labels=fields["labels"], output=fields["output"], template=template,
        text_column=fields["text_column"], input_format=fields["input_format"], output_format=fields["format"],
        logprobs=fields["logprobs"], on_null=fields["on_null"], chunk_rows=fields["chunk_size"], resume=fields["resume"],
        config=fields["config"], rank_by=fields["rank_by"],
    )
    model_args = dict(name_or_path=model, device=device, dtype=dtype, batch_size=parse_batch_size(batch_size),
                      max_length=max_length, revision=revision, label_end=label_end, chat=chat)
    if engine not in ("local", "ray"):
        raise InputError(f"--engine must be local or ray, got {engine!r}")
    progress = RowProgress(quiet=quiet, log_every=log_every)
    if engine == "ray":
        summary = _score_on_ray(options, model_args, (num_workers, gpus_per_worker, cpus_per_worker), dry_run, progress)
    else:
        summary = _score_locally(options, model_args, dry_run, progress)
    if summary is not None:
        print(summary.line(), file=sys.stderr)


def _score_locally(options, model_args: dict, dry_run: bool, progress):
    """One input, one process: the model loads here (after the input checks) and scores every chunk."""
    from t5cls.job import ScoreJob
    from t5cls.scorer import LabelScorer
    from t5cls.signals import StopRequest

    job = ScoreJob(options)
    scorer = LabelScorer.from_pretrained(**model_args)
    job.bind(scorer)  # label checks that need the tokenizer, before any scoring
    if dry_run:
        print(_plan(job, scorer))
        return None
    with StopRequest().installed() as stop:
        return job.run(scorer, progress, stop)


def _score_on_ray(options, model_args: dict, layout: tuple, dry_run: bool, progress):
    """Many inputs on Ray actors; --dry-run shows the plan for the first file, as a local run would."""
    from dataclasses import replace

    from t5cls.ray_job import RayOptions, RayScoreJob
    from t5cls.signals import StopRequest

    job = RayScoreJob(options, model_args, RayOptions(*layout))
    if dry_run:
        print(f"engine: ray, {len(job.files)} input files; the first one:")
        return _score_locally(replace(options, input=job.files[0], output=None), model_args, True, progress)
    with StopRequest().installed() as stop:
        return job.run(progress, stop)


app.command("eval")(one_line_errors(eval_command))
app.command("calibrate")(one_line_errors(calibrate_command))


@app.command()
def inspect(
    scored: Annotated[str, typer.Argument(help="Output of `t5cls score` (CSV, JSONL or Parquet).")],
    lowest_entropy: Annotated[Optional[int], typer.Option(help="Show the N rows the model was surest about.")] = None,
    highest_entropy: Annotated[Optional[int], typer.Option(help="Show the N rows the model was least sure about.")] = None,
    task: Annotated[Optional[str], typer.Option("--task", help="Use task NAME's entropy column (NAME_entropy).")] = None,
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Write the rows to this .csv/.jsonl/.parquet instead of a table.")] = None,
    debug: Debug = False,
) -> None:
    """Show (or write) the rows with the lowest or highest entropy, for triage."""
    _inspect(scored=scored, lowest=lowest_entropy, highest=highest_entropy, task=task, output=output, debug=debug)


@one_line_errors
def _inspect(**fields) -> None:
    from t5cls.triage import run_inspect

    run_inspect(**fields)


def _plan(job, scorer) -> str:
    """The resolved plan for --dry-run: model, and per task the first row's prompt and label token ids."""
    from t5cls.causal import chat_prompt

    lines = [
        f"model: {scorer.name_or_path} ({scorer.model.config.model_type}, {scorer.model.dtype}, {scorer.device})",
        f"max length: {scorer.max_length} tokens; batch size: {scorer.batch_size}",
        f"output: {job.options.output or 'stdout'} ({job.format})",
    ]
    for task, prompt in zip(job.tasks, job.first_prompts()):
        if prompt is not None and scorer.chat:
            prompt = chat_prompt(scorer.tokenizer, prompt)
        indent = "  " if task.name else ""
        if task.name:
            lines.append(f"task {task.name}: mode {task.mode}, temperature {task.temperature:g}")
        lines.append(f"{indent}prompt for the first row:")
        lines.extend(f"{indent}  {line}" for line in (prompt or "(no rows)").splitlines())
        lines.append(f"{indent}labels (token ids as scored; label end: {scorer.label_end}):")
        for label, ids in zip(task.scored_labels, scorer.label_ids(task.scored_labels)):
            lines.append(f"{indent}  {label}: {ids} {scorer.tokenizer.convert_ids_to_tokens(ids)}")
    return "\n".join(lines)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
