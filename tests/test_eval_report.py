"""`t5cls eval` on a scored file with prediction sets: coverage and set sizes, overall and per gold class."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers.cli import assert_one_line_error, invoke
from helpers.labels import SENTIMENT as LABELS

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def scored_with_sets(rows: int = 120, seed: int = 0, prefix: str = "") -> pd.DataFrame:
    """A scored table with LAC sets at q = 0.6 (classes with p ≥ 0.4: some empty, some of two classes)."""
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(3), size=rows)
    gold = [LABELS[rng.choice(3, p=p)] for p in probs]
    gold[5] = "mixed"  # not a label: left out of coverage, as of NLL
    frame = pd.DataFrame({"text": [f"row {i}" for i in range(rows)], "label": gold})
    for index, label in enumerate(LABELS):
        frame[f"{prefix}p_{label}"] = probs[:, index]
    frame[f"{prefix}pred"] = [LABELS[i] for i in probs.argmax(axis=1)]
    frame[f"{prefix}entropy"] = -(probs * np.log(probs)).sum(axis=1)
    chosen = probs >= 0.4
    frame[f"{prefix}set"] = [",".join(label for label, yes in zip(LABELS, row) if yes) for row in chosen]
    frame[f"{prefix}set_size"] = chosen.sum(axis=1)
    return frame


def write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def expected_sets(frame: pd.DataFrame, prefix: str = "") -> dict:
    known = frame[frame["label"].isin(LABELS)]
    covered = [label in value.split(",") for label, value in zip(known["label"], known[f"{prefix}set"])]
    known = known.assign(covered=covered)
    classes = [
        {
            "label": label,
            "coverage": known[known["label"] == label]["covered"].mean(),
            "mean_size": known[known["label"] == label][f"{prefix}set_size"].mean(),
            "support": int((known["label"] == label).sum()),
        }
        for label in LABELS
    ]
    return {
        "rows": len(known),
        "coverage": float(np.mean(covered)),
        "mean_size": float(known[f"{prefix}set_size"].mean()),
        "classes": classes,
        "size_counts": np.bincount(known[f"{prefix}set_size"], minlength=4).tolist(),
    }


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_json_report_has_coverage_and_set_sizes_overall_and_per_class(tmp_path, suffix):
    frame = scored_with_sets()
    assert (frame["set"] == "").any() and (frame["set_size"] == 2).any()  # CSV writes an empty set as nothing
    result = invoke("eval", write(frame, tmp_path / f"scored{suffix}"), "--gold", "label", "--json")
    assert result.returncode == 0, result.stderr.decode()
    sets = json.loads(result.stdout)["sets"]
    expected = expected_sets(frame)
    assert sets["rows"] == expected["rows"] == 119 and sets["size_counts"] == expected["size_counts"]
    assert sets["coverage"] == pytest.approx(expected["coverage"]) and sets["mean_size"] == pytest.approx(
        expected["mean_size"]
    )
    for got, want in zip(sets["classes"], expected["classes"]):
        assert got == pytest.approx(want)


def test_a_named_task_and_a_class_without_rows(tmp_path):
    frame = scored_with_sets(prefix="sentiment_")
    frame.loc[frame["label"] == "neutral", "label"] = "positive"
    result = invoke("eval", write(frame, tmp_path / "scored.parquet"), "--gold", "label", "--json")
    sets = json.loads(result.stdout)["sets"]
    assert sets["coverage"] == pytest.approx(expected_sets(frame, "sentiment_")["coverage"])
    assert sets["classes"][2] == {"label": "neutral", "coverage": None, "mean_size": None, "support": 0}


def test_tables_show_the_sets_and_a_file_without_sets_has_none(tmp_path):
    frame = scored_with_sets()
    result = invoke("eval", write(frame, tmp_path / "scored.csv"), "--gold", "label")
    expected = expected_sets(frame)
    assert "Prediction sets" in result.stdout.decode() and f"{expected['coverage']:.4f}" in result.stdout.decode()
    plain = invoke("eval", write(frame.drop(columns=["set", "set_size"]), tmp_path / "plain.csv"), "--gold", "label")
    assert "Prediction sets" not in plain.stdout.decode()
    assert json.loads(invoke("eval", tmp_path / "plain.csv", "--gold", "label", "--json").stdout)["sets"] is None


@pytest.mark.parametrize("value", ["negative,positive", "Positive", "positive,,neutral"])
def test_a_set_value_that_is_not_joined_classes_is_one_line_naming_the_row(tmp_path, value):
    frame = scored_with_sets()
    frame.loc[6, "set"] = value
    result = invoke("eval", write(frame, tmp_path / "scored.csv"), "--gold", "label")
    assert_one_line_error(result, "row 7: column 'set' holds", "joined by commas in that order")


def test_plots_add_a_set_size_histogram(tmp_path):
    frame = scored_with_sets(prefix="sentiment_")
    result = invoke("eval", write(frame, tmp_path / "scored.csv"), "--gold", "label", "--plots", tmp_path / "plots")
    assert result.returncode == 0, result.stderr.decode()
    assert (tmp_path / "plots" / "sentiment_set_size.png").read_bytes().startswith(PNG_SIGNATURE)
    plain = write(frame.drop(columns=["sentiment_set", "sentiment_set_size"]), tmp_path / "plain.csv")
    assert invoke("eval", plain, "--gold", "label", "--plots", tmp_path / "plain").returncode == 0
    assert not (tmp_path / "plain" / "sentiment_set_size.png").exists()
