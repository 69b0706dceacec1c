"""Runs every shipped experiment on the embedded data and writes README's "Results" section.

    make results        # or: python scripts/results.py [experiment ...]

Sweeps run into outputs/results/<experiment>/ (git-ignored, with checkpoints and logs); each
sweep's report.md and plots are copied to results/<experiment>/ (committed), and the tables of
every experiment there are spliced into README.md between the results markers, so rerunning one
experiment keeps the others. Nothing in that section is typed by hand.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- results:start -->", "<!-- results:end -->"
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
    "scaling": ([], "z-score vs min-max vs raw pixels, with SGD and Adam"),
    "precision": ([], "32-true vs bf16-mixed vs 16-mixed (runs as bf16-mixed on a CPU): accuracy and time "
                      "(a run's time includes loading the data, which the first job of a sweep parses from csv)"),
    "imdb_overfit": (["data=bbc_news"], "the notes' IMDB overfitting recipe on the embedded BBC News"),
}


def run(name: str, overrides: list[str]) -> Path:
    sweep = ROOT / "outputs" / "results" / name
    shutil.rmtree(sweep, ignore_errors=True)
    command = [sys.executable, str(ROOT / "train.py"), "-m", f"experiment={name}", *overrides, "logger=csv",
               "callbacks.progress_bar.refresh_rate=0", f"hydra.sweep.dir={sweep}"]
    print("$", " ".join(command[1:]), flush=True)
    # A sweep with a failed job exits 1 after its report; the report says which and why.
    subprocess.run(command, cwd=ROOT, check=False, stdout=subprocess.DEVNULL)
    return sweep


def collect(name: str, sweep: Path) -> None:
    """The sweep's table (without the report's title) and plots, copied to results/<name>/."""
    target = ROOT / "results" / name
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for plot in ("curves.png", "bias_variance.png"):
        if (sweep / plot).exists():
            shutil.copy(sweep / plot, target / plot)
    table = (sweep / "report.md").read_text().split("\n", 2)[2].strip()
    (target / "report.md").write_text(table + "\n")


def section(name: str) -> str:
    target = ROOT / "results" / name
    table = (target / "report.md").read_text().strip()
    images = "".join(f"\n\n![{name} {p.stem}](results/{name}/{p.name})" for p in sorted(target.glob("*.png")))
    overrides, guide = EXPERIMENTS[name]
    command = " ".join(["python train.py", *(["-m"] if name == "imdb_overfit" else []), f"experiment={name}", *overrides])
    return f"### {name}\n\n{guide}. `{command}`\n\n{table}{images}\n"


def main(names: list[str]) -> None:
    unknown = set(names) - set(EXPERIMENTS)
    if unknown:
        sys.exit(f"error: unknown experiment(s) {sorted(unknown)}; choose from {list(EXPERIMENTS)}")
    for name in names or EXPERIMENTS:
        sweep = run(name, EXPERIMENTS[name][0])
        if (sweep / "report.md").exists():
            collect(name, sweep)
    # Every experiment with results in results/ goes into README, whether run now or earlier.
    sections = [section(name) for name in EXPERIMENTS if (ROOT / "results" / name / "report.md").exists()]
    readme = (ROOT / "README.md").read_text()
    head, rest = readme.split(START, 1)
    tail = rest.split(END, 1)[1]
    body = "\n".join(sections)
    (ROOT / "README.md").write_text(f"{head}{START}\n{body}\n{END}{tail}")
    print(f"README.md: {len(sections)} result sections written")


if __name__ == "__main__":
    main(sys.argv[1:])
