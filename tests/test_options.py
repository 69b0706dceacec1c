"""Every option of every config group composes and trains (fast_dev_run: one batch of each split)."""
from __future__ import annotations

import json

import pytest
import torch
from lightning.pytorch import callbacks as lightning_callbacks
from lightning.pytorch import loggers
from lightning.pytorch.accelerators import CPUAccelerator
from lightning.pytorch.profilers import SimpleProfiler
from torch import nn

from trainlab import CONF
from trainlab.errors import ConfigError
from trainlab.nn import checkpoints, diagnostics, folding, models, text
from trainlab.run import console
from trainlab.run.build import build_run
from trainlab.run.pipeline import train_and_test

from conftest import make_cfg

# trainer=ddp (two processes) has its own tests in test_reliability.py; trainer=gpu below; tune=lr_find, which
# finds a learning rate instead of training, in test_train.py.
SPECIAL = {("trainer", "ddp"), ("trainer", "gpu"), ("tune", "lr_find")}
OPTIONS = sorted((p.parent.name, p.stem) for p in CONF.glob("*/*.yaml") if (p.parent.name, p.stem) not in SPECIAL)


TEXT_DATA = {"bbc_news", "imdb", "rotten_tomatoes", "text_files"}
IMAGE_DATA = {"mnist_full": "gray", "fashion_mnist": "gray", "cifar10": "rgb"}  # Hub image sets: local copies


@pytest.fixture
def local_data(hub_like_dataset, reviews_csv, table_csv, image_sets) -> dict:
    return {"hub_like_dataset": hub_like_dataset, "reviews_csv": reviews_csv, "table_csv": table_csv,
            "image_sets": image_sets}


def partner_overrides(group: str, option: str, local_data: dict) -> list[str]:
    """Text data needs a text model and vice versa; Hub data is replaced by a local copy in its schema; data=table
    gets a small table the tests make."""
    if group == "data" and option == "table":
        return [f"data.path={local_data['table_csv']}"]
    if group == "data" and option in IMAGE_DATA:
        return [f"data.dataset={local_data['image_sets'][IMAGE_DATA[option]]}"]
    if group == "data" and option in TEXT_DATA:
        extra = ["model=text_bow"]
    elif (group == "model" and option.startswith("text_")) or (group, option) == ("experiment", "imdb_overfit"):
        extra = ["data=bbc_news"]
    else:
        return []
    if option in ("imdb", "rotten_tomatoes"):
        extra.append(f"data.dataset={local_data['hub_like_dataset']}")
    if option == "text_files":
        extra += [f"data.path={local_data['reviews_csv']}", "data.text_column=review", "data.label_column=stars"]
    return extra


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_fast_dev_run(tmp_path, group, option, local_data):
    overrides = [f"{group}={option}", *partner_overrides(group, option, local_data)]
    if group != "debug":
        overrides.append("debug=fast_dev_run")
    if group == "debug" and option in ("overfit_batches", "profiler"):
        overrides += ["data=digits", "trainer.max_epochs=2"]
    summary = train_and_test(make_cfg(tmp_path, *overrides))
    assert summary["status"] == "completed"
    assert 0.0 <= summary["test"]["test/acc"] <= 1.0
    assert torch.isfinite(torch.tensor(summary["test"]["test/loss"]))
    assert json.loads((tmp_path / "summary.json").read_text())["num_parameters"] == summary["num_parameters"]


def test_gpu_trainer_without_gpu_is_a_clear_error(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: trainer=gpu is covered by the fast_dev_run test then")
    with pytest.raises(ConfigError, match="trainer=gpu"):
        train_and_test(make_cfg(tmp_path, "trainer=gpu", "debug=fast_dev_run"))


def modules_of(run, kind) -> list[nn.Module]:
    return [m for m in run.module.net.modules() if isinstance(m, kind)]


def optimizer_and_scheduler(run):
    configured = run.module.configure_optimizers()
    if isinstance(configured, dict):
        return configured["optimizer"], configured["lr_scheduler"]
    return configured, None


def callback_types(run) -> set[type]:
    return {type(c) for c in folding.unfolded(run.trainer.callbacks)}


def logger_types(run) -> list[type]:
    return [type(logger) for logger in run.trainer.loggers]


def hidden_activations(kind):
    # digits' default model is the hourglass: 3 hidden layers, each with its own activation
    return lambda run: len(modules_of(run, kind)) == 3 and all(type(m) is kind for m in modules_of(run, kind))


# What each option changes in the objects built from it (run with data=digits unless the option is data's).
DEFAULT_CALLBACKS = {lightning_callbacks.EarlyStopping, checkpoints.BestAndLastCheckpoint, checkpoints.InterruptCheckpoint,
                     diagnostics.FitVerdict, diagnostics.GradientFlow, diagnostics.DeadUnits, diagnostics.NaNGuard,
                     diagnostics.EpochTime}
EFFECTS = {
    ("activation", "sigmoid"): hidden_activations(nn.Sigmoid),
    ("activation", "tanh"): hidden_activations(nn.Tanh),
    ("activation", "relu"): hidden_activations(nn.ReLU),
    ("activation", "leaky_relu"): lambda run: hidden_activations(nn.LeakyReLU)(run)
    and modules_of(run, nn.LeakyReLU)[0].negative_slope == 0.01,
    ("activation", "swish"): hidden_activations(models.Swish),
    ("activation", "silu"): hidden_activations(nn.SiLU),
    ("activation", "gelu"): hidden_activations(nn.GELU),
    ("activation", "elu"): hidden_activations(nn.ELU),
    ("norm", "none"): lambda run: not modules_of(run, (nn.BatchNorm1d, nn.LayerNorm, nn.GroupNorm)),
    ("norm", "batch"): lambda run: len(modules_of(run, nn.BatchNorm1d)) == 3,
    ("norm", "layer"): lambda run: len(modules_of(run, nn.LayerNorm)) == 3,
    ("norm", "group"): lambda run: len(modules_of(run, nn.GroupNorm)) == 3,
    ("optim", "sgd"): lambda run: (type(o := optimizer_and_scheduler(run)[0]) is torch.optim.SGD
                                   and o.defaults["momentum"] == 0),
    ("optim", "momentum"): lambda run: (type(o := optimizer_and_scheduler(run)[0]) is torch.optim.SGD
                                        and o.defaults["momentum"] == 0.9 and o.defaults["nesterov"]),
    ("optim", "rmsprop"): lambda run: type(optimizer_and_scheduler(run)[0]) is torch.optim.RMSprop,
    ("optim", "adam"): lambda run: type(optimizer_and_scheduler(run)[0]) is torch.optim.Adam,
    ("optim", "adamw"): lambda run: type(optimizer_and_scheduler(run)[0]) is torch.optim.AdamW,
    ("scheduler", "none"): lambda run: optimizer_and_scheduler(run)[1] is None,
    ("scheduler", "step"): lambda run: type(optimizer_and_scheduler(run)[1]) is torch.optim.lr_scheduler.StepLR,
    ("scheduler", "cosine"): lambda run: (type(s := optimizer_and_scheduler(run)[1]) is
                                          torch.optim.lr_scheduler.CosineAnnealingLR and s.T_max == 10),
    ("trainer", "default"): lambda run: run.trainer.max_epochs == 10 and run.trainer.num_devices == 1,
    ("trainer", "cpu"): lambda run: isinstance(run.trainer.accelerator, CPUAccelerator),
    ("logger", "csv"): lambda run: logger_types(run) == [loggers.CSVLogger],
    ("logger", "tensorboard"): lambda run: logger_types(run) == [loggers.TensorBoardLogger],
    ("logger", "wandb"): lambda run: logger_types(run) == [loggers.WandbLogger],
    ("logger", "mlflow"): lambda run: logger_types(run) == [loggers.MLFlowLogger],
    ("logger", "many"): lambda run: logger_types(run) == [loggers.CSVLogger, loggers.TensorBoardLogger,
                                                          loggers.WandbLogger],
    ("logger", "none"): lambda run: logger_types(run) == [],
    ("callbacks", "default"): lambda run: DEFAULT_CALLBACKS | {lightning_callbacks.LearningRateMonitor}
    <= callback_types(run),
    ("callbacks", "none"): lambda run: not callback_types(run) & DEFAULT_CALLBACKS
    and {console.EpochLines, console.ProgressBars} & callback_types(run),
    ("debug", "fast_dev_run"): lambda run: run.trainer.fast_dev_run == 1,
    ("debug", "limit_batches"): lambda run: (run.trainer.limit_train_batches, run.trainer.max_epochs) == (5, 2),
    ("debug", "overfit_batches"): lambda run: run.trainer.overfit_batches == 1,
    ("debug", "profiler"): lambda run: isinstance(run.trainer.profiler, SimpleProfiler),
    ("data", "mnist"): lambda run: (run.datamodule.num_features, run.datamodule.num_classes) == (784, 10),
    ("data", "digits"): lambda run: (run.datamodule.num_features, run.datamodule.num_classes) == (64, 10),
    ("data", "bbc_news"): lambda run: run.datamodule.label_names == ["business", "entertainment", "politics",
                                                                    "sports", "tech"],
    ("data", "imdb"): lambda run: isinstance(run.datamodule, text.TextDataModule) and run.datamodule.num_classes == 2,
    ("data", "rotten_tomatoes"): lambda run: isinstance(run.datamodule, text.TextDataModule)
    and run.datamodule.num_classes == 2,
    ("data", "text_files"): lambda run: isinstance(run.datamodule, text.TextDataModule)
    and run.datamodule.label_names == ["bad", "good"],
    ("data", "table"): lambda run: (run.datamodule.num_features, run.datamodule.label_names) == (3, ["a", "b", "c"]),
    # the local copies: 8x8 images, grayscale (64 pixels) or RGB (192), the set's own 20 test images kept
    ("data", "mnist_full"): lambda run: (run.datamodule.num_features, len(run.datamodule.splits["test"][1])) == (64, 20),
    ("data", "fashion_mnist"): lambda run: (run.datamodule.num_features, len(run.datamodule.splits["test"][1]))
    == (64, 20),
    ("data", "cifar10"): lambda run: (run.datamodule.num_features, len(run.datamodule.splits["test"][1])) == (192, 20),
    ("model", "hourglass"): lambda run: run.module.net.widths == [64, 512, 256, 512, 10],
    ("model", "pyramid"): lambda run: run.module.net.widths == [64, 512, 256, 128, 10],
    ("model", "uniform"): lambda run: run.module.net.widths == [64, 256, 256, 256, 10],
    ("model", "custom"): lambda run: run.module.net.widths == [64, 256, 128, 10],
    ("model", "bnnet"): lambda run: run.module.net.widths == [64, 48, 24, 10] and len(modules_of(run, nn.BatchNorm1d)) == 2,
    ("model", "text_bow"): lambda run: isinstance(run.module.net[0], text.MultiHot),
    ("model", "text_embed"): lambda run: isinstance(run.module.net[0], text.WordEmbedding),
}
# Covered elsewhere: precision (its own test below), init (tests/test_models.py, scheme by scheme), the experiments
# (run as the sweeps they declare), hparams_search and tune.
ELSEWHERE = {"precision", "init", "experiment", "hparams_search", "tune"}


def test_every_option_has_an_effect_check():
    assert set(EFFECTS) == {(g, o) for g, o in OPTIONS if g not in ELSEWHERE} | {("trainer", "default")}


@pytest.mark.parametrize(("group", "option"), sorted(EFFECTS), ids=[f"{g}={o}" for g, o in sorted(EFFECTS)])
def test_each_option_takes_effect(tmp_path, group, option, local_data):
    overrides = [f"{group}={option}", *partner_overrides(group, option, local_data)]
    if group != "data" and not any(o.startswith("data=") for o in overrides):
        overrides.insert(0, "data=digits")
    assert EFFECTS[group, option](build_run(make_cfg(tmp_path, *overrides)))


@pytest.mark.parametrize("precision", sorted(p.stem for p in CONF.glob("precision/*.yaml")))
def test_each_precision_reaches_the_trainer_and_the_weights(tmp_path, precision):
    summary = train_and_test(make_cfg(tmp_path, "data=digits", f"precision={precision}", "debug=fast_dev_run"))
    used = "bf16-mixed" if precision == "16-mixed" and not torch.cuda.is_available() else precision
    assert summary["precision"] == used
    weights = {"64-true": torch.float64, "bf16-true": torch.bfloat16, "16-true": torch.float16}.get(used, torch.float32)
    run = build_run(make_cfg(tmp_path / "built", "data=digits", f"precision={precision}"))
    with run.trainer.precision_plugin.module_init_context():
        assert torch.empty(1).dtype == weights  # the dtype the net's weights are created in
