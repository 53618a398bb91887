"""`t5cls.options`: each option declared once, as a dataclass field with its `Flag`, reaches every front end.

The test adds a `ModelOptions` field in one place (a subclass declaring it, put in the module's
place before any front end is imported), in a real second process, and finds it in ``t5cls score
--help``, in what ``score``, `score_frame` and `T5Classifier` hand to the model, and in their
errors, each naming it its own way. A front end that lists the fields by hand fails it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from helpers.cli import SINGLE_THREAD
from t5cls.errors import OptionError
from t5cls.options import (
    CalibrateOptions,
    ModelOptions,
    ScoreOptions,
    TaskSource,
    TrainOptions,
    check_keywords,
    choice_list,
    declared,
    keywords,
)

ADDED_FIELD = textwrap.dedent(
    """
    from __future__ import annotations

    import json
    from dataclasses import dataclass

    import t5cls.options as options


    @dataclass(frozen=True)
    class WithBeams(options.ModelOptions):
        beams: int | None = options.option(None, "--beams", help="Beams of a field added in one place.")

        def __post_init__(self):
            super().__post_init__()
            options.positive("beams", self.beams)


    options.ModelOptions = WithBeams  # before any front end reads the declaration

    import inspect

    import pandas as pd
    from typer.testing import CliRunner

    import t5cls.cli.score
    import t5cls.run.frames
    import t5cls.sklearn
    from t5cls.cli import app

    seen = {}


    class Reached(Exception):
        pass


    def reach(name):
        def capture(options, *args, **kwargs):
            seen[name] = options.beams
            raise Reached

        return capture


    def error(call):
        try:
            call()
        except Exception as err:
            return f"{type(err).__name__}: {err}"


    runner = CliRunner()
    t5cls.cli.score._score = lambda options, model, *rest: reach("score")(model)
    shown = {"help": runner.invoke(app, ["score", "--help"], terminal_width=200).stdout}
    runner.invoke(app, ["score", "in.csv", "-l", "a,b", "--beams", "4"])
    shown["cli error"] = runner.invoke(app, ["score", "in.csv", "-l", "a,b", "--beams", "0"]).stderr

    t5cls.run.frames.LabelScorer.from_options = reach("score_frame")
    frame = pd.DataFrame({"text": ["good", "bad"]})
    error(lambda: t5cls.run.frames.score_frame(frame, ["a", "b"], beams=5))
    shown["score_frame error"] = error(lambda: t5cls.run.frames.score_frame(frame, ["a", "b"], beams=0))
    shown["score_frame keywords"] = list(inspect.signature(t5cls.run.frames.score_frame).parameters)

    t5cls.sklearn._load = lambda options, fit_id: reach("T5Classifier")(options)
    estimator = t5cls.sklearn.T5Classifier(labels=["a", "b"], beams=6).fit(["good", "bad"], ["a", "b"])
    error(lambda: estimator.predict_proba(["good"]))
    shown["T5Classifier params"] = estimator.get_params()["beams"]
    shown["T5Classifier error"] = error(lambda: estimator.set_params(beams=0).predict_proba(["good"]))
    print(json.dumps({"seen": seen, **shown}))
    """
)


def printed_by(script: str, folder) -> dict:
    """The JSON that ``script`` prints, run in a second Python process in ``folder`` (offline, one thread)."""
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        cwd=folder,
        env={**os.environ, **SINGLE_THREAD, "HF_HUB_OFFLINE": "1"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr.decode()
    return json.loads(result.stdout)


def test_a_model_field_declared_once_reaches_every_front_end_and_its_errors(tmp_path):
    shown = printed_by(ADDED_FIELD, tmp_path)
    assert "--beams" in shown["help"] and "Beams of a field added in one place." in shown["help"]
    assert shown["seen"] == {"score": 4, "score_frame": 5, "T5Classifier": 6}
    assert "t5cls: error: --beams must be a positive whole number, got 0" in shown["cli error"]
    assert shown["score_frame error"] == "OptionError: beams must be a positive whole number, got 0"
    assert "beams" in shown["score_frame keywords"]
    assert shown["T5Classifier params"] == 6
    assert shown["T5Classifier error"] == "OptionError: beams must be a positive whole number, got 0"


ADDED_TASK_FIELD = textwrap.dedent(
    """
    from __future__ import annotations

    import importlib.util
    import json
    import sys

    # The field is written into TaskSource's own declaration (the source of t5cls/options.py, run as that module),
    # as an edit would add it: every options class that holds the task fields inherits it from there.
    spec = importlib.util.find_spec("t5cls.options")
    source = open(spec.origin, encoding="utf-8").read()
    anchor = '    text_column: str = option(DEFAULT_TEXT_COLUMN, "--text-column"'
    assert source.count(anchor) == 1
    note = '    note: str | None = option(None, "--note", kw_only=True, help="A task field added in one place.")\\n'
    module = importlib.util.module_from_spec(spec)
    sys.modules["t5cls.options"] = module
    exec(compile(source.replace(anchor, note + anchor), spec.origin, "exec"), module.__dict__)

    from typer.testing import CliRunner

    import t5cls.cli.score
    import t5cls.run.calibrate
    import t5cls.serve.server
    import t5cls.train
    from t5cls.cli import app

    seen = {}


    class Reached(Exception):
        pass


    def reach(name):
        def capture(options, *args, **kwargs):
            seen[name] = (options.note, options.template)
            raise Reached

        return capture


    t5cls.cli.score._score = reach("score")
    t5cls.run.calibrate.calibrate_file = reach("calibrate")
    t5cls.train.train = reach("train")
    t5cls.serve.server.serve = reach("serve")
    runner = CliRunner()
    task = ["-l", "a,b", "--note", "noted", "-t", "a\\\\tb {text}"]
    commands = {
        "score": ["score", "in.csv"],
        "calibrate": ["calibrate", "dev.csv", "-g", "label", "-o", "fitted.toml"],
        "train": ["train", "train.csv", "-g", "label", "-o", "out"],
        "serve": ["serve"],
    }
    helps = {}
    for name, command in commands.items():
        helps[name] = runner.invoke(app, [command[0], "--help"], terminal_width=200).stdout
        runner.invoke(app, [*command, *task])
    print(json.dumps({"seen": seen, "helps": helps}))
    """
)


def test_a_task_field_declared_once_reaches_every_command(tmp_path):
    shown = printed_by(ADDED_TASK_FIELD, tmp_path)
    commands = ("score", "calibrate", "train", "serve")
    assert shown["seen"] == {name: ["noted", "a\tb {text}"] for name in commands}
    for name in commands:
        assert "--note" in shown["helps"][name] and "A task field added in one place." in shown["helps"][name]


@pytest.mark.parametrize("options_class", [ScoreOptions, CalibrateOptions, TrainOptions])
def test_every_task_source_field_is_a_field_of_each_options_class_with_its_default(options_class):
    own = options_class.__dataclass_fields__
    assert issubclass(options_class, TaskSource)
    for each, _ in declared(TaskSource):
        assert each.name in own and own[each.name].default == each.default, each.name


def test_every_model_field_is_declared_with_a_flag_and_a_python_keyword():
    names = {each.name for each, _ in declared(ModelOptions)}
    assert names == set(ModelOptions.__dataclass_fields__)
    assert keywords(ModelOptions)["model"].name == "name_or_path"
    flags = [name for _, flag in declared(ModelOptions) for name in flag.names]
    assert len(flags) == len(set(flags))


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"templat": 1}, "f() got an unexpected keyword argument 'templat'; did you mean 'template'?"),
        ({"zzz": 1}, "f() got an unexpected keyword argument 'zzz'; it takes chat, template"),
    ],
)
def test_an_unknown_keyword_is_a_type_error_naming_the_nearest(given, message):
    with pytest.raises(TypeError) as raised:
        check_keywords("f", given, ["template", "chat"])
    assert str(raised.value) == message


def test_an_error_names_a_front_ends_own_parameter():
    with pytest.raises(OptionError) as raised:
        ModelOptions("./no/such/folder")
    assert str(raised.value).startswith("name_or_path ./no/such/folder: no such folder")
    renamed = raised.value.renamed({"name_or_path": "model"})
    assert type(renamed) is OptionError
    assert str(renamed).startswith("model ./no/such/folder: no such folder")
    assert renamed.for_flags({"model": "--model"}).startswith("--model ./no/such/folder")
    assert choice_list(("a", "b", "c")) == "a, b or c"
