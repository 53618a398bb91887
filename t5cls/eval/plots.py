"""PNG plots for `t5cls eval --plots DIR`: reliability diagram, confusion matrix, entropy; set sizes.

Figures are built with `matplotlib.figure.Figure` and rendered by the Agg canvas that
`Figure.savefig` uses, never through `pyplot`: no GUI backend is touched (so this works
headless and over SSH), and importing this module does not switch the backend of a
notebook that also uses t5cls.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from t5cls import probability
from t5cls.errors import InputError
from t5cls.eval import metrics
from t5cls.eval.report import ScoredFile
from t5cls.io.atomic import write_atomically
from t5cls.io.oserrors import filesystem_errors

DPI = 120


def plot_folder(folder: str) -> Path:
    """Create the ``--plots`` folder up front, so a bad path fails before any report is printed."""
    directory = Path(folder)
    if directory.exists() and not directory.is_dir():
        raise InputError(f"--plots {folder}: exists and is not a directory")
    with filesystem_errors(directory, "create"):
        directory.mkdir(parents=True, exist_ok=True)
    return directory


def write_plots(scored: ScoredFile, directory: Path) -> list[Path]:
    """Write the PNGs into ``directory`` (set sizes too when the file has prediction sets); names carry the task."""
    prefix = f"{scored.task}_" if scored.task else ""
    pred = metrics.predictions(scored.probs)
    known = scored.known
    figures = {
        "reliability.png": reliability_diagram(metrics.calibration_bins(scored.probs[known], scored.gold_index[known])),
        "confusion_matrix.png": confusion_heatmap(
            metrics.confusion_matrix(scored.gold_index, pred, len(scored.labels)), scored.labels
        ),
        "entropy.png": entropy_histogram(
            probability.entropy(scored.probs), pred == scored.gold_index, len(scored.labels)
        ),
    }
    if scored.sets is not None:
        sets = scored.sets[known]
        figures["set_size.png"] = set_size_histogram(
            sets.sum(axis=1), sets[np.arange(len(sets)), scored.gold_index[known]]
        )
    paths = []
    for name, figure in figures.items():
        path = directory / f"{prefix}{name}"
        write_atomically(path, lambda stream, figure=figure: figure.savefig(stream, dpi=DPI, format="png"))
        paths.append(path)
    return paths


def reliability_diagram(bins: metrics.CalibrationBins) -> Figure:
    """Accuracy against mean confidence per bin: bars on the diagonal mean well calibrated."""
    figure = Figure(figsize=(5, 5.6), layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=(4, 1))
    width = np.diff(bins.edges)
    filled = bins.count > 0
    top.bar(
        bins.edges[:-1][filled],
        bins.accuracy[filled],
        width=width[filled],
        align="edge",
        edgecolor="black",
        color="tab:blue",
        label="accuracy",
    )
    top.plot(bins.confidence[filled], bins.confidence[filled], "o", color="tab:red", label="mean confidence")
    top.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    top.set(ylim=(0, 1), ylabel="accuracy", title=f"Reliability (ECE {bins.ece:.3f}, {len(bins.count)} bins)")
    top.legend(loc="upper left")
    bottom.bar(bins.edges[:-1], bins.count, width=width, align="edge", color="tab:gray", edgecolor="black")
    bottom.set(xlim=(0, 1), xlabel="confidence (top probability)", ylabel="rows")
    return figure


def confusion_heatmap(matrix: np.ndarray, labels: list[str]) -> Figure:
    """Counts, shaded by the share of each gold row, so small classes stay readable."""
    size = max(4.0, 0.6 * len(labels) + 2)
    figure = Figure(figsize=(size + 1, size), layout="constrained")
    axes = figure.subplots()
    totals = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, totals, out=np.zeros(matrix.shape), where=totals > 0)
    image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=axes, label="share of gold row")
    if len(labels) <= 30:  # beyond that the numbers are unreadable anyway
        for (gold, pred), count in np.ndenumerate(matrix):
            axes.text(
                pred,
                gold,
                str(count),
                ha="center",
                va="center",
                color="white" if shares[gold, pred] > 0.5 else "black",
                fontsize=8,
            )
    ticks = np.arange(len(labels))
    axes.set_xticks(ticks, labels, rotation=45, ha="right")
    axes.set_yticks(ticks, labels)
    axes.set(xlabel="predicted", ylabel="gold", title="Confusion matrix")
    return figure


def entropy_histogram(entropy: np.ndarray, correct: np.ndarray, n_labels: int) -> Figure:
    """Entropy of right and wrong predictions: useful scores put the wrong ones to the right."""
    figure = Figure(figsize=(6, 4), layout="constrained")
    axes = figure.subplots()
    edges = np.linspace(0.0, np.log(n_labels), 31)
    clipped = np.clip(entropy, 0.0, edges[-1])  # rounding can put a uniform row a hair past log L
    axes.hist(
        [clipped[correct], clipped[~correct]],
        bins=edges,
        color=["tab:green", "tab:red"],
        label=[f"correct ({correct.sum()})", f"wrong ({(~correct).sum()})"],
        alpha=0.7,
        histtype="stepfilled",
    )
    axes.set(
        xlabel=f"entropy (nats; max log {n_labels} = {np.log(n_labels):.2f})", ylabel="rows", title="Prediction entropy"
    )
    axes.legend()
    return figure


def set_size_histogram(sizes: np.ndarray, covered: np.ndarray) -> Figure:
    """Rows per prediction-set size, split by whether the set holds the gold label: where the coverage comes from."""
    figure = Figure(figsize=(6, 4), layout="constrained")
    axes = figure.subplots()
    counts = [np.bincount(sizes[part], minlength=sizes.max(initial=0) + 1) for part in (covered, ~covered)]
    positions = np.arange(len(counts[0]))
    axes.bar(positions, counts[0], color="tab:green", label=f"gold in set ({covered.sum()})")
    axes.bar(positions, counts[1], bottom=counts[0], color="tab:red", label=f"gold not in set ({(~covered).sum()})")
    axes.set_xticks(positions)
    coverage = covered.mean() if len(covered) else float("nan")
    axes.set(xlabel="set size (classes)", ylabel="rows", title=f"Prediction sets (coverage {coverage:.3f})")
    axes.legend()
    return figure
