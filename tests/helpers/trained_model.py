"""A tiny T5 trained from random weights on a generated, learnable task: the project's own trained model.

The task: a row's text is a few filler words and one cue word; the cue word's class is the gold
label. Four classes, one of them rare (7 % of rows). Labels are noisy: 15 % of the training rows
and 3 % of the dev rows carry a random other class. A well-trained model is then right on about
97 % of the dev rows but only about 85 % sure (it learnt from noisier labels): under-confident,
something for `t5cls calibrate` to fix. Cue and filler words
come from the tiny tokenizers' corpus, so they are short in both tokenizers (the real T5 one and
the BPE fallback).

    PYTHONPATH=. python tests/helpers/trained_model.py data /tmp/tiny      # train.csv, dev.csv, base/ (random T5)
    PYTHONPATH=. python tests/helpers/trained_model.py plots sample_data/plots  # regenerates the README's plots
"""

from __future__ import annotations

import csv
import random
import sys
from dataclasses import dataclass
from pathlib import Path

CUES = {
    "positive": ["great", "wonderful"],
    "negative": ["terrible", "boring"],
    "neutral": ["question", "premise"],
    "mixed": ["contradiction", "feelings"],
}
RARE = "mixed"
RARE_SHARE = 0.07
TRAIN_NOISE, DEV_NOISE = 0.15, 0.03
FILLER = ["the", "movie", "was", "and", "plot", "characters", "at", "all", "acting", "hypothesis", "answer"]
LABELS = list(CUES)
TEMPLATE = "{text}\nLabel:"
TRAIN_ROWS, DEV_ROWS = 400, 400
# Training settings of the fixture: a from-scratch model wants a large learning rate.
TRAIN_ARGS = ["--epochs", "5", "--lr", "1e-2", "--batch-size", "32", "--class-weights", "balanced", "--seed", "0"]


def generated_rows(rows: int, seed: int, noise: float) -> list[tuple[str, str]]:
    """(text, gold) pairs; a share ``noise`` of the gold labels is replaced by a random other class."""
    rng = random.Random(seed)
    common = [label for label in LABELS if label != RARE]
    out = []
    for _ in range(rows):
        label = RARE if rng.random() < RARE_SHARE else rng.choice(common)
        words = rng.sample(FILLER, rng.randint(2, 5))
        words.insert(rng.randrange(len(words) + 1), rng.choice(CUES[label]))
        gold = label if rng.random() >= noise else rng.choice([other for other in LABELS if other != label])
        out.append((" ".join(words), gold))
    return out


def write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    """(Its own writer: this module also runs as a script, without ``tests/`` on the path.)"""
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


@dataclass(frozen=True)
class GeneratedTask:
    train: Path
    dev: Path


def generated_task(folder: Path) -> GeneratedTask:
    """The training file and the dev file in ``folder``."""
    return GeneratedTask(
        write_csv(folder / "train.csv", generated_rows(TRAIN_ROWS, 0, TRAIN_NOISE)),
        write_csv(folder / "dev.csv", generated_rows(DEV_ROWS, 1, DEV_NOISE)),
    )


def train_args(base_model: Path, data: GeneratedTask, output: Path, *extra) -> list:
    """The `t5cls train` arguments of the fixture."""
    return [
        "train",
        data.train,
        "--labels",
        ",".join(LABELS),
        "--template",
        TEMPLATE,
        "--gold",
        "label",
        "--dev",
        data.dev,
        "--model",
        base_model,
        "-o",
        output,
        "--device",
        "cpu",
        "-q",
        *TRAIN_ARGS,
        *extra,
    ]


@dataclass(frozen=True)
class TrainedModel:
    """The tiny trained model's folder, the files it was trained and evaluated on, and the base it started from."""

    folder: Path
    data: GeneratedTask
    base: Path


def train_tiny_model(folder: Path) -> TrainedModel:
    """Generate the task, build a random tiny T5 and train it with `t5cls train` (in this process)."""
    from helpers.cli import invoke
    from helpers.tiny_models import build_t5

    data = generated_task(folder)
    base = build_t5(folder / "base")
    result = invoke(*train_args(base, data, folder / "model"))
    assert result.returncode == 0, result.stderr.decode()
    return TrainedModel(folder / "model", data, base)


def main(plots: str) -> None:
    """Train the tiny model in a temporary folder and copy the dev-set plots `t5cls train` wrote to ``plots``."""
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        trained = train_tiny_model(Path(tmp))
        for plot in sorted((trained.folder / "plots").glob("*.png")):
            shutil.copyfile(plot, Path(plots) / plot.name)
            print(f"wrote {Path(plots) / plot.name}", file=sys.stderr)


def write_data(folder: str) -> None:
    """The generated files and the random base model, to train on by hand (see the README's figures)."""
    from helpers.tiny_models import build_t5

    Path(folder).mkdir(parents=True, exist_ok=True)
    data = generated_task(Path(folder))
    base = build_t5(Path(folder) / "base")
    print(f"wrote {data.train}, {data.dev}, {base}", file=sys.stderr)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    {"data": write_data, "plots": main}[sys.argv[1]](sys.argv[2])
