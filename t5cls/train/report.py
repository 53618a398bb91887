"""The end of a training run: temperatures fitted on the dev set, the report, the plots, the config.

The trained model is loaded back from the folder it was saved to, with the device and dtype a
`t5cls score` run would use, so the dev scores, the fitted temperatures and the report are those
of the model as it will be scored (and the folder is proved loadable with ``from_pretrained``).
Each task's temperature is fitted as `t5cls calibrate` fits it (`t5cls.eval.calibration`);
regression tasks keep T = 1. The plots are `t5cls eval --plots` of the calibrated dev scores.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from t5cls import __version__
from t5cls.eval.plots import write_plots
from t5cls.eval.report import ScoredFile, build_report
from t5cls.io.atomic import write_text_atomically
from t5cls.models.scorer import LabelScorer
from t5cls.options import ModelOptions
from t5cls.probability import softmax
from t5cls.task_scorer import TaskScorer
from t5cls.tasks.config import write_config as write_tasks
from t5cls.train.data import LabelledFile
from t5cls.train.evaluation import DevEvaluation, fitted_temperature, task_metrics
from t5cls.train.gold import MULTI_LABEL, REGRESSION
from t5cls.train.objective import TaskObjective, multi_label_targets
from t5cls.train.plan import CONFIG_FILE, REPORT_FILE, TrainPlan
from t5cls.train.progress import metric_name
from t5cls.train.session import TrainingOutcome, dev_tasks

PLOTS_FOLDER = "plots"


@dataclass(frozen=True)
class TaskDevResult:
    """One task's dev metrics at T = 1 and at its fitted temperature, and `t5cls eval`'s report of the latter."""

    name: str
    kind: str
    temperature: float
    before: dict[str, float]
    after: dict[str, float]
    report: dict | None = None


@dataclass(frozen=True)
class TrainSummary:
    """What a finished run did, for the report and the final stderr lines."""

    output: str
    seconds: float
    outcome: TrainingOutcome
    tasks: list[TaskDevResult]

    def lines(self) -> list[str]:
        outcome = self.outcome
        trained = f"{outcome.steps} steps ({outcome.epochs:.2f} epochs)"
        lines = [f"t5cls: trained {trained} in {self.seconds:.1f} s -> {self.output}"]
        for task in self.tasks:
            shown = ", ".join(f"{metric_name(key)} {value:.4f}" for key, value in task.after.items())
            before = f" (ECE {task.before['ece']:.4f} at T = 1)" if "ece" in task.before else ""
            lines.append(f"t5cls: task {task.name}: dev {shown} at T = {task.temperature:.4f}{before}")
        return lines


def calibrate_on_dev(plan: TrainPlan, model: ModelOptions, dev: LabelledFile, folder: Path) -> list[TaskDevResult]:
    """Score the dev set with the saved model, fit each task's temperature, write the plots into ``folder``."""
    scorer = LabelScorer.from_options(replace(model, name_or_path=str(folder), revision=None))
    bound = [TaskScorer(task, scorer, plan.task_set.where(task)) for task in plan.tasks]
    objectives = [TaskObjective(b) for b in bound]
    evaluation = DevEvaluation(scorer, dev_tasks(objectives, bound, dev))
    results = []
    for objective, rows, column, scores in zip(objectives, dev.tasks, plan.gold_columns, evaluation.scores()):
        temperature = fitted_temperature(objective, scores, rows.gold)
        result = TaskDevResult(
            objective.task.name,
            objective.kind,
            temperature,
            task_metrics(objective, scores, rows.gold),
            task_metrics(objective, scores, rows.gold, temperature),
        )
        if objective.kind != REGRESSION:
            scored = _scored_file(objective, scores, rows, column, temperature, dev.path, len(plan.tasks) > 1)
            write_plots(scored, _plot_folder(folder))
            result = replace(result, report=build_report(scored))
        results.append(result)
    return results


def _scored_file(objective: TaskObjective, scores, rows, column: str, temperature: float, path: str, named: bool):
    """The calibrated dev scores as `t5cls eval` reads a scored file (multi-label: every yes/no decision)."""
    task = objective.task
    probs = softmax(scores, temperature)
    if objective.kind == MULTI_LABEL:
        index = multi_label_targets(rows.gold)
        gold = [task.answers[i] for i in index]
        return ScoredFile(path, task.name if named else None, column, list(task.answers), probs, gold, index)
    return ScoredFile(path, task.name if named else None, column, list(task.classes), probs, rows.gold_text, rows.gold)


def _plot_folder(folder: Path) -> Path:
    plots = folder / PLOTS_FOLDER
    plots.mkdir(exist_ok=True)
    return plots


def write_config(plan: TrainPlan, model: ModelOptions, results: list[TaskDevResult], folder: Path) -> None:
    """``t5cls.toml``: the tasks as their config wrote them (every key), with fitted temperatures (1 without dev).

    It is read from the output folder, where the work folder's ``final/`` is renamed to, so a
    relative examples ``file`` is rewritten relative to the output.
    """
    temperatures = [result.temperature for result in results] if results else [1.0] * len(plan.tasks)
    tables = []
    for task, temperature in zip(plan.tasks, temperatures):
        table = plan.task_set.table(task, plan.options.output)
        table["temperature"] = float(temperature)
        tables.append(table)
    header = [
        f"written by t5cls train: {model.name!r} fine-tuned on {plan.options.train!r}"
        + (f", temperatures fitted on {plan.options.dev!r}" if plan.options.dev else ", no dev set (T = 1)"),
        "score with: " + score_command(plan, model),
    ]
    write_tasks(folder / CONFIG_FILE, tables, header)


def score_command(plan: TrainPlan, model: ModelOptions) -> str:
    """The `t5cls score` call that reads the model as it was trained (decoder-only options included)."""
    output = plan.options.output
    extra = [f"--max-length {model.max_length}"] if model.max_length else []
    extra += [f"--label-end {model.label_end}"] if model.label_end else []
    extra += ["--chat"] if model.chat else []
    return " ".join(["t5cls score INPUT", f"--model {output}", f"--config {output}/{CONFIG_FILE}", *extra, "-o OUTPUT"])


def write_report(plan: TrainPlan, model: ModelOptions, data, summary: TrainSummary, folder: Path) -> None:
    """``training.json``: the inputs, options, optimisation, dev history and each task's dev report."""
    train, dev = data
    report = {
        "t5cls_version": __version__,
        "base_model": model.name,
        "score_with": score_command(plan, model),
        "train": _file_entry(train),
        "dev": None if dev is None else _file_entry(dev),
        "seconds": summary.seconds,
        "optimisation": {key: value for key, value in asdict(summary.outcome).items() if key != "history"},
        "options": {key: value for key, value in asdict(plan.options).items() if key != "resume"},
        "model_options": asdict(model),
        "tasks": [asdict(task) for task in summary.tasks],
        "history": summary.outcome.history,
    }
    write_text_atomically(folder / REPORT_FILE, json.dumps(report, indent=2, ensure_ascii=False) + "\n")


def _file_entry(rows: LabelledFile) -> dict:
    return {"file": rows.path, "rows": rows.rows, "skipped": rows.skipped, "demonstrations": rows.demonstrations}
