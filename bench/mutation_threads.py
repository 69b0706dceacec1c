"""Benchmark: two test processes side by side, as `make mutation`'s two workers run, with one torch thread each
against torch's default threads.

  default   `pytest <tests>` started twice at once, torch with its default thread pool in each;
  one       the same with OMP_NUM_THREADS=1 in both (what `make mutation` sets).

Measured: wall time from the first start to the last exit. Repeats interleave the two sides (default, one, ...);
the ratio pairs each repeat's two, with its 95% interval over repeats (bench/paired.py).

Run:   .venv/bin/python bench/mutation_threads.py [--repeats 3] [--tests <pytest arguments>]
Ends with `ratio mutation_one_thread_vs_default <x>` (lower is better; target <= 0.8).
"""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # bench.paired, run as a script
ENV = {**os.environ, "PYTHONWARNINGS": "ignore", "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1",
       "WANDB_MODE": "offline"}
TESTS = "tests/test_train.py -m 'not full' -k 'scheduler or precision'"  # trainings, about 30 s alone


def side_by_side(tests: str, threads: dict[str, str]) -> float:
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *shlex.split(tests)]
    start = time.perf_counter()
    processes = [subprocess.Popen(command, cwd=ROOT, env={**ENV, **threads}, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    for process in processes:
        out, _ = process.communicate()
        if process.returncode != 0:
            sys.exit(f"the tests failed:\n{out[-2000:]}")
    return time.perf_counter() - start


def main() -> None:
    from bench.paired import paired_ratio

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tests", default=TESTS, help=f"pytest arguments (default: {TESTS})")
    args = parser.parse_args()
    default, one = [], []
    for repeat in range(args.repeats):
        default.append(side_by_side(args.tests, {}))
        one.append(side_by_side(args.tests, {"OMP_NUM_THREADS": "1"}))
        print(f"repeat {repeat + 1}: default threads {default[-1]:.1f} s, one thread {one[-1]:.1f} s")
    ratio = paired_ratio(one, default)
    print(ratio.text(target=0.8))
    print(f"ratio mutation_one_thread_vs_default {ratio.ratio:.2f}")


if __name__ == "__main__":
    main()
