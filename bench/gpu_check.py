"""Device check, not a test (it needs a CUDA GPU): every precision through the real pipeline on a GPU.

For MNIST (model=hourglass) and BBC News (model=text_bow, model=text_embed), each of the six precisions
runs `trainlab.run.pipeline.train_and_test` with trainer=gpu for a few epochs and reports: whether it completed,
best val acc, test acc, seconds per epoch (wall time / epochs, start-up included), the measured peak
GPU memory against trainlab's estimate, and whether the data splits were moved onto the GPU.

Run:   python bench/gpu_check.py [--epochs 3] [--json results.json]
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src")]  # trainlab, installed or not
os.environ.update(HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1", WANDB_MODE="offline")

import torch  # noqa: E402

from trainlab.nn.data import InMemoryDataModule  # noqa: E402
from trainlab.nn.precision import PRECISIONS  # noqa: E402
from trainlab.run.build import compose_config  # noqa: E402
from trainlab.run.pipeline import train_and_test  # noqa: E402

SETTINGS = (("mnist", "hourglass"), ("bbc_news", "text_bow"), ("bbc_news", "text_embed"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("error: no CUDA GPU here; this check needs one")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    placed: list[bool] = []
    place_on = InMemoryDataModule.place_on

    def recording(self, device, budget):  # where the splits ended up, as the pipeline decided it
        placed.append(place_on(self, device, budget))
        return placed[-1]

    InMemoryDataModule.place_on = recording
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}")
    rows = []
    for data, model in SETTINGS:
        for precision in PRECISIONS:
            placed.clear()
            torch.cuda.reset_peak_memory_stats()
            overrides = [f"data={data}", f"model={model}", "trainer=gpu", f"precision={precision}",
                         f"trainer.max_epochs={args.epochs}", "logger=none", "callbacks.progress_bar.refresh_rate=0"]
            started = time.perf_counter()
            try:
                summary = train_and_test(compose_config(*overrides, output_dir=tempfile.mkdtemp()))
                row = {"status": summary["status"], "val_acc": summary["best"].get("val/acc"),
                       "test_acc": summary["test"].get("test/acc"),
                       "s_per_epoch": summary["wall_time_s"] / max(summary["epochs_run"], 1),
                       "peak_mb": summary["memory"].get("measured_peak_mb"),
                       "estimate_mb": summary["memory"]["total_mb"]}
            except Exception as error:  # a precision that fails is a finding, not the end of the check
                row = {"status": f"failed: {type(error).__name__}: {str(error).splitlines()[0][:120]}"}
            row |= {"data": data, "model": model, "precision": precision, "data_on_gpu": any(placed),
                    "seconds": round(time.perf_counter() - started, 1)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
