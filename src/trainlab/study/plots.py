"""The report's plots: learning curves of each setting (the mean and a 95% band over its replicates),
train vs val per setting, and train/val error against parameter count with error bars."""
from __future__ import annotations

import re
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from trainlab.stats import estimate
from trainlab.study.compare import Setting, fit_summary

FIGSIZE, DPI = (10, 4), 100  # every plot is 1000 x 400 pixels
UNSAFE = re.compile(r"[^\w.=,+-]")  # characters kept out of plot file names


def shorten(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def series(history: list[dict], key: str) -> tuple[list, list]:
    points = [(h["epoch"], h[key]) for h in history if isinstance(h.get(key), (int, float)) and "epoch" in h]
    return [p[0] for p in points], [p[1] for p in points]


def save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)  # no bbox_inches="tight": the pixel size stays FIGSIZE * DPI
    return path


def band(ax, runs: list[dict], key: str, **style) -> None:
    """The mean of `key` per epoch over runs, shaded with its 95% t interval where >= 2 runs reached the epoch."""
    by_epoch: dict[int, list[float]] = {}
    for run in runs:
        for epoch, value in zip(*series(run["history"], key), strict=True):
            by_epoch.setdefault(epoch, []).append(value)
    epochs = sorted(by_epoch)
    estimates = [estimate(by_epoch[e]) for e in epochs]
    line, = ax.plot(epochs, [e.mean for e in estimates], marker="." if len(epochs) < 30 else None, **style)
    shaded = [(x, e) for x, e in zip(epochs, estimates, strict=True) if e.n >= 2]
    if shaded:
        ax.fill_between([x for x, _ in shaded], [e.lo for _, e in shaded], [e.hi for _, e in shaded],
                        color=line.get_color(), alpha=0.2, linewidth=0)


def _epoch_axis(ax, ylabel: str, epochs_run: int) -> None:
    ax.set(xlabel="epoch", ylabel=ylabel, title=ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    if epochs_run <= 1:
        ax.set_xlim(-0.5, 0.5)  # one epoch: a point, not an axis around +-0.05
    ax.grid(alpha=0.3)


def plotted_runs(setting: Setting) -> list[dict]:
    """A setting's completed runs; a setting that only failed still shows what its runs logged."""
    return setting.runs or setting.failed


def _epochs(runs: list[dict]) -> int:
    return max((len(r["history"]) for r in runs), default=0)


def plot_curves(settings: list[Setting], path: Path) -> Path:
    """Val loss and val acc of every setting against epoch: mean and 95% band over replicates."""
    fig = Figure(figsize=FIGSIZE, dpi=DPI)
    axes = fig.subplots(1, 2)
    for setting in settings:
        for ax, key in zip(axes, ("val/loss", "val/acc"), strict=True):
            label = shorten(setting.name, 40) + (f" (n={setting.n})" if setting.n > 1 else "")
            band(ax, plotted_runs(setting), key, label=label, linestyle="-" if setting.runs else "--")
    epochs = max((_epochs(plotted_runs(s)) for s in settings), default=0)
    for ax, key in zip(axes, ("val loss", "val acc"), strict=True):
        _epoch_axis(ax, key, epochs)
    axes[1].legend(fontsize="small")
    return save(fig, path)


def plot_train_vs_val(title: str, runs: list[dict], path: Path) -> Path:
    """Train and val loss and accuracy of one setting's runs: the gap between them is the variance."""
    fig = Figure(figsize=FIGSIZE, dpi=DPI)
    axes = fig.subplots(1, 2)
    best = {r["summary"].get("best_epoch") for r in runs} - {None}
    best_epoch = best.pop() if len(best) == 1 else None  # replicates that stopped at different epochs: no line
    for ax, what in zip(axes, ("loss", "acc"), strict=True):
        for split in ("train", "val"):
            band(ax, runs, f"{split}/{what}", label=split)
        if best_epoch is not None:
            ax.axvline(best_epoch, color="grey", linestyle=":", label=f"best epoch {best_epoch}")
        _epoch_axis(ax, what, _epochs(runs))
        ax.legend(fontsize="small")
    fig.suptitle(shorten(title, 110), fontsize="medium")
    return save(fig, path)


def plot_bias_variance(settings: list[Setting], path: Path) -> Path | None:
    """Last-epoch train and val error against parameter count, with 95% error bars; None unless >= 3 sizes."""
    by_size: dict[int, list[dict]] = {}
    for setting in settings:
        for run in setting.runs:
            final, size = run["summary"].get("final") or {}, run["summary"].get("num_parameters")
            if isinstance(size, int) and all(isinstance(final.get(k), (int, float)) for k in ("train/acc", "val/acc")):
                by_size.setdefault(size, []).append(run)
    if len(by_size) < 3:
        return None
    sizes = sorted(by_size)
    fig = Figure(figsize=FIGSIZE, dpi=DPI)
    ax = fig.subplots()
    for key, label in (("train/acc", "train error (bias)"), ("val/acc", "val error")):
        points = []
        for size in sizes:
            runs = by_size[size]
            samples = (runs[0]["summary"].get("evaluated") or {}).get("val_samples")
            points.append(estimate([1 - r["summary"]["final"][key] for r in runs], samples))
        ax.errorbar(sizes, [p.mean for p in points], marker="o", capsize=3, label=label,
                    yerr=[[p.mean - p.lo if p.method else 0 for p in points],
                          [p.hi - p.mean if p.method else 0 for p in points]])
    ax.set_xscale("log")
    ax.set(xlabel="parameters", ylabel="error = 1 - accuracy (last epoch)", title="error against model size (95% bars)")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return save(fig, path)


def plot_confusion(title: str, matrix: list[list[int]], names: list[str], path: Path) -> Path:
    """Counts of (true class, predicted class) on the test split, each cell labelled."""
    fig = Figure(figsize=FIGSIZE)
    ax = fig.add_subplot()
    ax.imshow(matrix, cmap="Blues")
    ticks = range(len(names))
    ax.set_xticks(ticks, names, rotation=45, ha="right")
    ax.set_yticks(ticks, names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    largest = max(max(row) for row in matrix) or 1
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            label = ax.text(j, i, str(count), ha="center", va="center", fontsize=7,
                            color="white" if count > largest / 2 else "black")
            label.set_in_layout(False)  # inside its cell: tight_layout need not measure 100 labels
    return save(fig, path)


def write_plots(folder: Path, settings: list[Setting], class_names: list[str] | None = None) -> dict[Path, str]:
    """All plots, as {path: caption}; plots of an earlier report of this folder are replaced."""
    earlier = [folder / "bias_variance.png", *(folder / "train_vs_val").glob("*.png"), *(folder / "confusion").glob("*.png")]
    for path in earlier:
        path.unlink(missing_ok=True)
    replicated = any(s.n > 1 for s in settings)
    caption = "validation loss and accuracy of every setting" + (" (mean, 95% band over replicates)" if replicated else "")
    images = {plot_curves(settings, folder / "curves.png"): caption}
    bias_variance = plot_bias_variance(settings, folder / "bias_variance.png")
    if bias_variance:
        images[bias_variance] = "bias and variance against model size"
    for setting in settings:
        path = folder / "train_vs_val" / f"{UNSAFE.sub('_', setting.name)[:150]}.png"
        title = f"{setting.name} — {fit_summary(setting).split(':')[0]}"
        images[plot_train_vs_val(title, plotted_runs(setting), path)] = f"train vs val: {setting.name}"
        matrix = setting.test_confusion
        if matrix:
            names = class_names or [str(i) for i in range(len(matrix))]
            path = folder / "confusion" / f"{UNSAFE.sub('_', setting.name)[:150]}.png"
            images[plot_confusion(f"{setting.name}: test", matrix, names, path)] = f"test confusion matrix: {setting.name}"
    return images
