"""Compare the runs of a sweep (or one run) without W&B: a table, learning curves and a web page.

    python -m trainlab.report outputs/multirun/<date_time>      # or one run folder

Every folder below the given one that holds a `summary.json` (written by trainlab.train) is a run.
Written into the given folder: `report.md` (one row per run, best val acc first, failed runs last),
`curves.png` (val loss/acc of all runs), `train_vs_val/<run>.png` (train vs val per run),
`bias_variance.png` (train/val error against parameter count, when >= 3 model sizes were swept)
and `report.html` showing all of them. When the runs logged to W&B, the table and the plots also
go to one W&B run (job_type "report", mode from WANDB_MODE, default offline).
Exit code: 0 all runs completed, 1 some failed, 2 no runs found.
"""
from __future__ import annotations

import argparse
import csv
import html
import json
import os
import re
import sys
from pathlib import Path
from urllib.parse import quote

import yaml
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

FIGSIZE, DPI = (10, 4), 100  # every plot is 1000 x 400 pixels
COLUMNS = ["combination", "train acc", "val acc", "train loss", "val loss", "test acc", "params", "time (s)", "verdict"]
METRICS = ("train/loss", "train/acc", "val/loss", "val/acc")
REASON_CHARS = 80
STYLE = ("body{font-family:sans-serif;margin:2em} table{border-collapse:collapse} "
         "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left} img{max-width:100%}")
UNSAFE = re.compile(r"[^\w.=,+-]")  # characters kept out of plot file names


def load_runs(folder: Path) -> list[dict]:
    """One dict per summary.json below folder: name, path, summary, overrides, failed, history."""
    runs = []
    for path in sorted(folder.rglob("summary.json")):
        run_dir = path.parent
        try:
            summary = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            summary = {"status": "failed", "error": f"unreadable summary.json: {error}"}
        name = run_dir.name if run_dir == folder else run_dir.relative_to(folder).as_posix().replace("/", "__")
        runs.append({"name": name, "dir": run_dir, "summary": summary, "overrides": run_overrides(run_dir, summary),
                     "failed": summary.get("status", "completed") != "completed",
                     "history": summary.get("history") or history_from_csv(run_dir / "csv" / "metrics.csv")})
    return runs


def run_overrides(run_dir: Path, summary: dict) -> list[str]:
    """The job's command-line overrides: from summary.json, Hydra's record, or the sweep sub-folder name."""
    if isinstance(summary.get("overrides"), list):
        return [str(o) for o in summary["overrides"]]
    try:
        recorded = yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text())
        if isinstance(recorded, list):
            return [str(o) for o in recorded]
    except (OSError, yaml.YAMLError):
        pass
    match = re.fullmatch(r"\d+_(.*=.*)", run_dir.name)  # <job num>_<k=v,k=v>; commas inside [..] stay
    return re.split(r",(?![^\[\]{}]*[\]}])", match.group(1)) if match else []


def history_from_csv(path: Path) -> list[dict]:
    """Per-epoch metrics from Lightning's metrics.csv (rows of one epoch are merged)."""
    epochs: dict[int, dict] = {}
    try:
        with path.open(newline="") as f:
            for row in csv.DictReader(f):
                if not row.get("epoch"):
                    continue
                entry = epochs.setdefault(int(float(row["epoch"])), {"epoch": int(float(row["epoch"]))})
                entry.update({k: float(row[k]) for k in METRICS if row.get(k)})
    except (OSError, ValueError):
        return []
    return [epochs[e] for e in sorted(epochs) if len(epochs[e]) > 1]


def add_combinations(runs: list[dict]) -> None:
    """combination = the overrides that differ between runs (all of them for a single run)."""
    common = set.intersection(*(set(r["overrides"]) for r in runs)) if len(runs) > 1 else set()
    for run in runs:
        differing = [o for o in run["overrides"] if o not in common]
        run["combination"] = ", ".join(differing) or ("default" if not run["overrides"] else run["name"])


def fmt(value, digits: int = 4) -> str:
    if isinstance(value, bool) or value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def shorten(text: str, limit: int = REASON_CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def short_reason(reason: str) -> str:
    """The reason's first clause (the numbers), cut to REASON_CHARS."""
    first = re.split(r": |; | — ", str(reason), maxsplit=1)[0]
    return shorten(first if len(first) >= 20 else reason)


def table_order(run: dict) -> tuple:
    """Best last-epoch val acc first, runs without one after them, failed runs last."""
    val_acc = (run["summary"].get("final") or {}).get("val/acc")
    return run["failed"], -val_acc if isinstance(val_acc, (int, float)) and val_acc == val_acc else float("inf")


def table_rows(runs: list[dict]) -> list[list[str]]:
    """Rows of COLUMNS, from the last epoch ("final"), in the order of runs."""
    rows = []
    for run in runs:
        summary = run["summary"]
        final, test, verdict = summary.get("final") or {}, summary.get("test") or {}, summary.get("verdict") or {}
        if run["failed"]:
            note = f"failed: {shorten(summary.get('error') or 'no reason recorded', 120)}"
        elif verdict.get("fit"):
            stop = f" (stop at epoch {verdict['stop_epoch']})" if verdict.get("stop_epoch") is not None else ""
            note = f"{verdict['fit']}{stop}" + (f": {short_reason(verdict['reason'])}" if verdict.get("reason") else "")
        else:
            note = "-"
        metrics = [fmt(final.get(k)) for k in ("train/acc", "val/acc", "train/loss", "val/loss")]
        seconds = summary.get("wall_time_s")
        rows.append([run["combination"], *metrics, fmt(test.get("test/acc")), fmt(summary.get("num_parameters")),
                     f"{seconds:.1f}" if isinstance(seconds, (int, float)) else "-", note])
    return rows


def markdown_table(rows: list[list[str]]) -> str:
    def line(cells):
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"
    return "\n".join([line(COLUMNS), "|" + "|".join("---" for _ in COLUMNS) + "|", *map(line, rows)]) + "\n"


def html_table(rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>\n" for row in rows)
    return f"<table>\n<tr>{head}</tr>\n{body}</table>"


def series(history: list[dict], key: str) -> tuple[list, list]:
    points = [(h["epoch"], h[key]) for h in history if isinstance(h.get(key), (int, float)) and "epoch" in h]
    return [p[0] for p in points], [p[1] for p in points]


def save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)  # no bbox_inches="tight": the pixel size stays FIGSIZE * DPI
    return path


def plot_curves(runs: list[dict], path: Path) -> Path:
    """Val loss and val acc of every run against epoch, one line per run."""
    fig = Figure(figsize=FIGSIZE, dpi=DPI)
    axes = fig.subplots(1, 2)
    for run in runs:
        for ax, key in zip(axes, ("val/loss", "val/acc")):
            ax.plot(*series(run["history"], key), marker=".", linestyle="--" if run["failed"] else "-",
                    label=shorten(run["combination"], 40))
    for ax, key in zip(axes, ("val loss", "val acc")):
        ax.set(xlabel="epoch", ylabel=key, title=key)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize="small")
    return save(fig, path)


def plot_train_vs_val(run: dict, path: Path) -> Path:
    """Train and val loss and accuracy of one run: the gap between them is the variance."""
    fig = Figure(figsize=FIGSIZE, dpi=DPI)
    axes = fig.subplots(1, 2)
    best = run["summary"].get("best_epoch")
    for ax, what in zip(axes, ("loss", "acc")):
        for split in ("train", "val"):
            ax.plot(*series(run["history"], f"{split}/{what}"), marker=".", label=split)
        if isinstance(best, int):
            ax.axvline(best, color="grey", linestyle=":", label=f"best epoch {best}")
        ax.set(xlabel="epoch", ylabel=what, title=what)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fit = "failed" if run["failed"] else (run["summary"].get("verdict") or {}).get("fit", "")
    fig.suptitle(shorten(run["combination"] + (f" — {fit}" if fit else ""), 110), fontsize="medium")
    return save(fig, path)


def plot_bias_variance(runs: list[dict], path: Path) -> Path | None:
    """Final train and val error against parameter count; None unless >= 3 sizes were run."""
    by_size: dict[int, list[tuple[float, float]]] = {}
    for run in runs:
        final, size = run["summary"].get("final") or {}, run["summary"].get("num_parameters")
        accs = [final.get(k) for k in ("train/acc", "val/acc")]
        if not run["failed"] and isinstance(size, int) and all(isinstance(a, (int, float)) for a in accs):
            by_size.setdefault(size, []).append((1 - final["train/acc"], 1 - final["val/acc"]))
    if len(by_size) < 3:
        return None
    sizes = sorted(by_size)
    fig = Figure(figsize=FIGSIZE, dpi=DPI)
    ax = fig.subplots()
    for i, label in enumerate(("train error (bias)", "val error")):
        means = [sum(e[i] for e in by_size[s]) / len(by_size[s]) for s in sizes]
        ax.plot(sizes, means, marker="o", label=label)
    ax.set_xscale("log")
    ax.set(xlabel="parameters", ylabel="error = 1 - accuracy (last epoch)", title="error against model size")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return save(fig, path)


def write_html(folder: Path, rows: list[list[str]], images: dict[Path, str]) -> Path:
    """report.html: the table, then every plot (linked relatively) under its caption."""
    def figure(path: Path, caption: str) -> str:
        src = quote(path.relative_to(folder).as_posix(), safe="/=,+")
        return f'<h2>{html.escape(caption)}</h2>\n<img src="{src}" alt="{html.escape(caption)}" width="{FIGSIZE[0] * DPI}">'

    title = f"trainlab report: {html.escape(folder.name)}"
    figures = "\n".join(figure(path, caption) for path, caption in images.items())
    page = (f"<!doctype html>\n<html><head><meta charset='utf-8'>\n<title>{title}</title><style>{STYLE}</style></head>\n"
            f"<body><h1>{title}</h1>\n{html_table(rows)}\n{figures}\n</body></html>\n")
    path = folder / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


def wandb_project(runs: list[dict]) -> str | None:
    """The W&B project the runs logged to (their config's logger.project), else None."""
    for run in runs:
        wandb_dir = run["dir"] / "wandb"
        if any(d.is_dir() for pattern in ("offline-run-*", "run-*") for d in wandb_dir.glob(pattern)):
            try:
                logger = (yaml.safe_load((run["dir"] / "config.yaml").read_text()) or {}).get("logger") or {}
            except (OSError, yaml.YAMLError, AttributeError):
                logger = {}
            return logger.get("project") or os.environ.get("WANDB_PROJECT", "trainlab")
    return None


def log_to_wandb(folder: Path, project: str, rows: list[list[str]], images: dict[Path, str]) -> Path | None:
    """Table and plots to one W&B run (offline unless WANDB_MODE says otherwise); never fatal."""
    try:
        import wandb

        settings = wandb.Settings(init_timeout=30, silent=True, console="off", x_disable_stats=True)
        run = wandb.init(project=project, dir=str(folder), job_type="report", group=folder.name,
                         name=f"report-{folder.name}", mode=os.environ.get("WANDB_MODE", "offline"), settings=settings)
        try:
            run.log({"report": wandb.Table(columns=COLUMNS, data=rows),
                     **{p.relative_to(folder).with_suffix("").as_posix(): wandb.Image(str(p)) for p in images}})
            return Path(run.dir).parent
        finally:
            run.finish()
    except Exception as error:  # a report must not fail because W&B did
        print(f"warning: W&B logging skipped: {shorten(error, 200)}", file=sys.stderr)
        return None


def write_plots(folder: Path, runs: list[dict]) -> dict[Path, str]:
    """All plots, as {path: caption}; plots of an earlier report of this folder are replaced."""
    for stale in [folder / "bias_variance.png", *(folder / "train_vs_val").glob("*.png")]:
        stale.unlink(missing_ok=True)
    images = {plot_curves(runs, folder / "curves.png"): "validation loss and accuracy of every run"}
    bias_variance = plot_bias_variance(runs, folder / "bias_variance.png")
    if bias_variance:
        images[bias_variance] = "bias and variance against model size"
    for run in runs:
        path = folder / "train_vs_val" / f"{UNSAFE.sub('_', run['name'])}.png"
        images[plot_train_vs_val(run, path)] = f"train vs val: {run['combination']}"
    return images


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainlab.report", description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path, help="a sweep folder (outputs/multirun/...) or one run folder")
    parser.add_argument("--no-wandb", action="store_true", help="do not log the report to W&B")
    args = parser.parse_args(argv)
    folder = args.folder.resolve()
    if not folder.is_dir():
        print(f"error: {args.folder}: no such folder", file=sys.stderr)
        return 2
    runs = load_runs(folder)
    if not runs:
        print(f"error: {args.folder}: no summary.json below it (not a trainlab run or sweep folder)", file=sys.stderr)
        return 2
    add_combinations(runs)
    runs.sort(key=table_order)
    rows = table_rows(runs)
    (folder / "report.md").write_text(f"# {folder.name}\n\n{markdown_table(rows)}", encoding="utf-8")
    images = write_plots(folder, runs)
    page = write_html(folder, rows, images)
    project = None if args.no_wandb else wandb_project(runs)
    wandb_dir = log_to_wandb(folder, project, rows, images) if project else None

    print(markdown_table(rows))
    print(f"report: {folder / 'report.md'}\n        {page}")
    print(f"plots:  {folder / 'curves.png'}\n        {folder / 'train_vs_val'}/ (one per run)")
    if folder / "bias_variance.png" in images:
        print(f"        {folder / 'bias_variance.png'}")
    if wandb_dir:
        print(f"W&B:    {wandb_dir}")
    failed = sum(r["failed"] for r in runs)
    if failed:
        print(f"{failed} of {len(runs)} runs failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
