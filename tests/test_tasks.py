"""Config files: the shipped examples, what `t5cls calibrate` writes, and every validation error."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from helpers.runs import plan_for
from helpers.tiny_models import skip_without_digits
from t5cls import LabelScorer, ScoreOptions, score_file
from t5cls.errors import InputError
from t5cls.eval.calibration import Calibration, fitted_comment
from t5cls.run.provenance import fingerprint
from t5cls.tasks.config import config_toml, load_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
EXAMPLE_COLUMNS = {
    "sentiment": ["text"],
    "fewshot": ["text"],
    "nli": ["premise", "hypothesis"],
    "topic": ["text"],
    "relevance": ["query", "document"],
    "sts": ["sentence1", "sentence2"],
}
EXAMPLE_COLUMNS_OUT = {
    "sentiment": ["sentiment_p_positive", "sentiment_p_negative", "sentiment_pred", "sentiment_entropy"],
    "fewshot": [
        "sentiment_p_positive",
        "sentiment_p_negative",
        "sentiment_p_neutral",
        "sentiment_pred",
        "sentiment_entropy",
    ],
    "nli": ["nli_p_entailment", "nli_p_neutral", "nli_p_contradiction", "nli_pred", "nli_entropy"],
    "topic": [
        "topic_p_World",
        "topic_p_Sports",
        "topic_p_Business",
        "topic_p_Science/Tech",
        "topic_pred",
        "topic_entropy",
        "aspects_p_prices",
        "aspects_p_people",
        "aspects_p_places",
        "aspects_pred",
        "aspects_entropy",
    ],
    "relevance": [
        "relevance_p_true",
        "relevance_p_false",
        "relevance_pred",
        "relevance_entropy",
        "relevance_score",
        "relevance_rank",
    ],
    "sts": [*(f"sts_p_{v}" for v in range(6)), "sts_pred", "sts_entropy", "sts_expected", "sts_std"],
}


def write_csv(path, columns, rows=3):
    lines = [",".join(columns)] + [
        ",".join(f"{name} {i} a b" if name != "query" else f"q{i % 2}" for name in columns) for i in range(rows)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_examples_cover_every_config_shipped():
    assert sorted(path.stem for path in CONFIGS.glob("*.toml")) == sorted(EXAMPLE_COLUMNS)


@pytest.mark.parametrize("name", sorted(EXAMPLE_COLUMNS))
def test_example_config_scores_a_file_with_its_columns(t5_dir, tmp_path, name):
    source = write_csv(tmp_path / "in.csv", ["id", *EXAMPLE_COLUMNS[name]])
    out = tmp_path / "out.parquet"
    options = ScoreOptions(input=str(source), config=str(CONFIGS / f"{name}.toml"), output=str(out))
    if name == "sts":
        skip_without_digits(t5_dir, 6)
    scorer = LabelScorer.from_pretrained(str(t5_dir), device="cpu")
    score_file(options, scorer)
    table = pq.read_table(out)
    assert table.column_names == ["id", *EXAMPLE_COLUMNS[name], *EXAMPLE_COLUMNS_OUT[name]]
    assert table.num_rows == 3


@pytest.mark.parametrize("name", sorted(set(EXAMPLE_COLUMNS) - {"sentiment", "topic", "fewshot"}))
def test_example_config_refuses_an_input_without_its_columns(tmp_path, name):
    source = write_csv(tmp_path / "in.csv", ["id", "text"])
    missing = EXAMPLE_COLUMNS[name][0] if name != "nli" else "hypothesis"
    with pytest.raises(
        InputError, match=f"task '{name}': 'template' reads column '{missing}', which .* lacks; columns are: id, text"
    ):
        plan_for(ScoreOptions(input=str(source), config=str(CONFIGS / f"{name}.toml"), output=str(tmp_path / "o.csv")))


def test_a_config_written_by_calibrate_loads(tmp_path):
    calibration = Calibration(temperature=1.75, rows=10, nll_before=1.0, nll_after=0.9, ece_before=0.2, ece_after=0.1)
    template = 'Review: "{text}"\nSentiment:'
    fitted = {"name": "sentiment", "template": template, "text_column": "body", "labels": ["pos", "neg"]}
    path = tmp_path / "fitted.toml"
    path.write_text(config_toml([{**fitted, "temperature": 1.75}], [fitted_comment(calibration, "dev.csv", "m")]))
    [task] = load_config(str(path)).tasks
    assert (task.name, task.template.template, task.template.text_column) == ("sentiment", template, "body")
    assert task.classes == ("pos", "neg") and task.forms == (("pos",), ("neg",))
    assert (task.mode, task.temperature, task.values, task.positive) == ("sum", 1.75, None, None)


def test_verbalizer_table_keeps_class_order_and_forms(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[[task]]\nname = "s"\ntemplate = "{text}"\n[task.labels]\nyes = ["yes", "sure"]\nno = ["no"]\n')
    [task] = load_config(str(path)).tasks
    assert task.classes == ("yes", "no")
    assert task.scored_labels == ["yes", "sure", "no"] and task.groups == [[0, 1], [2]]


def test_numeric_class_names_give_regression_values(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[[task]]\nname = "r"\ntemplate = "{text}"\nlabels = ["1", "2.5", "-3"]\n')
    assert load_config(str(path)).tasks[0].values == (1.0, 2.5, -3.0)


TASK = '[[task]]\nname = "sentiment"\ntemplate = "{text}"\nlabels = ["positive", "negative"]\n'


@pytest.mark.parametrize(
    "body, message",
    [
        (TASK + 'modee = "sum"\n', "task 'sentiment': unknown key 'modee'"),
        ('[[task]]\nname = "sentiment"\ntemplate = "{text}"\n', "task 'sentiment': missing key 'labels'"),
        ('[[task]]\ntemplate = "{text}"\nlabels = ["a", "b"]\n', "task #1: missing key 'name'"),
        (
            TASK + 'mode = "average"\n',
            "task 'sentiment': 'mode' must be one of sum, mean, pmi, contextual, batch, first; got 'average'",
        ),
        (TASK + "temperature = 0\n", "'temperature' must be a positive number"),
        (TASK + 'temperature = "warm"\n', "'temperature' must be a positive number"),
        (TASK.replace('["positive", "negative"]', '["positive"]'), "'labels' needs at least two classes"),
        (TASK.replace('["positive", "negative"]', '["a", "a"]'), "'labels' has 'a' twice"),
        (TASK.replace('["positive", "negative"]', '["a", ""]'), "'labels' has an empty string"),
        (TASK.replace('["positive", "negative"]', '"a,b"'), "'labels' must be a list of strings"),
        (TASK.replace('["positive", "negative"]', '{ a = ["x", "y"], b = ["y"] }'), "form 'y' belongs to two classes"),
        (
            TASK.replace('["positive", "negative"]', '{ a = ["x"], b = [] }'),
            "class 'b' needs a name and at least one form",
        ),
        (
            TASK.replace('"{text}"', '"{text:>10}"'),
            "'template': template placeholder {text} is not a plain column name",
        ),
        (TASK + 'content_free = ["N/A"]\n', "'content_free' only applies to mode pmi or contextual"),
        (TASK + 'mode = "pmi"\ncontent_free = []\n', "'content_free' must be a non-empty list of strings"),
        (TASK + 'positive = "maybe"\n', "'positive' 'maybe' is not one of the classes (positive, negative)"),
        (TASK + 'rank_by = "query"\n', "'rank_by' needs 'positive'"),
        (TASK + "values = [1]\n", "'values' must be 2 finite numbers"),
        (TASK + 'answers = ["y", "n"]\n', "'answers' only applies when multi_label = true"),
        (TASK + "multi_label = true\n", "'template' must contain {label}"),
        (TASK + 'multi_label = "yes"\n', "'multi_label' must be a bool"),
        (
            TASK.replace('"{text}"', '"{text} {label}?"') + 'multi_label = true\nanswers = ["y"]\n',
            "'answers' must be two strings",
        ),
        (TASK.replace('name = "sentiment"', 'name = "my task"'), "'name' 'my task' must be letters, digits"),
        (TASK + TASK, "task 'sentiment': 'name' is used by two tasks"),
        ('name = "x"\n' + TASK, "unknown top-level key 'name'"),
        ('[task]\nname = "x"\n', "no [[task]] tables"),
        ("", "no [[task]] tables"),
        ("[[task]\n", "not valid TOML"),
    ],
)
def test_config_errors_name_the_file_task_and_key(tmp_path, body, message):
    path = tmp_path / "x.toml"
    path.write_text(body)
    with pytest.raises(InputError) as caught:
        load_config(str(path))
    assert str(caught.value).startswith(f"{path}: ") and message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(InputError, match=r"nope\.toml: no such config file"):
        load_config(str(tmp_path / "nope.toml"))


@pytest.mark.parametrize(
    "options, message",
    [
        ({"labels": "a,b"}, "give either labels or config, not both"),
        ({"template": "{text}"}, "template and text_column go with labels"),
        ({"rank_by": "id"}, "rank_by needs 'positive', the class whose probability"),
    ],
)
def test_options_that_do_not_go_with_a_config(tmp_path, options, message):
    (tmp_path / "c.toml").write_text(TASK)
    source = write_csv(tmp_path / "in.csv", ["id", "text"])
    with pytest.raises(InputError, match=message):
        plan_for(ScoreOptions(input=str(source), config=str(tmp_path / "c.toml"), **options))


def test_output_columns_may_not_clash_with_the_input(tmp_path):
    (tmp_path / "c.toml").write_text(TASK)
    source = write_csv(tmp_path / "in.csv", ["text", "sentiment_pred"])
    with pytest.raises(InputError, match=r"input already has column.s. sentiment_pred"):
        plan_for(ScoreOptions(input=str(source), config=str(tmp_path / "c.toml")))


def test_ranking_needs_an_output_file_and_a_group_column(tmp_path):
    (tmp_path / "c.toml").write_text(TASK + 'positive = "positive"\nrank_by = "query"\n')
    with pytest.raises(InputError, match="'rank_by' column 'query' is not in"):
        plan_for(
            ScoreOptions(
                input=str(write_csv(tmp_path / "a.csv", ["text"])),
                config=str(tmp_path / "c.toml"),
                output=str(tmp_path / "o.csv"),
            )
        )
    with pytest.raises(InputError, match="needs an output file"):
        plan_for(
            ScoreOptions(input=str(write_csv(tmp_path / "b.csv", ["text", "query"])), config=str(tmp_path / "c.toml"))
        )


def test_the_resume_fingerprint_includes_the_config_content(t5_dir, tmp_path):
    config = tmp_path / "c.toml"
    source = write_csv(tmp_path / "in.csv", ["text"])
    scorer = LabelScorer.from_pretrained(str(t5_dir), device="cpu")

    def recorded():
        plan = plan_for(ScoreOptions(input=str(source), config=str(config), output=str(tmp_path / "o.csv")))
        return fingerprint(plan, scorer.identity, [str(source)])

    config.write_text(TASK)
    before = recorded()
    config.write_text(TASK + "temperature = 2.0\n")
    after = recorded()
    assert before["config"] == TASK and after["config"] != before["config"]
    assert {key for key in before if before[key] != after[key]} == {"config"}
