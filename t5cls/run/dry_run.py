"""What ``--dry-run`` prints: the resolved model, and per task the first row's prompt and label token ids.

The prompt is the one scored, few-shot demonstrations included.
"""

from __future__ import annotations

import json

from t5cls.io.readers import InputSource
from t5cls.run.local import LocalRunner
from t5cls.task_scorer import TaskScorer
from t5cls.tasks.examples import Examples


def describe(runner: LocalRunner, source: InputSource) -> str:
    """The plan of a run as text; reads the first usable row of ``source``."""
    scorer, plan = runner.scorer, runner.plan
    lines = [
        f"model: {scorer.name_or_path} ({scorer.model.config.model_type}, {scorer.identity.dtype}, {scorer.device})",
        f"max length: {scorer.max_length} tokens; batch size: {scorer.batch_size}",
        f"output: {plan.options.output or 'stdout'} ({plan.output_format})",
    ]
    for bound, prompt in zip(runner.chunks.task_scorers, runner.first_prompts(source)):
        task = bound.task
        indent = "  " if task.name else ""
        if task.name:
            lines.append(f"task {task.name}: mode {task.mode}, temperature {task.temperature:g}")
        if task.examples is not None:
            lines.append(f"{indent}{_examples_line(task.examples)}")
        lines.append(f"{indent}prompt for the first row:")
        shown = scorer.tokens.as_read(prompt) if prompt is not None and scorer.chat else prompt
        lines.extend(f"{indent}  {line}" for line in (shown or "(no rows)").splitlines())
        lines.extend(f"{indent}{note}" for note in _cut_note(bound, prompt))
        lines.append(f"{indent}labels (token ids as scored; label end: {_label_end(scorer.label_end)}):")
        for label, ids in zip(task.scored_labels, scorer.label_ids(task.scored_labels)):
            lines.append(f"{indent}  {label}: {ids} {scorer.tokens.pieces(ids)}")
    return "\n".join(lines)


def _label_end(end: str) -> str:
    """``none`` and ``eos`` as words, a text quoted with its escapes (``"\\n"``), so a newline is seen."""
    return end if end in ("none", "eos") else json.dumps(end, ensure_ascii=False)


def _cut_note(bound: TaskScorer, prompt: str | None) -> list[str]:
    """A line saying that the prompt shown is longer than the model reads, and which end is cut.

    Whether it is cut is `TaskScorer.is_cut`, the room a run leaves for the labels, so the note
    says what the run will score.
    """
    if prompt is None or not bound.is_cut(prompt):
        return []
    scorer = bound.scorer
    kept = "last" if scorer.causal else "first"
    read = scorer.max_length - bound.room
    return [f"(this prompt is longer than the {read} tokens read: only its {kept} ones are scored)"]


def _examples_line(examples: Examples) -> str:
    """Where a task's demonstrations come from: file, rows in the order shown, separator."""
    rows = ", ".join(str(demo.row) for demo in examples.demonstrations)
    return (
        f"examples: {len(examples.demonstrations)} demonstrations from {examples.spec.path} "
        f"(rows {rows}; separator {examples.spec.separator!r}), shown in the prompt below"
    )
