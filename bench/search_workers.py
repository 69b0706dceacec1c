"""Benchmark: an Optuna search of N trials by two workers on one study against one worker.

  one   `python train.py hparams_search=optuna data=digits trainer.max_epochs=E logger=none
        hydra.sweeper.n_trials=N hydra.sweeper.storage=journal://<tmp>/study.log`, torch with its default threads;
  two   the same command started twice at once on a new study in the same kind of file, each with `threads=1`
        (two processes side by side on this machine's cores), each in its own sweep folder.

Measured: wall time from the first start to the last exit. Checked: the study holds N trials, all completed,
no parameter set drawn twice, and the two workers' folders together hold trials 0..N-1 once each.

Run:   .venv/bin/python bench/search_workers.py [--trials 20] [--epochs 1]
Ends with `ratio search_two_workers_vs_one <x>` (two over one).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONWARNINGS": "ignore", "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}


def search(tmp: Path, workers: int, trials: int, epochs: int) -> float:
    storage = f"journal://{tmp / 'study.log'}"
    command = [sys.executable, "train.py", "hparams_search=optuna", "data=digits", f"trainer.max_epochs={epochs}",
               "logger=none", f"hydra.sweeper.n_trials={trials}", f"hydra.sweeper.storage={storage}",
               *(["threads=1"] if workers > 1 else [])]
    start = time.perf_counter()
    processes = [subprocess.Popen([*command, f"hydra.sweep.dir={tmp / f'worker{n}'}"], cwd=ROOT, env=ENV,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for n in range(workers)]
    for process in processes:
        _, stderr = process.communicate()
        if process.returncode:
            sys.exit(f"a worker failed (exit {process.returncode}):\n{stderr[-3000:]}")
    seconds = time.perf_counter() - start
    check(tmp, storage, workers, trials)
    return seconds


def check(tmp: Path, storage: str, workers: int, trials: int) -> None:
    from trainlab.run.search import open_storage

    study = optuna.load_study(study_name="trainlab", storage=open_storage(storage))
    states = {t.state.name for t in study.trials}
    distinct = {tuple(sorted(t.params.items())) for t in study.trials}
    folders = [[p for p in (tmp / f"worker{n}").glob("*_*") if p.is_dir() and p.name.split("_")[0].isdigit()]
               for n in range(workers)]
    numbers = sorted(int(p.name.split("_")[0]) for mine in folders for p in mine)
    per_worker = [len(mine) for mine in folders]
    print(f"  {workers} worker(s): {len(study.trials)} trials {sorted(states)}, {len(distinct)} distinct, "
          f"trials per worker {per_worker}")
    if len(study.trials) != trials or states != {"COMPLETE"} or len(distinct) != trials or numbers != list(range(trials)):
        sys.exit("the study is not what the search should have left")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    seconds = {}
    for workers in (1, 2):
        with tempfile.TemporaryDirectory(prefix="bench_search_") as tmp:
            seconds[workers] = search(Path(tmp), workers, args.trials, args.epochs)
        print(f"{workers} worker(s): {seconds[workers]:.1f} s for {args.trials} trials")
    print(f"ratio search_two_workers_vs_one {seconds[2] / seconds[1]:.2f}")


if __name__ == "__main__":
    main()
