"""Benchmark: how long `python train.py` takes to reach its first training step, against bare imports.

  trainlab   wall time from starting `python train.py data=mnist trainer.max_epochs=1 logger=none` (run
             folder in a temp dir, data cache filled by an earlier run as it is for every run but a machine's
             first; the cold start without a cache is timed too) to its first training step, detected by an added callback,
             `+callbacks.first_step={_target_: bench.startup.FirstStep, path: ...}`, which writes
             time.time() on on_train_batch_start and ends the process with os._exit(0);
  baseline   wall time from starting `python -c "import torch, lightning"` to the end of those imports
             (time.time() printed, then os._exit(0), so neither side pays for interpreter shutdown).

Runs are interleaved (baseline, trainlab, baseline, ...); the ratio pairs each run's two, with its 95% interval
over runs (bench/paired.py). Also timed: `python train.py
--help` and `python train.py --cfg job` (whole process), and whether either imports torch or lightning
(read from `python -X importtime`), and loading the embedded MNIST (`trainlab.nn.data.load_mnist_5k`, in a fresh
process, imports excluded), parsed and from the cache.

Run:   .venv/bin/python bench/startup.py            (7 runs of each)
       .venv/bin/python bench/startup.py --quick    (3 runs of each)
Ends with `ratio startup_first_step_vs_import <x>` (target <= 1.2; --help and --cfg job < 1 s, no torch;
MNIST loaded in <= 0.3 s).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # bench.paired, run as a script
ENV = {**os.environ, "PYTHONWARNINGS": "ignore", "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}


def __getattr__(name: str):
    """`bench.startup.FirstStep`, built on first use so that this script itself never imports lightning."""
    if name != "FirstStep":
        raise AttributeError(name)
    import lightning as L

    class FirstStep(L.Callback):
        """Writes the wall-clock time of the first training step to `path`, then ends the process."""

        def __init__(self, path: str):
            self.path = path

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            Path(self.path).write_text(repr(time.time()))
            os._exit(0)

    return FirstStep


def bare_imports() -> float:
    start = time.time()
    out = subprocess.run([sys.executable, "-c", "import torch, lightning, time, os; print(repr(time.time()), "
                          "flush=True); os._exit(0)"], capture_output=True, text=True, env=ENV, check=True)
    return float(out.stdout.strip()) - start


def first_step(cache: str) -> float:
    """`cache`: the data cache folder (TRAINLAB_CACHE), "" for none."""
    with tempfile.TemporaryDirectory(prefix="bench_startup_") as tmp:
        stamp = Path(tmp) / "first_step"
        start = time.time()
        out = subprocess.run([sys.executable, "train.py", "data=mnist", "trainer.max_epochs=1", "logger=none",
                              f"hydra.run.dir={tmp}/run", "+callbacks.first_step._target_=bench.startup.FirstStep",
                              f"+callbacks.first_step.path={stamp}"],
                             cwd=ROOT, capture_output=True, text=True, env={**ENV, "TRAINLAB_CACHE": cache})
        if out.returncode or not stamp.exists():
            sys.exit(f"train.py never reached a training step (exit {out.returncode}):\n{out.stderr[-2000:]}")
        return float(stamp.read_text()) - start


def mnist_load(cache: str | None) -> float:
    """Seconds `load_mnist_5k(cache)` takes in a fresh process (None: the CSV parse a cold start pays)."""
    out = subprocess.run([sys.executable, "-c", "import time, trainlab.nn.data as d; t = time.perf_counter(); "
                          f"d.load_mnist_5k({cache!r}); print(time.perf_counter() - t)"], capture_output=True, text=True,
                         env={**ENV, "PYTHONPATH": str(ROOT / "src")}, check=True)
    return float(out.stdout.strip())


def whole_process(*args: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "train.py", *args], cwd=ROOT, capture_output=True, env=ENV, check=True)
    return time.perf_counter() - start


def heavy_imports(*args: str) -> tuple[list[str], list[tuple[float, str]]]:
    """Which of torch/lightning/... a train.py call imports, and its slowest top-level imports (s)."""
    out = subprocess.run([sys.executable, "-X", "importtime", "train.py", *args], cwd=ROOT, capture_output=True,
                         text=True, env=ENV, check=True)
    rows = [m.groups() for m in re.finditer(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)", out.stderr)]
    top = sorted(((int(cum) / 1e6, name) for cum, indent, name in rows if len(indent) == 1), reverse=True)[:5]
    heavy = [n for _, _, n in rows if n in ("torch", "lightning", "pytorch_lightning", "torchmetrics", "sklearn",
                                            "matplotlib", "optuna", "wandb")]
    return heavy, top


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 runs of each instead of 7")
    parser.add_argument("--runs", type=int, help="runs of each (default 7, --quick 3)")
    args = parser.parse_args()
    runs = args.runs or (3 if args.quick else 7)
    load_before = os.getloadavg()
    print(f"{runs} interleaved runs of each; {os.cpu_count()} cpus; load average {load_before[0]:.2f}", flush=True)

    cache = tempfile.mkdtemp(prefix="bench_startup_cache_")
    whole_process("--help")  # warm the file cache and __pycache__ for both sides
    bare_imports()
    first_step(cache)  # fills the data cache, as any earlier run on this machine has
    times: dict[str, list[float]] = {"imports": [], "first_step": [], "cold_start": [], "help": [], "cfg_job": [],
                                     "mnist_parse": [], "mnist_cached": []}
    for i in range(runs):
        times["imports"].append(bare_imports())
        times["first_step"].append(first_step(cache))
        times["cold_start"].append(first_step(""))
        times["help"].append(whole_process("--help"))
        times["cfg_job"].append(whole_process("--cfg", "job"))
        times["mnist_parse"].append(mnist_load(None))
        times["mnist_cached"].append(mnist_load(cache))
        print(f"  run {i + 1}: " + "  ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()), flush=True)
    load_after = os.getloadavg()
    med = {k: statistics.median(v) for k, v in times.items()}

    print(f"\nmedian wall time over {runs} runs:")
    print(f"  python -c 'import torch, lightning'       {med['imports']:.3f} s  (baseline)")
    print(f"  train.py data=mnist ... to first step     {med['first_step']:.3f} s  (trainlab)"
          f"  -> {med['first_step'] - med['imports']:.3f} s beyond the imports")
    print(f"  the same without a data cache (cold)      {med['cold_start']:.3f} s"
          f"  -> {med['cold_start'] - med['imports']:.3f} s beyond the imports")
    for key, argv in (("help", ("--help",)), ("cfg_job", ("--cfg", "job"))):
        heavy, top = heavy_imports(*argv)
        verdict = "OK" if med[key] < 1 and not {"torch", "lightning"} & set(heavy) else "MISSED"
        print(f"  train.py {' '.join(argv):<33s}{med[key]:.3f} s  heavy imports: {', '.join(heavy) or 'none'}"
              f"  [{verdict}: < 1 s without torch]")
        print(f"      slowest top-level imports: {', '.join(f'{n} {s:.2f}s' for s, n in top)}")
    for key, how in (("mnist_parse", "parsed"), ("mnist_cached", "cached")):
        print(f"  load_mnist_5k(), {how}                   {med[key]:.3f} s  "
              f"[{'OK' if med[key] <= 0.3 else 'MISSED'}: <= 0.3 s]")
    print(f"load average: {load_before[0]:.2f} at start, {load_after[0]:.2f} at end "
          f"(1/5/15 min at end: {', '.join(f'{v:.2f}' for v in load_after)})")
    from bench.paired import paired_ratio  # not at the top: train.py's timed process imports this module

    estimate = paired_ratio(times["first_step"], times["imports"])
    print(f"info cold_start_vs_import {med['cold_start'] / med['imports']:.3f}")
    print(f"info startup_first_step_vs_import: {estimate.text(1.2)}; medians {med['first_step'] / med['imports']:.3f}")
    print(f"ratio startup_first_step_vs_import {estimate.ratio:.3f}")
    shutil.rmtree(cache)


if __name__ == "__main__":
    main()
