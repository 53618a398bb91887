"""``--dry-run``'s plan (`t5cls.run.dry_run`): its "the prompt is cut" note says what the run scores."""

from __future__ import annotations

import pytest

from helpers.tiny_causal_models import build_causal
from t5cls import LabelScorer
from t5cls.options import ScoreOptions
from t5cls.run.job import score_file
from t5cls.task_scorer import TaskScorer
from t5cls.tasks.config import load_tasks

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
