"""What a training run writes: the work folder (fresh starts, refused resumes, the newest complete checkpoint,
atomic publishing), the t5cls.toml that `score --config` reads back, and its progress on stderr."""

from __future__ import annotations

import io
import json

import pytest
from transformers import TrainerControl, TrainerState

from t5cls.errors import InputError
from t5cls.options import ProgressOptions
from t5cls.tasks.config import TaskSet, config_toml, load_config
from t5cls.train.progress import TrainProgress
from t5cls.train.workdir import WorkFolder, last_complete_checkpoint

TASKS = """
[[task]]
name = "sentiment"
template = "Review: {text}\\nSentiment \\"quoted\\":"
text_column = "body"
labels = { positive = ["positive", "great"], "not sure" = ["not sure"], "café" = ["café", "caf\u00e9 ☕"] }
mode = "mean"
positive = "positive"
rank_by = "query"

[[task]]
name = "aspects"
template = "{text} Does it talk about {label}?"
labels = ["prices", "people"]
multi_label = true
answers = ["oui", "non"]

[[task]]
name = "stars"
template = "{text}"
labels = ["low", "high"]
values = [0, 5.5]
"""


def checkpoint(folder, step, state='{"global_step": 1}'):
    path = folder / f"checkpoint-{step}"
    path.mkdir(parents=True)
    if state is not None:
        (path / "trainer_state.json").write_text(state)
    return path


def test_the_newest_complete_checkpoint_is_resumed(tmp_path):
    assert last_complete_checkpoint(tmp_path) is None
    checkpoint(tmp_path, 9)
    checkpoint(tmp_path, 30)
    checkpoint(tmp_path, 100, state=None)  # killed before its trainer state was written
    checkpoint(tmp_path, 120, state='{"global_st')  # killed while writing it
    (tmp_path / "checkpoint-x").mkdir()
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-30")


def test_start_resume_refuse_and_publish(tmp_path):
    output = tmp_path / "model"
    work = WorkFolder(str(output))
    assert work.start({"options": "a"}, resume=True) is None  # nothing to resume: a fresh start
    saved = checkpoint(work.checkpoints, 12)
    assert work.start({"options": "a"}, resume=True) == str(saved)
    with pytest.raises(InputError, match="options changed since the checkpoint"):
        work.start({"options": "b"}, resume=True)
    assert saved.exists()
    assert work.start({"options": "b"}, resume=False) is None  # without --resume a run starts over
    assert not saved.exists()
    assert json.loads((work.root / "run.json").read_text())["fingerprint"] == {"options": "b"}
    work.final.mkdir()
    (work.final / "training.json").write_text("{}")
    output.mkdir()
    (output / "old.txt").write_text("an earlier output")
    work.publish()
    assert sorted(p.name for p in output.iterdir()) == ["training.json"]
    assert not work.root.exists()


def test_the_written_config_reads_back_as_the_same_tasks_with_their_temperatures(tmp_path):
    source = tmp_path / "tasks.toml"
    source.write_text(TASKS)
    loaded = load_config(str(source))
    tasks, task_set = loaded.tasks, TaskSet(loaded, tuple(loaded.tasks))
    tables = [{**task_set.table(task, str(tmp_path)), "temperature": t} for task, t in zip(tasks, [0.5, 2.25, 1.0])]
    written = tmp_path / "t5cls.toml"
    written.write_text(config_toml(tables, ["trained on 'x.csv'", "second line"]))
    assert written.read_text().startswith("# trained on 'x.csv'\n# second line\n")
    again = load_config(str(written)).tasks
    assert [task.temperature for task in again] == [0.5, 2.25, 1.0]
    for task, before in zip(again, tasks):
        assert (task.name, task.template.template, task.template.text_column) == (
            before.name,
            before.template.template,
            before.template.text_column,
        )
        assert (task.classes, task.forms, task.mode, task.multi_label, task.answers) == (
            before.classes,
            before.forms,
            before.mode,
            before.multi_label,
            before.answers,
        )
        assert (task.values, task.positive, task.rank_by) == (before.values, before.positive, before.rank_by)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("tty", [True, False], ids=["terminal", "log-file"])
def test_progress_is_a_bar_on_a_terminal_and_lines_elsewhere(tty):
    stream = Terminal() if tty else io.StringIO()
    progress = TrainProgress(ProgressOptions(log_every=1e-9), stream)
    state, control = TrainerState(), TrainerControl()
    state.max_steps = 4
    progress.on_train_begin(None, state, control)
    assert (progress.bar is not None) == tty
    for step in range(1, 5):
        state.global_step, state.epoch = step, step / 2
        progress.on_log(None, state, control, logs={"loss": 1.0 / step})
        progress.on_step_end(None, state, control)
    progress.on_evaluate(None, state, control, metrics={"eval_loss": 0.5, "eval_accuracy": 0.75, "eval_nll": 0.5})
    progress.on_train_end(None, state, control)
    text = stream.getvalue()
    assert "t5cls: step 4, epoch 2.00: dev accuracy 0.7500, NLL 0.5000" in text
    assert ("t5cls: step 4/4, epoch 2.00, loss 0.2500" in text) != tty  # plain lines only off a terminal
    assert ("training" in text) == tty  # the bar's label


def test_quiet_progress_prints_nothing():
    stream = Terminal()
    progress = TrainProgress(ProgressOptions(quiet=True), stream)
    state, control = TrainerState(), TrainerControl()
    progress.on_train_begin(None, state, control)
    progress.on_step_end(None, state, control)
    progress.on_evaluate(None, state, control, metrics={"eval_loss": 0.5})
    progress.on_train_end(None, state, control)
    assert stream.getvalue() == ""
