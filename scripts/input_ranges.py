"""What each `data.scaler` makes of a data set's features, split by split: inspect the inputs before the curves.

    python scripts/input_ranges.py                       # MNIST, every scaler, split seeds 0-4
    python scripts/input_ranges.py data=digits --split-seeds 0

Prints, per scaler and split, the largest |feature| and how many rows hold a feature with |value| > 10
(trainlab.nn.data.FAR_OUTSIDE) that training never showed for that feature (ArrayDataModule.rows_far_outside).
docs/configuration.md's `data` row quotes it.
"""
from __future__ import annotations

import argparse
import os

from hydra.utils import instantiate

from trainlab.nn.data import SCALERS
from trainlab.run.build import compose_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. data=digits")
    parser.add_argument("--split-seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = parser.parse_args()
    os.environ.setdefault("TRAINLAB_CACHE", "")
    print(f"{'scaler':<21} {'split seed':>10} {'train max|x|':>12} " + " ".join(
        f"{s + ' max|x|':>12} {s + ' rows far out':>16}" for s in ("val", "test")))
    variants = {**{name: [f"data.scaler={name}"] for name in SCALERS},
                "standard, max_z=null": ["data.scaler=standard", "data.max_z=null"]}  # the z-scores unclipped
    for scaler, scaler_overrides in variants.items():
        for split_seed in args.split_seeds:
            cfg = compose_config(*args.overrides, *scaler_overrides, f"data.split_seed={split_seed}",
                                 output_dir="outputs")
            dm = instantiate(cfg.data, shuffle_seed=0)
            cells = [f"{dm.splits['train'][0].abs().max().item():>12.1f}"]
            for split in ("val", "test"):
                x = dm.splits[split][0]
                cells.append(f"{x.abs().max().item():>12.1f} {f'{dm.rows_far_outside(split)} / {len(x)}':>16}")
            print(f"{scaler:<21} {split_seed:>10} " + " ".join(cells))


if __name__ == "__main__":
    main()
