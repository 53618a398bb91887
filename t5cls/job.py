"""A scoring job over a file: input chunks → prompts → scorer → output chunks.

`ScoreJob` checks everything that can be checked without the model (labels, template,
columns, paths) when it is built, so bad input fails in a second, not after a model load.
`run` then streams the input in fixed-size chunks; reading, prompting and tokenizing the next
chunk happen in a background thread while the model scores the current one.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow as pa

from t5cls import __version__
from t5cls.errors import InputError
from t5cls.labels import parse_labels
from t5cls.output import FileOutput, StdoutOutput
from t5cls.progress import RowProgress
from t5cls.prompts import DEFAULT_TEMPLATE, PromptTemplate
from t5cls.readers import open_input
from t5cls.scorer import LabelScorer, LabelScores, TokenizedTexts
from t5cls.signals import Interrupted, StopRequest
from t5cls.writers import output_format

NULL_POLICIES = ("error", "skip", "empty")


@dataclass
class ScoreOptions:
    """Everything that decides what a scoring run writes (the model aside)."""

    input: str
    labels: list[str]
    output: str | None = None
    template: str = DEFAULT_TEMPLATE
    text_column: str = "text"
    input_format: str | None = None
    output_format: str | None = None
    logprobs: bool = False
    on_null: str = "error"
    chunk_rows: int = 1000
    resume: bool = False


@dataclass
class Summary:
    """What a finished (or interrupted) run did, for the final stderr line."""

    rows: int
    skipped: int
    truncated: int
    seconds: float
    output: str
    scored_now: int = 0

    def line(self) -> str:
        rate = self.scored_now / self.seconds if self.seconds > 0 else 0.0
        return (
            f"t5cls: {self.rows} rows, {self.skipped} skipped, {self.truncated} truncated, "
            f"{self.seconds:.1f} s, {rate:.1f} rows/s -> {self.output}"
        )


@dataclass
class _Prepared:
    """A chunk ready for the model: the rows kept, their tokens, and row bookkeeping."""

    table: pa.Table
    tokens: TokenizedTexts
    input_rows: int
    skipped: int = 0
    first_prompt: str | None = field(default=None)


class ScoreJob:
    """One ``t5cls score`` run, validated up front."""

    def __init__(self, options: ScoreOptions):
        self.options = options
        self.labels = parse_labels(options.labels)
        if options.on_null not in NULL_POLICIES:
            raise InputError(f"--on-null must be one of {', '.join(NULL_POLICIES)}, got {options.on_null!r}")
        if options.chunk_rows < 1:
            raise InputError("--chunk-size must be at least 1")
        self.template = PromptTemplate(options.template, options.text_column)
        self.format = output_format(options.output, options.output_format)
        _check_output_path(options)
        self.source = open_input(options.input, options.chunk_rows, options.input_format)
        self.template.check_columns(self.source.columns, options.input)
        self.score_columns = _score_column_names(self.labels, options.logprobs)
        clash = [name for name in self.score_columns if name in self.source.columns]
        if clash:
            raise InputError(f"{options.input}: input already has column(s) {', '.join(clash)} that the output would add")

    def run(self, scorer: LabelScorer, progress: RowProgress, stop: StopRequest) -> Summary:
        """Score the whole input; raises `Interrupted` after the chunk in hand when asked to stop."""
        started = time.monotonic()
        output = self._open_output(scorer)
        skip = output.rows_done_before
        counters = Counter(output.counters_before)
        progress.start(self.source.total_rows, skip)
        wrote_any = bool(skip)
        for chunk in _prefetched(self._prepared_chunks(scorer, skip)):
            scores = scorer.score(chunk.tokens, self.labels)
            counters.update(rows=chunk.table.num_rows, skipped=chunk.skipped, truncated=int(scores.truncated.sum()))
            counters["scored_now"] += chunk.input_rows
            output.write_chunk(self._with_scores(chunk.table, scores), chunk.input_rows, _persistent(counters))
            wrote_any = True
            progress.advance(chunk.input_rows)
            if stop.requested:
                progress.stop()
                raise Interrupted(stop.signum, self._interrupted_message(output, counters))
        if not wrote_any:
            output.write_chunk(self._empty_output(), 0, _persistent(counters))
        output.finish()
        progress.stop()
        return Summary(
            counters["rows"], counters["skipped"], counters["truncated"], time.monotonic() - started,
            output.description, counters["scored_now"],
        )

    def first_prompt(self) -> str | None:
        """The template rendered on the first usable row (for ``--dry-run``)."""
        for table in self.source.chunks:
            table, _ = self._drop_or_fill_nulls(table, 0)
            if table.num_rows:
                return self.template.render(_template_values(table, self.template), self.labels)[0]
        return None

    def _interrupted_message(self, output, counters: Counter) -> str:
        done = output.rows_done_before if isinstance(output, FileOutput) else counters["scored_now"]
        if isinstance(output, FileOutput):
            return f"interrupted after {done} input rows; checkpoint kept, rerun the same command with --resume"
        return f"interrupted after {done} input rows written to stdout"

    def _open_output(self, scorer: LabelScorer):
        metadata = self.provenance(scorer)
        if self.options.output in (None, "-"):
            if self.options.resume:
                raise InputError("--resume needs an output file (-o PATH); stdout cannot be resumed")
            return StdoutOutput(self.format, metadata)
        return FileOutput(self.options.output, self.format, self.fingerprint(scorer), metadata, self.options.resume)

    def _prepared_chunks(self, scorer: LabelScorer, skip: int) -> Iterator[_Prepared]:
        """Read, null-check, render and tokenize chunks, skipping ``skip`` rows already done."""
        row = 0
        for table in self.source.chunks:
            if row + table.num_rows <= skip:
                row += table.num_rows
                continue
            if row < skip:
                raise InputError(f"{self.options.input}: the checkpoint does not fall on a chunk boundary; rerun without --resume")
            kept, skipped = self._drop_or_fill_nulls(table, row)
            prompts = self.template.render(_template_values(kept, self.template), self.labels) if kept.num_rows else []
            yield _Prepared(kept, scorer.tokenize(prompts), table.num_rows, skipped)
            row += table.num_rows

    def _drop_or_fill_nulls(self, table: pa.Table, first_row: int) -> tuple[pa.Table, int]:
        """Apply ``--on-null`` to rows whose template columns are null or blank."""
        missing = np.zeros(table.num_rows, dtype=bool)
        for name in self.template.columns_needed():
            values = table.column(name).to_pylist()
            blank = np.array([v is None or (isinstance(v, str) and not v.strip()) for v in values], dtype=bool)
            if blank.any() and self.options.on_null == "error":
                row = first_row + int(np.flatnonzero(blank)[0]) + 1
                raise InputError(
                    f"{self.options.input}: row {row}: column {name!r} is empty or null; "
                    "fix the row or pass --on-null skip|empty"
                )
            missing |= blank
        if self.options.on_null == "skip" and missing.any():
            return table.filter(pa.array(~missing)), int(missing.sum())
        return table, 0

    def _with_scores(self, table: pa.Table, scores: LabelScores) -> pa.Table:
        """Append p_<label>, pred, entropy (and logp_<label>) after the input columns."""
        columns = {f"p_{label}": scores.probs[:, i] for i, label in enumerate(self.labels)}
        columns["pred"] = pa.array(scores.predictions, pa.string())
        columns["entropy"] = scores.entropy
        if self.options.logprobs:
            columns.update({f"logp_{label}": scores.logprobs[:, i] for i, label in enumerate(self.labels)})
        for name, values in columns.items():
            table = table.append_column(name, pa.array(values, pa.string() if name == "pred" else pa.float64()))
        return table

    def _empty_output(self) -> pa.Table:
        empty = LabelScores(self.labels, np.zeros((0, len(self.labels))), np.zeros(0, dtype=bool))
        return self._with_scores(self.source.empty, empty)

    def fingerprint(self, scorer: LabelScorer) -> dict[str, str]:
        """What must be unchanged for ``--resume`` to continue a checkpoint."""
        options = asdict(self.options)
        options.pop("resume")
        stat = os.stat(self.options.input) if self.options.input != "-" else None
        return {
            "t5cls version": __version__,
            "input file": json.dumps([stat.st_size, stat.st_mtime_ns, _head_digest(self.options.input)] if stat else None),
            "model": scorer.name_or_path,
            "model dtype": str(scorer.model.dtype),
            "max length": str(scorer.max_length),
            "options": json.dumps(options, sort_keys=True),
        }

    def provenance(self, scorer: LabelScorer) -> dict[str, str]:
        """Key-value metadata stored in Parquet output."""
        return {
            "t5cls.version": __version__,
            "t5cls.model": scorer.name_or_path,
            "t5cls.model_revision": str(getattr(scorer.model.config, "_commit_hash", None) or "local"),
            "t5cls.labels": json.dumps(self.labels, ensure_ascii=False),
            "t5cls.template": self.template.template,
            "t5cls.dtype": str(scorer.model.dtype).removeprefix("torch."),
            "t5cls.options": json.dumps(
                {"text_column": self.options.text_column, "on_null": self.options.on_null, "max_length": scorer.max_length}
            ),
        }


def _score_column_names(labels: list[str], logprobs: bool) -> list[str]:
    names = [f"p_{label}" for label in labels] + ["pred", "entropy"]
    return names + ([f"logp_{label}" for label in labels] if logprobs else [])


def _template_values(table: pa.Table, template: PromptTemplate) -> dict[str, list[str]]:
    values = {}
    for name in template.columns_needed():
        values[name] = ["" if v is None else str(v) for v in table.column(name).to_pylist()]
    return values


def _persistent(counters: Counter) -> dict[str, int]:
    """Counters worth keeping in a checkpoint (rows scored by this process are not)."""
    return {key: counters[key] for key in ("rows", "skipped", "truncated")}


def _check_output_path(options: ScoreOptions) -> None:
    output = options.output
    if output in (None, "-"):
        return
    directory = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(directory):
        raise InputError(f"{output}: output directory {directory} does not exist")
    if options.input != "-" and os.path.exists(output) and os.path.samefile(output, options.input):
        raise InputError(f"{output}: output path is the input file; write to a different path")


def _head_digest(path: str, size: int = 1 << 20) -> str:
    """SHA-256 of the first MiB: with size and mtime, enough to notice a changed input."""
    with open(path, "rb") as stream:
        return hashlib.sha256(stream.read(size)).hexdigest()


_DONE = object()


def _prefetched(items: Iterator) -> Iterator:
    """Run ``items`` one step ahead in a background thread (errors are re-raised here)."""
    handoff: queue.Queue = queue.Queue(maxsize=1)

    def produce() -> None:
        try:
            for item in items:
                handoff.put(item)
        except BaseException as err:  # handed to the consumer, which re-raises it
            handoff.put(err)
        handoff.put(_DONE)

    threading.Thread(target=produce, daemon=True).start()
    while (item := handoff.get()) is not _DONE:
        if isinstance(item, BaseException):
            raise item
        yield item
