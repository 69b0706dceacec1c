"""Tests compose the real configs in src/trainlab/conf/ (no copies) and run them offline on the CPU."""
from __future__ import annotations

import csv
import os
import random
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import DictConfig

from trainlab.run.build import compose_config

ROOT = Path(__file__).resolve().parents[1]

# No data cache (trainlab/conf/data/mnist.yaml): every test makes its splits, as a mutated split must be seen to.
os.environ.update(HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1", WANDB_MODE="offline", TRAINLAB_CACHE="")


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test: offline must mean no network attempt at all."""
    def refuse(*args, **kwargs):
        raise AssertionError("tried the network while offline")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


QUIET = ("logger=none", "callbacks.progress_bar.refresh_rate=0")  # no logger files, no progress lines


def make_cfg(tmp_path: Path, *overrides: str) -> DictConfig:
    """The composed train config, writing into tmp_path, as `python train.py <overrides>` would."""
    return compose_config(*overrides, output_dir=tmp_path)


def run_cli(*args: str, cwd: Path = ROOT, timeout: int = 300) -> subprocess.CompletedProcess:
    """`python train.py <args>` in a subprocess, as a user would type it."""
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "PYTHONWARNINGS": "ignore"})


def fake_run(tmp_path, overrides: list[str], seed: int, val_acc: float, val_loss: float = 0.3,
             history: list[dict] | None = None, fingerprint: str = "same-samples", test_acc: float | None = None) -> dict:
    """A completed run as trainlab.study.report.load_runs returns it (test acc 0.01 below val acc unless given)."""
    test_acc = val_acc - 0.01 if test_acc is None else test_acc
    epoch = {"epoch": 0, "val/acc": val_acc, "val/loss": val_loss, "train/acc": min(1.0, val_acc + 0.02),
             "train/loss": val_loss / 2}
    history = history or [epoch]
    summary = {"status": "completed", "history": history, "best_epoch": history[-1]["epoch"],
               "evaluated": {"epoch": history[-1]["epoch"], "val_samples": 500, "test_samples": 500,
                             "fingerprint": fingerprint},
               "test": {"test/acc": test_acc}, "num_parameters": 100}
    folder = tmp_path / f"{'_'.join(overrides)}_{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    return {"name": folder.name, "dir": folder, "summary": summary, "overrides": [*overrides, f"seed={seed}"],
            "failed": False, "config": {"seed": seed, "data": {"split_seed": 0}}, "replicate": (seed, 0),
            "metrics": {**{k: v for k, v in history[-1].items() if k != "epoch"}, "test/acc": test_acc},
            "history": history}


@pytest.fixture
def cfg_factory(tmp_path):
    return lambda *overrides: make_cfg(tmp_path, *overrides)


POSITIVE = "great wonderful superb moving delightful brilliant charming".split()
NEGATIVE = "awful boring dull clumsy tedious weak dreadful".split()
NEUTRAL = "film plot actor scene story director music camera".split()


def review_texts(n: int, seed: int = 0) -> tuple[list[str], list[int]]:
    """Small made-up reviews with a learnable sentiment (1 = positive), in the IMDB schema."""
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n):
        label = i % 2
        words = rng.choices(NEUTRAL, k=8) + rng.choices(POSITIVE if label else NEGATIVE, k=3)
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append(label)
    return texts, labels


@pytest.fixture(scope="session")
def hub_like_dataset(tmp_path_factory) -> Path:
    """A local folder in the schema of the Hub's stanfordnlp/imdb: train/test parquet, text + ClassLabel."""
    from datasets import ClassLabel, Dataset, Features, Value

    root = tmp_path_factory.mktemp("imdb_like")
    features = Features({"text": Value("string"), "label": ClassLabel(names=["neg", "pos"])})
    for split, (n, seed) in {"train": (240, 0), "test": (80, 1)}.items():
        texts, labels = review_texts(n, seed)
        Dataset.from_dict({"text": texts, "label": labels}, features=features).to_parquet(str(root / f"{split}.parquet"))
    return root


@pytest.fixture(scope="session")
def reviews_csv(tmp_path_factory) -> Path:
    """The user's own csv with string labels in custom columns."""
    texts, labels = review_texts(200, seed=2)
    path = tmp_path_factory.mktemp("own") / "reviews.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["review", "stars"])
        writer.writerows((t, "good" if y else "bad") for t, y in zip(texts, labels, strict=True))
    return path


# Under `make mutation`: the test files of each mutated module whose tests are not (only) in tests/test_<module>.py.
OWN_TESTS = {"optim": ("test_train.py",), "module": ("test_module.py", "test_train.py"),
             "checkpoints": ("test_checkpoints.py", "test_loggers_callbacks.py"),
             "folding": ("test_loggers_callbacks.py",),
             "resume": ("test_resume.py", "test_cluster.py", "test_reliability.py"),
             "cli": ("test_cli.py", "test_habits.py", "test_own_net.py", "test_loggers_callbacks.py"),
             "summary": ("test_summary.py", "test_train.py"),
             "text": ("test_text_data.py", "test_text.py"),
             "diagnostics": ("test_diagnostic_hooks.py", "test_diagnostics.py"),
             "verdict": ("test_diagnostics.py",), "rules": ("test_schema.py",)}


def pytest_collection_modifyitems(items):
    """Under `make mutation`, the mutated module's own tests first, quickest first: mutmut stops at the first failure,
    so a mutant dies on the cheapest test that catches it (durations from mutmut's own stats run)."""
    if "__mutmut_" not in os.environ.get("MUTANT_UNDER_TEST", ""):
        return
    import json

    durations = json.loads(Path("mutmut-stats.json").read_text())["duration_by_test"]
    # The mutated module's own test file first (trainlab.run.build: tests/test_build.py): a run-side function is
    # reached by every training test, and the quickest of those seldom look at what the mutant changed.
    module = os.environ["MUTANT_UNDER_TEST"].split(".x")[0].rsplit(".", 1)[-1]
    own = tuple(f"tests/{name}" for name in OWN_TESTS.get(module, (f"test_{module}.py",)))
    items.sort(key=lambda item: (not item.nodeid.startswith(own), durations.get(item.nodeid, float("inf"))))
    # The shipped-options table composes ~140 configs, and every mutant of the config checks would run it
    # all: keep one option per group. Fewer tests can only lower the score.
    seen = set()
    for item in list(items):
        if item.originalname == "test_every_key_of_every_option_has_a_rule_and_passes_it":
            group = item.callspec.params["group"]
            if group in seen:
                items.remove(item)
            seen.add(group)
    # A surviving mutant runs every test that reaches it: for the run side, every training test. The first
    # MUTATION_BUDGET_S seconds of them, in this order, are kept (docs/testing.md).
    spent, budget = 0.0, float(os.environ.get("MUTATION_BUDGET_S", "inf"))
    for position, item in enumerate(items):
        spent += durations.get(item.nodeid, budget)
        if spent > budget and position > 0:
            del items[position:]
            break


@pytest.fixture
def submitit_job(monkeypatch):
    """The environment submitit's local executor gives its job (SUBMITIT_LOCAL_JOB_ID: the same on each attempt)."""
    monkeypatch.setenv("SUBMITIT_EXECUTOR", "local")
    monkeypatch.setenv("SUBMITIT_LOCAL_JOB_ID", "4242")
    for name, value in (("NTASKS", "1"), ("GLOBALID", "0"), ("LOCALID", "0"), ("JOB_NUM_NODES", "1"), ("NODEID", "0")):
        monkeypatch.setenv(f"SUBMITIT_LOCAL_{name}", value)
    return monkeypatch


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory) -> tuple[Path, dict]:
    """A small trained digits run (folder, summary) that tests read and never change."""
    from trainlab.run.pipeline import train_and_test

    folder = tmp_path_factory.mktemp("digits_run")
    summary = train_and_test(make_cfg(folder, "data=digits", "model=uniform", "model.width=32", "model.depth=1",
                                      "trainer.max_epochs=3", *QUIET))
    return folder, summary


def blobs_table(n: int = 120, seed: int = 0):
    """A small learnable table: two numeric features, a constant one, and string labels in sorted order a, b, c."""
    import numpy as np
    import pandas

    rng = np.random.default_rng(seed)
    labels = np.array(["a", "b", "c"])[np.arange(n) % 3]
    centres = {"a": (0.0, 0.0), "b": (4.0, 0.0), "c": (0.0, 4.0)}
    points = np.array([centres[label] for label in labels]) + rng.normal(scale=0.5, size=(n, 2))
    return pandas.DataFrame({"width": points[:, 0], "height": points[:, 1], "flag": 1, "label": labels})


@pytest.fixture(scope="session")
def table_csv(tmp_path_factory) -> Path:
    """The user's own table (data=table): numeric features and string labels."""
    path = tmp_path_factory.mktemp("table") / "blobs.csv"
    blobs_table().to_csv(path, index=False)
    return path


def image_set(root: Path, mode: str, image_column: str, sizes: dict[str, int], side: int = 8, seed: int = 0) -> Path:
    """A DatasetDict of small PIL images (datasets.Image) and ClassLabel labels, saved with save_to_disk:
    a local copy in the schema of the Hub's image sets."""
    import numpy as np
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Image
    from PIL import Image as PILImage

    rng = np.random.default_rng(seed)
    shape = (side, side) if mode == "L" else (side, side, 3)  # uint8 arrays of these shapes are L and RGB images
    features = Features({image_column: Image(), "label": ClassLabel(names=["dark", "light"])})
    parts = {}
    for split, n in sizes.items():
        labels = np.arange(n) % 2
        pixels = (rng.integers(0, 100, (n, *shape)) + 120 * labels.reshape(-1, *[1] * len(shape))).astype(np.uint8)
        parts[split] = Dataset.from_dict({image_column: [PILImage.fromarray(p) for p in pixels],
                                          "label": labels.tolist()}, features=features)
    DatasetDict(parts).save_to_disk(str(root))
    return root


@pytest.fixture(scope="session")
def image_sets(tmp_path_factory) -> dict[str, Path]:
    """Local copies of a grayscale set (columns image, label, as MNIST) and an RGB one (img, label, as CIFAR-10)."""
    return {"gray": image_set(tmp_path_factory.mktemp("gray"), "L", "image", {"train": 60, "test": 20}),
            "rgb": image_set(tmp_path_factory.mktemp("rgb"), "RGB", "img", {"train": 60, "test": 20}, seed=1)}
