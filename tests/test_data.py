"""Splits, scaling without leakage, and the in-memory batch path."""
from __future__ import annotations

import gzip
import logging
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from trainlab.errors import ConfigError
from trainlab.nn.data import ArrayDataModule, InMemoryDataModule, TensorBatches, load_mnist_5k, read_csv_cached
from trainlab.run.build import build_datamodule

from conftest import ROOT, make_cfg


def datamodule(tmp_path, *overrides):
    return instantiate(make_cfg(tmp_path, *overrides).data, shuffle_seed=0)


def test_mnist_is_the_embedded_5k_sample(tmp_path):
    dm = datamodule(tmp_path)
    assert (dm.num_features, dm.num_classes) == (784, 10)
    assert sum(len(y) for _, y in dm.splits.values()) == 5000
    assert [len(dm.splits[s][1]) for s in ("train", "val", "test")] == [4000, 500, 500]


def write_csv_gz(path, table):
    path.write_bytes(gzip.compress("\n".join(",".join(f"{v:g}" for v in row) for row in table).encode()))
    return path


def test_cached_csv_is_the_parsed_table_and_needs_no_pandas(tmp_path, monkeypatch):
    table = np.array([[0, 255, 3], [7.5, 1, 9]], dtype=np.float32)
    source, cache = write_csv_gz(tmp_path / "t.csv.gz", table), tmp_path / "cache"
    np.testing.assert_array_equal(read_csv_cached(source, str(cache)), table)
    assert len(list(cache.glob("t.csv.gz-*.npz"))) == 1
    monkeypatch.setitem(sys.modules, "pandas", None)  # `import pandas` now fails: a hit must not parse
    hit = read_csv_cached(source, str(cache))
    assert hit.dtype == np.float32 and np.array_equal(hit, table)


def test_a_changed_source_is_parsed_again(tmp_path):
    source, cache = write_csv_gz(tmp_path / "t.csv.gz", [[1, 2]]), str(tmp_path / "cache")
    read_csv_cached(source, cache)
    write_csv_gz(source, [[3, 4]])
    np.testing.assert_array_equal(read_csv_cached(source, cache), [[3, 4]])
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2


def test_a_torn_cache_entry_is_parsed_again_and_rewritten(tmp_path, caplog):
    source, cache = write_csv_gz(tmp_path / "t.csv.gz", [[1, 2]]), tmp_path / "cache"
    read_csv_cached(source, str(cache))
    entry = next(cache.glob("*.npz"))
    entry.write_bytes(entry.read_bytes()[:20])
    with caplog.at_level(logging.WARNING, logger="trainlab.nn.data"):
        np.testing.assert_array_equal(read_csv_cached(source, str(cache)), [[1, 2]])
    assert "unreadable" in caplog.text
    np.testing.assert_array_equal(np.load(entry)["table"], [[1, 2]])


def test_a_cache_that_cannot_be_written_only_warns(tmp_path, caplog):
    source, blocker = write_csv_gz(tmp_path / "t.csv.gz", [[1, 2]]), tmp_path / "file"
    blocker.write_text("a file where the cache folder would go")
    with caplog.at_level(logging.WARNING, logger="trainlab.nn.data"):
        np.testing.assert_array_equal(read_csv_cached(source, str(blocker / "cache")), [[1, 2]])
    assert "could not write cache entry" in caplog.text


def test_mnist_from_the_cache_equals_mnist_parsed(tmp_path):
    load_mnist_5k.cache_clear()
    parsed = load_mnist_5k(None)
    load_mnist_5k(str(tmp_path))  # writes the entry
    load_mnist_5k.cache_clear()
    cached = load_mnist_5k(str(tmp_path))
    assert all(np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(parsed, cached, strict=True))


def cached_digits(tmp_path, *overrides):
    return datamodule(tmp_path, "data=digits", f"+data.cache_dir={tmp_path / 'cache'}", *overrides)


@pytest.mark.parametrize("scaler", ["standard", "minmax", "none"])
def test_splits_from_the_cache_equal_splits_made_afresh(tmp_path, scaler):
    fresh = datamodule(tmp_path, "data=digits", f"data.scaler={scaler}")
    made, hit = (cached_digits(tmp_path, f"data.scaler={scaler}") for _ in range(2))
    assert len(list((tmp_path / "cache").glob("splits-*.npz"))) == 1
    for dm in (made, hit):
        assert all(torch.equal(dm.splits[s][i], fresh.splits[s][i]) for s in ("train", "val", "test") for i in (0, 1))
    assert "scaler" not in vars(hit)  # not fitted until asked for
    if scaler != "none":  # made again from the data, it is the same fit: a user's file is encoded alike
        np.testing.assert_array_equal(hit.scaler.transform(np.eye(64)), fresh.scaler.transform(np.eye(64)))
    else:
        assert hit.scaler is None


@pytest.mark.parametrize("override", ["data.split_seed=1", "data.val_fraction=0.2", "data.scaler=minmax"])
def test_every_option_of_the_splits_has_its_own_cache_entry(tmp_path, override):
    cached_digits(tmp_path)
    other = cached_digits(tmp_path, override)
    assert len(list((tmp_path / "cache").glob("splits-*.npz"))) == 2
    assert not torch.equal(other.splits["val"][0], datamodule(tmp_path, "data=digits").splits["val"][0])


def test_changed_data_gets_its_own_cache_entry(tmp_path):
    x, y = np.random.default_rng(0).normal(size=(60, 3)), np.arange(60) % 2
    first = ArrayDataModule(lambda: (x, y), cache_dir=str(tmp_path), val_fraction=0.2, test_fraction=0.2)
    x[0, 0] += 1
    second = ArrayDataModule(lambda: (x, y), cache_dir=str(tmp_path), val_fraction=0.2, test_fraction=0.2)
    assert len(list(tmp_path.glob("splits-*.npz"))) == 2
    assert not all(torch.equal(first.splits[s][0], second.splits[s][0]) for s in ("train", "val", "test"))


def test_a_run_on_cached_mnist_never_imports_sklearn_or_pandas(tmp_path):
    # What start-up on the default data saves: their imports, a large share of it (docs/performance.md).
    code = ("import sys; from hydra.utils import instantiate; from omegaconf import OmegaConf; "
            "from trainlab import CONF; from trainlab.run.pipeline import train_and_test; "
            f"cfg = OmegaConf.load(CONF / 'data/mnist.yaml'); cfg.cache_dir = {str(tmp_path)!r}; cfg.split_seed = 0; "
            "instantiate(cfg); "
            "print(sorted({'sklearn', 'pandas'} & set(sys.modules)))")
    runs = [subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
            for _ in range(2)]
    assert [run.stdout.strip() for run in runs] == ["['pandas', 'sklearn']", "[]"], runs[-1].stderr[-2000:]


def test_digits_sizes_are_read_from_data(tmp_path):
    dm = datamodule(tmp_path, "data=digits")
    assert (dm.num_features, dm.num_classes) == (64, 10)


def test_standard_scaler_is_fitted_on_train_only(tmp_path):
    dm = datamodule(tmp_path, "data=digits", "data.scaler=standard", "data.max_z=null")
    train_x, val_x = dm.splits["train"][0], dm.splits["val"][0]
    varying = train_x.std(0) > 0
    torch.testing.assert_close(train_x.mean(0), torch.zeros(64), atol=1e-5, rtol=0)
    torch.testing.assert_close(train_x[:, varying].std(0, unbiased=False), torch.ones(int(varying.sum())), atol=1e-4, rtol=0)
    # Had val/test statistics leaked into the fit, val would be centred too.
    assert val_x.mean(0).abs().max() > 0.05


def near_constant_feature(rows: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """Two ordinary features and one that is 0 but in a single row (200): a border pixel inked once."""
    x = np.random.default_rng(0).normal(size=(rows, 3))
    x[:, 2] = 0.0
    x[7, 2] = 200.0
    return x, np.arange(rows) % 3


@pytest.mark.parametrize(("max_z", "largest"), [(5.0, 5.0), (None, 200.0)])
def test_standard_scores_are_clipped_at_max_z(max_z, largest):
    dm = ArrayDataModule(near_constant_feature, scaler="standard", max_z=max_z)
    # Row 7 is held out: the feature is constant in training (scale 1), so its 200 becomes a z of 200.
    assert 7 not in dm.train_rows
    assert max(dm.splits[s][0].abs().max().item() for s in ("train", "val", "test")) == largest


def test_global_scaler_is_one_mean_and_std_of_the_training_values(tmp_path):
    dm = datamodule(tmp_path, "data=digits")  # the default for images
    raw = datamodule(tmp_path, "data=digits", "data.scaler=none").splits
    mean, std = raw["train"][0].double().mean(), raw["train"][0].double().std(unbiased=False)
    for split in ("train", "val", "test"):  # the same affine map for every feature and split: a reference
        torch.testing.assert_close(dm.splits[split][0].double(), (raw[split][0].double() - mean) / std, atol=1e-5, rtol=0)
    assert dm.splits["val"][0].mean().abs() > 1e-3  # fitted on train alone


@pytest.mark.parametrize("split_seed", [0, 1])
def test_mnist_inputs_stay_within_three_after_global_scaling(tmp_path, split_seed):
    # Per-pixel z-scores reached 432 (val) and 500 (test) on split seed 0: scripts/input_ranges.py.
    dm = datamodule(tmp_path, f"data.split_seed={split_seed}")
    assert max(dm.splits[s][0].abs().max().item() for s in ("train", "val", "test")) < 3.0


def test_far_outside_values_are_warned_once_naming_split_and_count(caplog):
    dm = ArrayDataModule(near_constant_feature, scaler="none", val_fraction=0.2, test_fraction=0.2)
    for split in ("train", "val", "test"):
        dm.splits[split][0][:, 2] = 0.0
    x = dm.splits["val"][0]
    x[:4, 2], x[4, 2] = 50.0, 9.0  # 4 rows far outside; one off the training range but within |10|: not counted
    caplog.clear()  # building it warned of row 7's 200, held out
    with caplog.at_level(logging.WARNING, logger="trainlab.nn.data"):
        dm.warn_far_outside()
    assert len(caplog.records) == 1
    assert "val: 4 of 60 rows" in caplog.text and "test:" not in caplog.text and "data.scaler=none" in caplog.text


def test_no_warning_on_default_mnist(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="trainlab.nn.data"):
        datamodule(tmp_path)
    assert "beyond any training value" not in caplog.text


def test_minmax_and_none_scalers(tmp_path):
    splits = datamodule(tmp_path, "data=digits", "data.scaler=minmax").splits
    assert splits["train"][0].min() == 0 and splits["train"][0].max() == 1
    assert all(splits[s][0].min() >= 0 and splits[s][0].max() <= 1 for s in ("val", "test"))  # clipped there
    raw = datamodule(tmp_path, "data=digits", "data.scaler=none").splits["train"][0]
    assert raw.max() == 16  # load_digits pixels are 0..16


def test_each_seed_draws_its_own_split_unless_split_seed_is_given(tmp_path):
    # Built as a run builds it: a replicate is a (seed, split) pair, so replicates vary the evaluation set too.
    a, b, c, d = (build_datamodule(make_cfg(tmp_path, "data=digits", *seeds)).splits
                  for seeds in (["seed=1"], ["seed=2"], ["seed=1", "data.split_seed=0"], ["seed=2", "data.split_seed=0"]))
    assert not torch.equal(a["val"][0], b["val"][0])
    assert all(torch.equal(c[split][0], d[split][0]) for split in ("train", "val", "test"))  # fixed for a quick look
    assert make_cfg(tmp_path, "seed=7").data.split_seed == 7


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_ddp_ranks_get_disjoint_shards_that_cover_the_split(tmp_path, split):
    dm = datamodule(tmp_path, "data=digits")
    shards = []
    for rank in range(2):
        dm.trainer = SimpleNamespace(world_size=2, global_rank=rank, overfit_batches=0)
        loader = {"train": dm.train_dataloader, "test": dm.test_dataloader}.get(split, lambda: dm.val_dataloader()[0])()
        assert sum(len(y) for _, y in loader) == len(loader.rows)  # the rank's batches are its shard's rows
        shards.append(loader.rows.tolist())
    assert not set(shards[0]) & set(shards[1])
    assert sorted(shards[0] + shards[1]) == list(range(len(dm.splits[split][1])))
    assert abs(len(shards[0]) - len(shards[1])) <= 1


def test_batches_cover_each_sample_once_per_epoch():
    x, y = torch.arange(10).float()[:, None], torch.arange(10)
    batches = TensorBatches(x, y, batch_size=4, shuffle=True, seed=3)
    assert len(batches) == 3
    epochs = []
    for epoch in range(2):
        batches.set_epoch(epoch)  # as Lightning does before every epoch
        epochs.append(torch.cat([yb for _, yb in batches]))
    for order in epochs:
        assert sorted(order.tolist()) == list(range(10))
    assert not torch.equal(epochs[0], epochs[1])  # reshuffled every epoch
    again = TensorBatches(x, y, batch_size=4, shuffle=True, seed=3)
    again.set_epoch(1)
    assert torch.equal(torch.cat([yb for _, yb in again]), epochs[1])  # same seed and epoch, same order
    for xb, yb in batches:
        assert torch.equal(xb[:, 0].long(), yb)  # features stay with their labels


@pytest.mark.parametrize(("x", "y", "kwargs", "key"), [
    (np.array([[np.nan, 1.0]] * 20), np.arange(20) % 2, {}, "NaN"),
    (np.ones((20, 2)), np.array([0.5] * 20), {}, "labels"),
    (np.ones((20, 2)), np.arange(20) % 2, {"val_fraction": 0.0}, "data.val_fraction"),
    (np.ones((20, 2)), np.arange(20) % 2, {"val_fraction": 0.6, "test_fraction": 0.5}, "data.val_fraction"),
])
def test_bad_data_is_a_clear_error(x, y, kwargs, key):
    with pytest.raises(ConfigError, match=key):
        ArrayDataModule(lambda: (x, y), **kwargs)


def test_batches_equal_the_reference_dataloader_with_a_seeded_random_sampler():
    from torch.utils.data import DataLoader, RandomSampler, TensorDataset

    x, y = torch.randn(103, 5), torch.randint(0, 3, (103,))
    fast = TensorBatches(x, y, batch_size=16, shuffle=True, seed=7)
    for epoch in range(3):
        fast.set_epoch(epoch)
        dataset = TensorDataset(x, y)
        reference = DataLoader(dataset, batch_size=16,
                               sampler=RandomSampler(dataset, generator=torch.Generator().manual_seed(7 + epoch)))
        pairs = list(zip(fast, reference, strict=True))
        assert len(pairs) == 7  # the last batch is the 7 left over, as in the DataLoader
        for (xb, yb), (xr, yr) in pairs:
            assert torch.equal(xb, xr) and torch.equal(yb, yr)


def test_splits_move_to_the_training_device_when_they_fit_and_batches_are_sliced_there(tmp_path):
    # "meta" stands in for a GPU: tensors with a device of their own and no data.
    dm = datamodule(tmp_path, "data=digits")
    assert not dm.place_on(torch.device("meta"), budget=1000)  # too big for the budget: stays on the host
    assert dm.splits["train"][0].device.type == "cpu"
    assert dm.place_on(torch.device("meta"), budget=10**9)
    xb, yb = next(iter(dm.train_dataloader()))
    assert xb.device.type == yb.device.type == "meta" and xb.shape == (64, 64)
    text = instantiate(make_cfg(tmp_path, "data=bbc_news", "model=text_bow").data, shuffle_seed=0,
                       inputs="multi_hot", num_words=100)
    assert not text.place_on(torch.device("meta"), budget=10**9)  # sparse word rows stay in host memory


TWO_CLASSES = (np.ones((20, 2)), np.arange(20) % 2)


@pytest.mark.parametrize(("x", "y", "options", "message"), [
    (np.array([[np.nan, 1.0, 2.0], [np.inf, 2.0, 3.0]] * 10), np.arange(20) % 2, {},  # 20 bad of 60
     "data: the features contain 20 NaN/inf values; clean or impute them"),
    (np.ones((20, 2)), np.arange(20) % 2 - 1, {}, "data: labels must be integer class ids 0..K-1"),
    (*TWO_CLASSES, {"val_fraction": 0.5, "test_fraction": 0.5},
     "data.val_fraction: val_fraction + test_fraction must leave a training split"),
    (*TWO_CLASSES, {"val_fraction": 0.0}, "data.val_fraction: with 20 samples of 2 classes, val_fraction=0.0 and "
     "test_fraction=0.1 leave a split with fewer samples than classes (or empty); make the fractions larger"),
])
def test_bad_data_messages_in_full(x, y, options, message):
    with pytest.raises(ConfigError) as error:
        ArrayDataModule(lambda: (x, y), **options)
    assert str(error.value) == message


@pytest.mark.parametrize("empty", ["train", "val", "test"])
def test_an_empty_split_names_its_fraction(empty):
    class GivenSplits(InMemoryDataModule):  # data that comes already split, as a Hub dataset does
        def prepare_splits(self):
            x, y = torch.ones(3, 2), torch.arange(3)
            self.splits = {name: (x[:0], y[:0]) if name == empty else (x[:1], y[:1]) for name in ("train", "val", "test")}

    with pytest.raises(ConfigError) as error:
        GivenSplits()
    assert str(error.value) == f"data.{empty}_fraction: the {empty} split is empty; make the fraction larger"


def test_split_and_batch_defaults():
    dm = ArrayDataModule(lambda: TWO_CLASSES)
    assert (dm.val_fraction, dm.test_fraction, dm.split_seed, dm.batch_size, dm.shuffle_seed) == (0.1, 0.1, 0, 128, 0)


def test_images_are_flattened_and_any_integer_labels_become_class_ids():
    x = np.arange(40 * 2 * 3, dtype=np.int16).reshape(40, 2, 3)
    dm = ArrayDataModule(lambda: (x, (np.arange(40) % 2).astype(np.int32)), scaler="none")
    features, labels = dm.splits["train"]
    assert features.dtype == torch.float32 and features.shape[1] == dm.num_features == 6
    assert labels.dtype == torch.long and dm.num_classes == 2
    rows, _ = dm.load()  # float32 rows before the split: no float64 copy of a user's data
    assert rows.dtype == np.float32 and rows.shape == (40, 6)


def test_array_data_is_standardised_on_the_training_split_by_default():
    rng = np.random.default_rng(0)
    dm = ArrayDataModule(lambda: (rng.normal(5.0, 3.0, size=(200, 3)), np.arange(200) % 2))
    train = dm.splits["train"][0]
    assert torch.allclose(train.mean(0), torch.zeros(3), atol=1e-5) and torch.allclose(train.std(0, unbiased=False),
                                                                                       torch.ones(3), atol=1e-4)


def test_array_data_for_a_text_model_names_the_text_data():
    with pytest.raises(ConfigError) as error:
        ArrayDataModule(lambda: (np.ones((20, 2)), np.arange(20) % 2), inputs="word_ids")
    assert str(error.value) == "model: model=text_* needs text data: data=bbc_news, imdb, rotten_tomatoes or text_files"


def test_splits_keep_each_class_in_proportion():
    labels = np.repeat(np.arange(10), 20)  # 20 of each class
    dm = ArrayDataModule(lambda: (np.random.default_rng(0).normal(size=(200, 2)), labels), val_fraction=0.1,
                         test_fraction=0.1)
    for name, size in (("train", 16), ("val", 2), ("test", 2)):
        assert torch.bincount(dm.splits[name][1], minlength=10).tolist() == [size] * 10
