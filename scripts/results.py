"""Runs every shipped experiment on the embedded data and writes the Results page, docs/results.md.

    make results        # or: python scripts/results.py [experiment ...]
    python scripts/results.py --page      # only rewrite docs/results.md (and README's pointer) from results/
    python scripts/results.py --check     # rerun every setting Results reports as completed, briefly: stale?

Sweeps run, with each experiment's own replicates, into outputs/results/<experiment>/ (git-ignored,
with checkpoints and logs); each sweep's settings and claims tables, claims.json and plots are copied
to results/<experiment>/ (committed) with its wall time, and docs/results.md's section between the results
markers is rewritten from results/: the statistics note every sweep's report repeats, said once, every claim
of every experiment in one table, then each experiment's tables. README.md's own results markers get a
one-line pointer: the sweeps, their commits and the claims' outcomes. Rerunning one experiment keeps the
others. Nothing there is typed by hand.
Each results/<experiment>/run.json records the commit, date, data and command of its sweep, and every
setting it ran with its completed and failed runs: what `--check` (and tests/test_results.py) reruns.
"""
from __future__ import annotations

import collections
import datetime
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from trainlab.overrides import is_setting_override

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- results:start -->", "<!-- results:end -->"
PAGE = ROOT / "docs" / "results.md"
# The note under every Settings table (trainlab.study.report.settings_note): the page says it once.
NOTE = "Mean and 95% interval of the tested model"
# experiment -> (extra overrides, one-line reading guide)
EXPERIMENTS = {
    "act_optim": ([], "activation x optimizer on MNIST (batch 32, 10 epochs): the notes' headline table"),
    "shapes": ([], "hourglass 512-256-512 vs pyramid 576-288-144 vs uniform 413x3, matched parameter counts"),
    "bias_variance": ([], "capacity sweep: train and val error against parameter count"),
    "init": ([], "every init scheme on a deep (6 x 128) sigmoid net and a deep relu net"),
    "norm": ([], "none/batch/layer/group norm on a deep (8 x 128) sigmoid net"),
    "bnnet": ([], "the notes' BNNet with and without BatchNorm"),
    "regularization": ([], "dropout x weight decay x early stopping (patience 3, or 1000 = off) on a 2 x 1024 net"),
    "batch_lr": ([], "batch size x learning rate with plain SGD"),
    "scaling": ([], "data.scaler global vs standard vs minmax vs none (raw pixels) with SGD, each at its best lr on val"),
    "precision": ([], "32-true vs bf16-mixed vs 16-mixed (runs as bf16-mixed on a CPU): accuracy"),
    "imdb_overfit": (["data=bbc_news"], "the notes' IMDB overfitting recipe on the embedded BBC News"),
}


# One replicate, one epoch on a few batches, no report: enough to see a setting fail, diverge or be refused.
CHECK = ["replicates=1", "trainer.max_epochs=1", "trainer.limit_train_batches=5", "trainer.limit_val_batches=2",
         "logger=none", "print_config=false", "callbacks.progress_bar.refresh_rate=0", "~hydra.callbacks.report",
         "hydra.sweep.subdir=${hydra.job.num}"]  # folder names of every override outgrow a file name


def command_overrides(name: str) -> list[str]:
    return [f"experiment={name}", *EXPERIMENTS[name][0]]


def setting_of(overrides: list[str], command: list[str]) -> tuple[str, ...]:
    """A job's setting: its overrides that pick what it trains, less those every job of the sweep shares."""
    return tuple(sorted(o for o in overrides if is_setting_override(o) and o not in command and o not in CHECK))


def commit() -> str:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    return head.stdout.strip() + (" with uncommitted changes" if dirty else "") if head.returncode == 0 else "unknown"


def run(name: str, overrides: list[str]) -> tuple[Path, float]:
    sweep = ROOT / "outputs" / "results" / name
    shutil.rmtree(sweep, ignore_errors=True)
    command = [sys.executable, str(ROOT / "train.py"), "-m", f"experiment={name}", *overrides, "logger=csv",
               "callbacks.progress_bar.refresh_rate=0", f"hydra.sweep.dir={sweep}"]
    print("$", " ".join(command[1:]), flush=True)
    started = time.perf_counter()
    # A sweep with a failed job exits 1 after its report; the report says which and why.
    subprocess.run(command, cwd=ROOT, check=False, stdout=subprocess.DEVNULL)
    return sweep, time.perf_counter() - started


def collect(name: str, sweep: Path, seconds: float, code: str) -> None:
    """The sweep's settings and claims (not its per-run table), claims.json and plots, to results/<name>/."""
    target = ROOT / "results" / name
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for artefact in ("curves.png", "bias_variance.png", "claims.json"):
        if (sweep / artefact).exists():
            shutil.copy(sweep / artefact, target / artefact)
    sections = (sweep / "report.md").read_text().split("\n## ")[1:]
    kept = [f"#### {s.strip()}" for s in sections if not s.startswith("Runs")]
    summaries = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/summary.json"))]
    command = command_overrides(name)
    settings: dict[tuple, dict] = {}
    for summary in summaries:
        setting = settings.setdefault(setting_of(summary.get("overrides") or [], command),
                                      {"completed": 0, "failed": 0})
        setting["completed" if summary.get("status") == "completed" else "failed"] += 1
    (target / "report.md").write_text("\n\n".join(kept) + "\n")
    data = next((o.split("=", 1)[1] for o in command if o.startswith("data=")), "mnist")
    record = {"runs": len(summaries), "seconds": round(seconds), "commit": code,
              "date": datetime.date.today().isoformat(), "data": data, "command": command,
              "settings": [{"overrides": list(k), **v} for k, v in settings.items()]}
    (target / "run.json").write_text(json.dumps(record, indent=1) + "\n")


def paragraphs(name: str) -> list[str]:
    return (ROOT / "results" / name / "report.md").read_text().strip().split("\n\n")


def shared_note(names: list[str]) -> str:
    """The statistics note every experiment's report repeats under Settings (some add a sentence of their own)."""
    notes = [p for name in names for p in paragraphs(name) if p.startswith(NOTE)]
    shortest = min(notes, key=len, default="")
    return shortest if all(n.startswith(shortest) for n in notes) else ""


def section(name: str, note: str = "") -> str:
    """One experiment's part of the page: its command and record, its report's tables (less the shared note), plots."""
    kept = []
    for paragraph in paragraphs(name):
        if note and paragraph.startswith(note):
            paragraph = paragraph[len(note):].strip()  # what this experiment's note adds, if anything
        if paragraph:
            kept.append(paragraph[1:] if paragraph.startswith("#### ") else paragraph)  # one level up on the page
    tables = "\n\n".join(kept)
    target = ROOT / "results" / name
    images = "".join(f"\n\n![{name} {p.stem}](../results/{name}/{p.name})" for p in sorted(target.glob("*.png")))
    guide = EXPERIMENTS[name][1]
    command = " ".join(["python train.py", *command_overrides(name)])
    record = json.loads((target / "run.json").read_text())
    timing = (f" {record['runs']} runs in {record['seconds'] / 60:.1f} min, on {record.get('date', 'an unrecorded date')} "
              f"at commit {record.get('commit', 'unrecorded')}.")
    return f"## {name}\n\n{guide}. `{command}`{timing}\n\n{tables}{images}\n"


def claims_of(names: list[str]) -> list[tuple[str, dict]]:
    """Every claim of every experiment with results, with its experiment's name."""
    paths = [(name, ROOT / "results" / name / "claims.json") for name in names]
    return [(name, claim) for name, path in paths if path.exists() for claim in json.loads(path.read_text())]


def claims_table(claims: list[tuple[str, dict]]) -> str:
    """The claims with the notes' file, the outcome and its evidence."""
    rows = ["| claim | experiment | notes | outcome | evidence |", "|---|---|---|---|---|"]
    for name, claim in claims:
        cells = [claim["text"], name, str(claim.get("source", "-")), f"**{claim['outcome']}**", claim["evidence"]]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return f"## The notes' claims\n\n{outcomes(claims)}.\n\n" + "\n".join(rows) + "\n"


def outcomes(claims: list[tuple[str, dict]]) -> str:
    """`28 claims: reproduced 14, ...`."""
    counts = collections.Counter(claim["outcome"] for _, claim in claims)
    return f"{len(claims)} claims: " + ", ".join(f"{k} {v}" for k, v in counts.items())


def stale(names: list[str], results: Path = ROOT / "results", work: Path = ROOT / "outputs" / "stale") -> list[str]:
    """Reruns, briefly, every setting Results reports as completed; what now fails, diverges or is refused."""
    problems = []
    for name in names:
        record = json.loads((results / name / "run.json").read_text())
        if "settings" not in record:
            problems.append(f"{name}: its Results predate the recorded settings; run make results ARGS={name}")
            continue
        sweep = work / name
        shutil.rmtree(sweep, ignore_errors=True)
        done = subprocess.run([sys.executable, str(ROOT / "train.py"), "-m", *record["command"], *CHECK,
                               f"hydra.sweep.dir={sweep}"], cwd=ROOT, capture_output=True, text=True)
        now = {}
        for path in sweep.glob("*/summary.json"):
            summary = json.loads(path.read_text())
            now[setting_of(summary.get("overrides") or [], record["command"])] = summary
        for setting in (s for s in record["settings"] if s["completed"]):
            key, label = tuple(setting["overrides"]), ", ".join(setting["overrides"]) or "default"
            summary = now.get(key)
            if summary is None:
                stopped = done.returncode == 2 or (done.returncode and not now)  # refused, or no job could start
                lines = [line for line in done.stderr.splitlines() if line.strip() and "HYDRA_FULL_ERROR" not in line]
                why = lines[-1:] if stopped else ["the experiment no longer runs it"]
                problems.append(f"{name}: {label} completed in Results, now not run: {why[0] if why else '-'}")
            elif summary.get("status") != "completed":
                problems.append(f"{name}: {label} completed in Results, now {summary.get('status')}: "
                                f"{' '.join(str(summary.get('error')).split())[:200]}")
    return problems


def main(names: list[str]) -> None:
    if names and names[0] == "--check":
        problems = stale(names[1:] or [n for n in EXPERIMENTS if (ROOT / "results" / n / "run.json").exists()])
        print("\n".join(problems) or "every setting Results reports as completed still runs")
        sys.exit(1 if problems else 0)
    page_only = names == ["--page"]
    unknown = set(names) - set(EXPERIMENTS) if not page_only else set()
    if unknown:
        sys.exit(f"error: unknown experiment(s) {sorted(unknown)}; choose from {list(EXPERIMENTS)} (or --page)")
    for name in [] if page_only else names or EXPERIMENTS:
        code = commit()  # the code the sweep ran, taken before it starts
        sweep, seconds = run(name, EXPERIMENTS[name][0])
        if (sweep / "report.md").exists():
            collect(name, sweep, seconds, code)
    # Every experiment with results in results/ goes onto the page, whether run now or earlier.
    done = [name for name in EXPERIMENTS if (ROOT / "results" / name / "run.json").exists()]
    page, pointer = render(done)
    for path, body in ((PAGE, page), (ROOT / "README.md", pointer)):
        head, rest = path.read_text().split(START, 1)
        path.write_text(f"{head}{START}\n{body}\n{END}{rest.split(END, 1)[1]}")
    print(f"{PAGE.relative_to(ROOT)}: {len(done)} result sections written; README.md: its pointer")


def render(done: list[str]) -> tuple[str, str]:
    """What goes between the results markers of docs/results.md, and of README.md (a pointer to the page)."""
    records = [json.loads((ROOT / "results" / n / "run.json").read_text()) for n in done]
    minutes = sum(r["seconds"] for r in records) / 60
    when = sorted({f"commit {r.get('commit', 'unrecorded')} on {r.get('date', 'an unrecorded date')}" for r in records})
    ran = (f"`make results` ran these {len(done)} sweeps in {minutes:.0f} min on this project's 2-core "
           f"CPU machine, at {'; '.join(when)}.")
    note = shared_note(done)
    claims = claims_of(done)
    page = "\n".join([f"{ran} `python scripts/results.py --check` reruns every completed setting briefly to see "
                       "that none now fails (tests/test_results.py).\n",
                       *([f"In every Settings table below: {note}\n"] if note else []),
                       claims_table(claims), *[section(name, note) for name in done]])
    pointer = (f"[docs/results.md](docs/results.md), made by `make results` ({len(done)} sweeps) at {'; '.join(when)}: "
               f"{outcomes(claims)}.")
    return page, pointer


if __name__ == "__main__":
    main(sys.argv[1:])
