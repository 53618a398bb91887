"""``--dry-run``'s plan (`t5cls.run.dry_run`): model, prompts, label ids, escapes; its cut note says what is scored.

Dry-run tests that need another module's fixtures stay beside them: few-shot prompts in
`test_few_shot.py`, every task of a config in `test_config_cli.py`, a Ray run in `test_run_ray.py`.
"""

from __future__ import annotations

import pytest

from helpers.cli import invoke
from helpers.files import write_texts
from helpers.labels import BINARY as LABELS
from helpers.tiny_causal_models import build_causal
from t5cls import LabelScorer
from t5cls.options import ModelOptions, RayOptions, ScoreOptions
from t5cls.run.job import score_file
from t5cls.task_scorer import TaskScorer
from t5cls.tasks.config import load_tasks
from t5cls.tasks.prompts import DEFAULT_TEMPLATE, PromptTemplate

MAX_LENGTH = 12
CONFIG = '[[task]]\nname = "t"\ntemplate = "{text}"\nlabels = ["positive review here", "negative"]\nmode = "%s"\n'


@pytest.fixture(scope="module")
def causal_scorer(tmp_path_factory):
    folder = build_causal(tmp_path_factory.mktemp("tiny-llama"), "llama")
    return LabelScorer.from_pretrained(str(folder), device="cpu", max_length=MAX_LENGTH)


@pytest.mark.parametrize("mode", ["first", "sum"])
def test_the_cut_note_is_shown_exactly_when_the_run_cuts_the_prompt(causal_scorer, tmp_path, mode):
    """A decoder-only model in ``first`` leaves 1 token for the label, not the longest label's tokens."""
    config = tmp_path / "task.toml"
    config.write_text(CONFIG % mode)
    [task] = load_tasks(None, str(config), None, "text").tasks
    bound = TaskScorer(task, causal_scorer)
    disagreed = False
    for words in range(1, 14):
        text = " ".join(["great"] * words)
        (tmp_path / "in.csv").write_text(f"text\n{text}\n")
        options = ScoreOptions(str(tmp_path / "in.csv"), config=str(config))
        plan = score_file(options, causal_scorer, dry_run=True).plan
        cut = bound.is_cut(bound.scored_prompts({"text": [text]})[0])
        assert ("only its last ones are scored" in plan) == cut, (words, plan)
        if cut:
            assert f"longer than the {MAX_LENGTH - bound.room} tokens read" in plan
        longest_label = causal_scorer.label_room(task.scored_labels)
        disagreed |= cut != causal_scorer.tokenize([text], longest_label).truncated[0]
    assert disagreed == (mode == "first")  # the texts include one that only the longest label's room would cut


def test_dry_run_shows_escapes_and_says_the_prompt_is_cut(t5_dir, short_reviews, tmp_path):
    from helpers.tiny_causal_models import build_causal

    gpt2 = build_causal(tmp_path / "gpt2", "gpt2")
    plan = invoke("score", short_reviews, "-l", "yes,no", "-m", gpt2, "--label-end", "\\n", "--dry-run")
    assert plan.returncode == 0, plan.stderr
    assert 'label end: "\\n"' in plan.stdout.decode()
    cut = invoke("score", short_reviews, "-l", "yes,no", "-m", t5_dir, "--max-length", "4", "--dry-run").stdout.decode()
    assert "longer than the 4 tokens read: only its first ones are scored" in cut
    whole = invoke("score", short_reviews, "-l", "yes,no", "-m", t5_dir, "--dry-run").stdout.decode()
    assert "longer than" not in whole


def test_a_dry_run_from_python_loads_the_model_and_writes_nothing(t5_dir, tmp_path):
    """Local and Ray alike: the plan of the first (Ray: the first file's) row, and no output; Ray is not started."""
    (tmp_path / "data").mkdir()
    for name in ("a.csv", "b.csv"):
        write_texts(tmp_path / "data" / name, ["good", "bad"])
    model = ModelOptions(name_or_path=str(t5_dir), device="cpu")
    local = score_file(
        ScoreOptions(str(tmp_path / "data" / "a.csv"), LABELS, str(tmp_path / "o.csv")), model, dry_run=True
    )
    assert (local.rows, local.output) == (0, str(tmp_path / "o.csv"))
    prompt = PromptTemplate(DEFAULT_TEMPLATE).render({"text": ["good"]}, LABELS)[0]
    assert "prompt for the first row:\n" + "\n".join(f"  {line}" for line in prompt.splitlines()) in local.plan
    many = ScoreOptions(str(tmp_path / "data"), LABELS, str(tmp_path / "scored"))
    ray = score_file(many, model, ray=RayOptions(num_workers=2), dry_run=True)
    assert ray.plan.startswith("engine: ray, 2 input files; the first one:\nmodel: ")
    ray_output = f"output: {tmp_path / 'scored'} (a folder of Parquet parts)"
    assert ray_output in ray.plan.splitlines() and "stdout" not in ray.plan
    expected = local.plan.replace(f"output: {tmp_path / 'o.csv'} (csv)", ray_output).split("\n", 1)[1]
    assert expected in ray.plan
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_model_from_environment_variable_and_dry_run(t5_dir, tmp_path):
    (tmp_path / "in.csv").write_text("text\nhello there\n")
    result = invoke(
        "score", tmp_path / "in.csv", "-l", "positive,not sure", "--dry-run", env={"T5CLS_MODEL": str(t5_dir)}
    )
    assert result.returncode == 0, result.stderr
    plan = result.stdout.decode()
    assert f"model: {t5_dir}" in plan and "hello there" in plan and "Options: positive, not sure" in plan
    scorer = LabelScorer.from_pretrained(str(t5_dir), device="cpu")
    for label, ids in zip(["positive", "not sure"], scorer.label_ids(["positive", "not sure"])):
        assert f"{label}: {ids}" in plan
    assert not list(tmp_path.glob("*.t5cls*"))
