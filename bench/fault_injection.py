"""Fault injection: SIGKILL training runs at random points, resume each, compare with an uninterrupted run.

    .venv/bin/python bench/fault_injection.py [--kills 10] [--seed 0]

Every kill lands at a random (epoch, batch) of a 4-epoch run on the embedded digits; the killed run is
resumed with `python train.py resume=<run folder>` and must end with exactly the final and test
metrics of the uninterrupted run. Prints one line per kill and `survived N/M`.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN = ["data=digits", "trainer.max_epochs=4", "logger=none", "callbacks.progress_bar.refresh_rate=0"]
BATCHES_PER_EPOCH = 20  # 1,257 training digits at batch 64


def train(*overrides: str) -> subprocess.CompletedProcess:
    # tests/ holds the SignalAt callback the kills use.
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests"), "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *overrides], cwd=ROOT, env=env,
                          capture_output=True, text=True)


def metrics(folder: Path) -> tuple[dict, dict]:
    summary = json.loads((folder / "summary.json").read_text())
    return summary["final"], summary["test"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        assert train(*RUN, f"hydra.run.dir={tmp / 'whole'}").returncode == 0
        expected = metrics(tmp / "whole")
        survived = 0
        for kill in range(args.kills):
            epoch, batch = rng.randrange(4), rng.randrange(BATCHES_PER_EPOCH)
            run = tmp / f"kill{kill}"
            signal = (f"+callbacks.signal={{_target_: killer.SignalAt, epoch: {epoch}, batch: {batch}, "
                      f"marker: '{run}.signalled'}}")
            killed = train(*RUN, signal, f"hydra.run.dir={run}")
            if (run / "checkpoints" / "last.ckpt").exists():
                resumed = train(f"resume={run}", f"hydra.run.dir={run}_resume_log")
            else:  # killed in the first epoch: nothing to resume, the documented answer is to start anew
                resumed = train(*RUN, signal, f"hydra.run.dir={run}")
            same = resumed.returncode == 0 and metrics(run) == expected
            survived += same
            print(f"kill {kill}: SIGKILL at epoch {epoch} batch {batch} (exit {killed.returncode}) -> "
                  f"{'same final and test metrics' if same else 'DIFFERENT: ' + resumed.stderr[-300:]}")
        print(f"survived {survived}/{args.kills}")


if __name__ == "__main__":
    main()
