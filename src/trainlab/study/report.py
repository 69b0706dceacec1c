"""Compare the runs of a sweep (or one run) without W&B: tables with uncertainty, learning curves, a web page.

    trainlab-report outputs/multirun/<date_time>      # or one run folder

Every folder below the given one that holds a `summary.json` (written by trainlab.run.pipeline) is a run.
Runs that differ only in `seed` / `data.split_seed` are replicates of one setting (trainlab.study.compare).
Written into the given folder: `report.md` (one row per setting with 95% intervals and ties with the
best, the experiment's claims checked, then one row per run), `claims.json` (the claims' outcomes),
`curves.png` (val loss/acc of every setting, mean and 95% band over replicates),
`train_vs_val/<setting>.png`, `confusion/<setting>.png` (the test confusion matrix; per-class recall and
precision tables in report.md), `bias_variance.png` (train/val error against parameter count, when
>= 3 model sizes were swept) and `report.html` showing all of them. When the runs logged to W&B,
the tables and the plots also go to one W&B run (job_type "report", mode from WANDB_MODE, default offline).
Exit code: 0 all runs completed, 1 some failed, 2 no runs found or a sweep/claim that cannot be
evaluated (nothing is written then).
"""
from __future__ import annotations

import argparse
import csv
import html
import json
import re
import sys
from pathlib import Path
from urllib.parse import quote

import yaml

from trainlab.errors import ConfigError
from trainlab.overrides import REPLICATE_KEYS, is_setting_override, override_key
from trainlab.run.tracking import log_report, wandb_project
from trainlab.study.claims import evaluate as evaluate_claims
from trainlab.study.compare import (
    RANK_METRIC,
    Setting,
    fit_summary,
    group_settings,
    per_class,
    rank,
    replicate_id,
    run_metrics,
    versus_best_text,
)
from trainlab.study.plots import DPI, FIGSIZE, shorten, write_plots
from trainlab.study.tuning import choose_arms

COLUMNS = ["combination", "train acc", "val acc", "train loss", "val loss", "test acc", "params", "s/epoch", "verdict"]
SETTING_COLUMNS = ["rank", "setting", "n", "val acc", "test acc", "train acc", "val loss", "train loss", "params",
                   "vs best", "verdict"]
CLAIM_COLUMNS = ["claim", "notes", "outcome", "evidence"]
TUNING_COLUMNS = ["arm", "value", "val acc", "chosen"]
METRICS = ("train/loss", "train/acc", "val/loss", "val/acc")
REASON_CHARS = 80
STYLE = ("body{font-family:sans-serif;margin:2em} table{border-collapse:collapse} "
         "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left} img{max-width:100%}")


def load_runs(folder: Path) -> list[dict]:
    """One dict per summary.json below folder: name, dir, summary, overrides, failed, config (its saved
    config.yaml), replicate ((seed, split_seed)), metrics (of the tested model) and history."""
    runs = []
    for path in sorted(folder.rglob("summary.json")):
        run_dir = path.parent
        try:
            summary = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            summary = {"status": "failed", "error": f"unreadable summary.json: {error}"}
        name = run_dir.name if run_dir == folder else run_dir.relative_to(folder).as_posix().replace("/", "__")
        config = run_config(run_dir)
        runs.append({"name": name, "dir": run_dir, "summary": summary, "overrides": run_overrides(run_dir, summary),
                     "failed": summary.get("status", "completed") != "completed", "config": config,
                     "replicate": replicate_id(config), "metrics": run_metrics(summary),
                     "history": summary.get("history") or history_from_csv(run_dir / "csv" / "metrics.csv")})
    return runs


def run_config(run_dir: Path) -> dict:
    """The run's saved, resolved config.yaml ({} when it is missing or unreadable)."""
    try:
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return config if isinstance(config, dict) else {}


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
    """combination = the overrides that differ between runs (all of them for a single run), tooling left out."""
    own = [[o for o in r["overrides"] if is_setting_override(o) or override_key(o) in REPLICATE_KEYS] for r in runs]
    common = set.intersection(*(set(o) for o in own)) if len(runs) > 1 else set()
    for run, overrides in zip(runs, own, strict=True):
        differing = [o for o in overrides if o not in common]
        run["combination"] = ", ".join(differing) or ("default" if not overrides else run["name"])


def fmt(value, digits: int = 4) -> str:
    if isinstance(value, bool) or value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def short_reason(reason: str) -> str:
    """The reason's first clause (the numbers), cut to REASON_CHARS."""
    first = re.split(r": |; | — ", str(reason), maxsplit=1)[0]
    return shorten(first if len(first) >= 20 else reason, REASON_CHARS)


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
        if summary.get("pruned_at_epoch") is not None:  # a trial of an Optuna search stopped early
            note = f"pruned after epoch {summary['pruned_at_epoch']}; {note}"
        metrics = [fmt(final.get(k)) for k in ("train/acc", "val/acc", "train/loss", "val/loss")]
        seconds = (summary.get("diagnostics") or {}).get("epoch_time", {}).get("median_s")  # median, no start-up
        rows.append([run["combination"], *metrics, fmt(test.get("test/acc")), fmt(summary.get("num_parameters")),
                     f"{seconds:.3g}" if isinstance(seconds, (int, float)) else "-", note])
    return rows


def class_names(runs: list[dict]) -> list[str] | None:
    """The class names a run saved (labels.json), else None (class ids are shown)."""
    for run in runs:
        path = run["dir"] / "labels.json"
        if path.exists():
            names = json.loads(path.read_text())
            return [names[str(i)] for i in range(len(names))]
    return None


def per_class_tables(ranked: list[Setting], names: list[str] | None) -> dict[str, tuple[list[str], list[list[str]]]]:
    """Per-class recall and precision on the test split, one row per setting (summed over its replicates)."""
    matrices = [(s, s.test_confusion) for s in ranked if s.test_confusion]
    if not matrices:
        return {}
    labels = names or [str(i) for i in range(len(matrices[0][1]))]
    tables = {}
    for measure in ("recall", "precision"):
        rows = [[s.name, *(fmt(v, 3) if v is not None else "-" for v in per_class(m)[measure])] for s, m in matrices]
        tables[f"per-class {measure} (test)"] = (["setting", *labels], rows)
    return tables


def setting_rows(ranked: list[Setting]) -> list[list[str]]:
    """Rows of SETTING_COLUMNS: means with 95% intervals of the tested model, ties with the best marked."""
    comparisons = sum(s.versus_best is not None for s in ranked)
    rows = []
    for s in ranked:
        cells = [s.estimates[m].text() if m in s.estimates else "-"
                 for m in ("val/acc", "test/acc", "train/acc", "val/loss", "train/loss")]
        params = {r["summary"].get("num_parameters") for r in s.runs} - {None}
        failed = f" (+{len(s.failed)} failed)" if s.failed and s.runs else ""
        rows.append([s.rank or "-", s.name, f"{s.n}{failed}", *cells, fmt(params.pop()) if len(params) == 1 else "-",
                     versus_best_text(s, comparisons), shorten(fit_summary(s), 120)])
    return rows


def claim_rows(records: list[dict]) -> list[list[str]]:
    return [[r["text"], str(r.get("source") or "-"), f"**{r['outcome']}**", r["evidence"]] for r in records]


def replicate_kind(ranked: list[Setting]) -> str:
    """Which noise the intervals over replicates cover: seeds and splits, or seeds on one split."""
    replicated = [s for s in ranked if s.n > 1]
    splits = [len({r["replicate"][1] for r in s.runs}) for s in replicated]
    if not replicated:
        return ""
    if all(k == s.n for k, s in zip(splits, replicated, strict=True)):
        return (" Each replicate has its own seed and data split, so an interval includes the sampling noise of the "
                "evaluation split.")
    if all(k == 1 for k in splits):
        return (" All replicates share one data split: an interval covers seed-to-seed variation only, not the "
                "sampling of the evaluation set (vary data.split_seed for that).")
    return " Some replicates share a data split: an interval covers part of the evaluation set's sampling noise."


def settings_note(ranked: list[Setting]) -> str:
    replicated = any(s.n > 1 for s in ranked)
    return ("Mean and 95% interval of the tested model (the best checkpoint) over replicates "
            f"({'Student t' if replicated else 'one run each: Wilson interval of each accuracy'}"
            f"{'; one run: Wilson interval' if replicated else ''}). val chose each run's checkpoint, so settings are "
            f"ranked on {RANK_METRIC} and claims judged on test (or on a run's last epoch); each setting is tested "
            "against the first (paired t over shared seeds and splits, else McNemar on the same samples), "
            "Holm-corrected; tied = not distinguishable from the first at the 5% level." + replicate_kind(ranked))


def markdown_table(rows: list[list[str]], columns: list[str] = COLUMNS) -> str:
    def line(cells):
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"
    return "\n".join([line(columns), "|" + "|".join("---" for _ in columns) + "|", *map(line, rows)]) + "\n"


def html_table(rows: list[list[str]], columns: list[str] = COLUMNS) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c.strip('*'))}</td>" for c in row) + "</tr>\n" for row in rows)
    return f"<table>\n<tr>{head}</tr>\n{body}</table>"


# pragma: no mutate start (make mutation: files and figures; the tables above are mutated)
def write_html(folder: Path, tables: dict[str, str], images: dict[Path, str]) -> Path:
    """report.html: the tables under their headings, then every plot (linked relatively) under its caption."""
    def figure(path: Path, caption: str) -> str:
        src = quote(path.relative_to(folder).as_posix(), safe="/=,+")
        return f'<h2>{html.escape(caption)}</h2>\n<img src="{src}" alt="{html.escape(caption)}" width="{FIGSIZE[0] * DPI}">'

    title = f"trainlab report: {html.escape(folder.name)}"
    figures = "\n".join(figure(path, caption) for path, caption in images.items())
    sections = "\n".join(f"<h2>{html.escape(heading)}</h2>\n{table}" for heading, table in tables.items())
    page = (f"<!doctype html>\n<html><head><meta charset='utf-8'>\n<title>{title}</title><style>{STYLE}</style></head>\n"
            f"<body><h1>{title}</h1>\n{sections}\n{figures}\n</body></html>\n")
    path = folder / "report.html"
    path.write_text(page, encoding="utf-8")
    return path

# pragma: no mutate end


def sweep_claims(runs: list[dict]) -> list[dict]:
    """The claims the sweep's experiment states (in every run's saved config; the first one that has any)."""
    return next((list(r["config"]["claims"]) for r in runs if r["config"].get("claims")), [])


def sweep_tuned(runs: list[dict]) -> list[str]:
    """The keys the sweep's experiment tunes per arm on val (trainlab.study.tuning)."""
    return next((list(r["config"]["tuned"]) for r in runs if r["config"].get("tuned")), [])


# pragma: no mutate block (the command: reads folders, writes files)
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="trainlab-report", description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path, help="a sweep folder (outputs/multirun/...) or one run folder")
    parser.add_argument("--only", action="append", default=[], metavar="KEY=VALUE",
                        help="report only the runs with this override (repeatable), e.g. --only data=digits")
    parser.add_argument("--no-wandb", action="store_true", help="do not log the report to W&B")
    parser.add_argument("--include-debug", action="store_true",
                        help="compare runs made with a debug= preset too (left out of the settings by default)")
    args = parser.parse_args(argv)
    folder = args.folder.resolve()
    if not folder.is_dir():
        print(f"error: {args.folder}: no such folder", file=sys.stderr)
        return 2
    runs = [r for r in load_runs(folder) if all(o in r["overrides"] for o in args.only)]
    if not runs:
        only = f" with {' '.join(args.only)}" if args.only else ""
        print(f"error: {args.folder}: no summary.json{only} below it (not a trainlab run or sweep folder)", file=sys.stderr)
        return 2
    add_combinations(runs)
    runs.sort(key=table_order)
    # One batch, or a few: a wiring check, not a result. Compared only when asked, or when nothing else ran.
    debug = [r for r in runs if any(override_key(o) == "debug" for o in r["overrides"])]
    compared = runs if args.include_debug or len(debug) == len(runs) else [r for r in runs if r not in debug]
    if debug and compared is not runs:
        print(f"note: {len(debug)} run(s) made with a debug= preset are listed but not compared (--include-debug "
              "compares them)", file=sys.stderr)
    tuned = sweep_tuned(compared)
    try:  # everything is evaluated before anything is written
        arms, tuning = choose_arms(group_settings(compared), tuned)
        ranked = rank(arms)
        records = evaluate_claims(sweep_claims(compared), ranked, tuned)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    names = class_names(runs)
    tables = {"settings": (SETTING_COLUMNS, setting_rows(ranked)), **per_class_tables(ranked, names),
              "runs": (COLUMNS, table_rows(runs))}
    if records:
        tables["claims"] = (CLAIM_COLUMNS, claim_rows(records))
        (folder / "claims.json").write_text(json.dumps(records, indent=2), encoding="utf-8")
    if tuning:
        tables["tuning"] = (TUNING_COLUMNS, tuning)
    tuned_note = (f" Each arm is at its own best {', '.join(tuned)} on val (mean val acc, runs that all completed; "
                  "the Tuning table lists every value)." if tuned else "")
    sections = {"Settings": f"{markdown_table(tables['settings'][1], SETTING_COLUMNS)}\n{settings_note(ranked)}"
                            f"{tuned_note}\n"}
    if tuning:
        sections["Tuning (chosen on val)"] = markdown_table(tuning, TUNING_COLUMNS)
    if records:
        sections["Claims of the notes"] = markdown_table(tables["claims"][1], CLAIM_COLUMNS)
    for name, (columns, rows) in tables.items():
        if name.startswith("per-class"):
            sections[name.capitalize()] = markdown_table(rows, columns)
    sections["Runs"] = markdown_table(tables["runs"][1])
    (folder / "report.md").write_text(f"# {folder.name}\n\n" + "\n".join(f"## {h}\n\n{t}" for h, t in sections.items()),
                                      encoding="utf-8")
    images = write_plots(folder, ranked, names)
    page = write_html(folder, {name: html_table(rows, columns) for name, (columns, rows) in tables.items()}, images)
    project = None if args.no_wandb else wandb_project(runs)
    wandb_dir = log_report(folder, project, tables, images) if project else None

    print("\n".join(sections[heading] for heading in ("Settings", "Claims of the notes") if heading in sections))
    print(f"report: {folder / 'report.md'}\n        {page}")
    if records:
        print(f"claims: {folder / 'claims.json'}")
    print(f"plots:  {folder / 'curves.png'}\n        {folder / 'train_vs_val'}/ (one per setting)")
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
