"""Benchmark: the act_optim sweep with Hydra's joblib launcher against the basic (sequential) launcher.

  basic     `python train.py experiment=act_optim logger=none hydra.sweep.dir=<tmp>`: the 9 jobs
            (sigmoid/tanh/relu x sgd/rmsprop/adam, MNIST, batch 32) one after another in one process,
            torch with its default threads;
  joblib    the same plus `hydra/launcher=joblib hydra.launcher.n_jobs=2`: two worker processes, and
            trainlab sets one torch thread per job.

Measured: wall time of the whole `python train.py` process (start-up, every job, the sweep report).
Runs are interleaved (basic, joblib, basic, ...) and medians taken. Each sweep's summary.json files are
checked: every job completed, and the torch threads each used.

Run:   .venv/bin/python bench/sweep.py                 (the full grid, 10 epochs, 2 repeats)
       .venv/bin/python bench/sweep.py --quick         (--small --epochs 2, 1 repeat)
Options: --epochs N (trainer.max_epochs=N; default the experiment's 10), --small (activation=sigmoid,relu
optim=sgd,adam: 4 jobs), --repeats N, --jobs N (joblib workers, default 2).
Ends with `ratio sweep_joblib_vs_basic <x>` (joblib over basic; target <= 0.625 on 2 cores).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONWARNINGS": "ignore", "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}


def sweep(launcher: str, overrides: list[str], jobs: int) -> dict:
    """One whole sweep in its own process; its wall time and what its jobs' summary.json files say."""
    with tempfile.TemporaryDirectory(prefix="bench_sweep_") as tmp:
        extra = ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={jobs}"] if launcher == "joblib" else []
        command = [sys.executable, "train.py", "experiment=act_optim", "logger=none", f"hydra.sweep.dir={tmp}/sweep",
                   *overrides, *extra]
        start = time.perf_counter()
        out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=ENV)
        seconds = time.perf_counter() - start
        summaries = [json.loads(p.read_text()) for p in sorted(Path(tmp, "sweep").glob("*/summary.json"))]
    if out.returncode:
        sys.exit(f"the {launcher} sweep failed (exit {out.returncode}):\n{' '.join(command)}\n{out.stderr[-3000:]}")
    completed = [s for s in summaries if s.get("status") == "completed"]
    return {"seconds": seconds, "jobs": len(summaries), "completed": len(completed),
            "threads": sorted({s.get("threads") for s in completed}),
            "job_seconds": sum(s["wall_time_s"] for s in completed),
            "val_acc": {job_name(s): s["final"].get("val/acc") for s in completed}}


def job_name(summary: dict) -> str:
    return " ".join(o for o in summary["overrides"] if o.startswith(("activation=", "optim=")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="--small --epochs 2, one repeat")
    parser.add_argument("--epochs", type=int, help="trainer.max_epochs (default: the experiment's 10)")
    parser.add_argument("--small", action="store_true", help="activation=sigmoid,relu optim=sgd,adam (4 jobs)")
    parser.add_argument("--repeats", type=int, help="interleaved repeats of each launcher (default 2, --quick 1)")
    parser.add_argument("--jobs", type=int, default=2, help="joblib worker processes (default 2)")
    args = parser.parse_args()
    epochs = args.epochs or (2 if args.quick else None)
    repeats = args.repeats or (1 if args.quick else 2)
    overrides = [f"trainer.max_epochs={epochs}"] if epochs else []
    if args.small or args.quick:
        overrides += ["activation=sigmoid,relu", "optim=sgd,adam"]

    load_before = os.getloadavg()
    print(f"act_optim sweep {' '.join(overrides) or '(full grid, 10 epochs)'}; {repeats} interleaved repeats; "
          f"joblib n_jobs={args.jobs}; {os.cpu_count()} cpus; load average {load_before[0]:.2f}", flush=True)
    results: dict[str, list[dict]] = {"basic": [], "joblib": []}
    for repeat in range(repeats):
        for launcher in results:
            result = sweep(launcher, overrides, args.jobs)
            results[launcher].append(result)
            print(f"  repeat {repeat + 1} {launcher:6s}: {result['seconds']:.1f} s, {result['completed']}/"
                  f"{result['jobs']} jobs completed, torch threads {result['threads']}, "
                  f"sum of the jobs' own wall times {result['job_seconds']:.1f} s", flush=True)
    load_after = os.getloadavg()

    medians = {launcher: statistics.median(r["seconds"] for r in runs) for launcher, runs in results.items()}
    print("\nmedian wall time of the whole sweep:")
    for launcher, seconds in medians.items():
        print(f"  {launcher:6s} {seconds:.2f} s")
    print("final val acc per job (last repeat), basic / joblib:")
    for name, acc in results["basic"][-1]["val_acc"].items():
        print(f"  {name:36s} {acc:.4f} / {results['joblib'][-1]['val_acc'].get(name, float('nan')):.4f}")
    print(f"load average: {load_before[0]:.2f} at start, {load_after[0]:.2f} at end "
          f"(1/5/15 min at end: {', '.join(f'{v:.2f}' for v in load_after)})")
    print(f"ratio sweep_joblib_vs_basic {medians['joblib'] / medians['basic']:.3f}")


if __name__ == "__main__":
    main()
