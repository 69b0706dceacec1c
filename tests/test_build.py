"""What `trainlab.run.build` makes of a config, checked on the built objects before any training: each key reaches
the object it configures. Quick on purpose: under `make mutation` these are the first tests a mutant meets."""
from __future__ import annotations

import logging

import pytest
import torch
import yaml
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, MLFlowLogger

from trainlab.errors import ConfigError
from trainlab.nn.checkpoints import InterruptCheckpoint
from trainlab.nn.diagnostics import FitVerdict
from trainlab.nn.folding import unfolded
from trainlab.nn.text import MultiHot, WordEmbedding
from trainlab.run.build import build_run, load_module, mlflow_store
from trainlab.run.pipeline import train_and_test

from conftest import make_cfg

DIGITS = ("data=digits", "callbacks.progress_bar.refresh_rate=0")


def callback_types(run) -> set[type]:
    return {type(c) for c in unfolded(run.trainer.callbacks)}


def test_fast_dev_run_builds_no_logger_checkpoint_or_verdict_and_keeps_the_rest(tmp_path):
    run = build_run(make_cfg(tmp_path, *DIGITS, "debug=fast_dev_run", "logger=[csv,tensorboard]"))
    assert run.trainer.loggers == [] and run.trainer.checkpoint_callback is None
    kept = callback_types(run)
    assert not kept & {ModelCheckpoint, InterruptCheckpoint, FitVerdict, LearningRateMonitor}
    assert EarlyStopping in kept and run.trainer.fast_dev_run == 1


def test_without_a_logger_the_learning_rate_monitor_is_dropped(tmp_path):
    assert LearningRateMonitor not in callback_types(build_run(make_cfg(tmp_path, *DIGITS, "logger=none")))
    assert LearningRateMonitor in callback_types(build_run(make_cfg(tmp_path, *DIGITS, "logger=csv")))


def test_without_a_checkpoint_callback_lightning_adds_none_of_its_own(tmp_path):
    run = build_run(make_cfg(tmp_path, *DIGITS, "callbacks.model_checkpoint=null"))
    assert run.trainer.checkpoint_callback is None and ModelCheckpoint not in callback_types(run)
    assert isinstance(build_run(make_cfg(tmp_path, *DIGITS)).trainer.checkpoint_callback, ModelCheckpoint)


def test_each_picked_logger_is_built_with_its_keys(tmp_path):
    run = build_run(make_cfg(tmp_path, *DIGITS, "logger=[csv,mlflow]", "logger.csv.name=metrics"))
    csv, mlflow = run.trainer.loggers
    assert type(csv) is CSVLogger and type(mlflow) is MLFlowLogger and csv.name == "metrics"
    assert csv.save_dir == str(tmp_path)


def test_mlflow_store_is_the_environments_else_the_run_folders_else_the_configs(tmp_path, monkeypatch):
    cfg = make_cfg(tmp_path, "logger=mlflow")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert mlflow_store(cfg.logger.mlflow, str(tmp_path)) == {
        "tracking_uri": f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}",
        "artifact_location": (tmp_path.resolve() / "mlartifacts").as_uri()}
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.lab:5000")
    assert mlflow_store(cfg.logger.mlflow, str(tmp_path)) == {"tracking_uri": "http://mlflow.lab:5000"}
    pinned = make_cfg(tmp_path, "logger=mlflow", "logger.mlflow.tracking_uri=sqlite:////shared/m.db")
    assert mlflow_store(pinned.logger.mlflow, str(tmp_path)) == {}  # the config's own store is kept
    assert mlflow_store(make_cfg(tmp_path, "logger=csv").logger.csv, str(tmp_path)) == {}


@pytest.mark.parametrize(("model", "encoder"), [("text_bow", MultiHot), ("text_embed", WordEmbedding)])
def test_a_text_model_reads_the_words_through_its_encoder(tmp_path, model, encoder):
    net = build_run(make_cfg(tmp_path, "data=bbc_news", f"model={model}", "model.hidden=[12]")).module.net
    first, linear = net[0], next(m for m in net if isinstance(m, torch.nn.Linear))
    assert type(first) is encoder and linear.in_features == first.out_features and linear.out_features == 12


@pytest.mark.parametrize("encoder", [["model.encoder._target_=torch.nn.Identity"], ["~model.encoder._target_"]])
def test_an_encoder_that_is_not_a_text_encoder_is_refused(tmp_path, encoder):
    with pytest.raises(ConfigError) as refused:
        build_run(make_cfg(tmp_path, "data=bbc_news", "model=text_bow", *encoder))
    assert refused.value.key == "model.encoder" and str(refused.value) == (
        "model.encoder: is not a text encoder: use model=text_bow or model=text_embed (their encoder is "
        "trainlab.nn.text.MultiHot or trainlab.nn.text.WordEmbedding)")


def test_the_seed_reaches_the_weights_and_the_batch_order(tmp_path):
    first, again, other = (build_run(make_cfg(tmp_path, *DIGITS, f"seed={seed}")) for seed in (3, 3, 4))
    assert first.datamodule.shuffle_seed == 3 and other.datamodule.shuffle_seed == 4
    weights = [next(run.module.net.parameters()) for run in (first, again, other)]
    assert torch.equal(weights[0], weights[1]) and not torch.equal(weights[0], weights[2])


def test_the_module_carries_the_resolved_config_and_the_datas_shape(tmp_path):
    cfg = make_cfg(tmp_path, *DIGITS, "optim=sgd", "optim.lr=0.05", "scheduler=step")
    module = build_run(cfg).module
    saved = module.hparams
    assert (saved["num_features"], saved["num_classes"]) == (64, 10)
    assert saved["config"]["optim"]["lr"] == 0.05 and saved["config"]["paths"]["output_dir"] == str(tmp_path)
    assert saved["config"]["callbacks"]["model_checkpoint"]["dirpath"] == f"{tmp_path}/checkpoints"  # resolved
    optimizer = module.optimizer_factory(module.parameters())
    assert type(optimizer) is torch.optim.SGD and optimizer.defaults["lr"] == 0.05
    assert type(module.scheduler_factory(optimizer)) is torch.optim.lr_scheduler.StepLR


def test_the_memory_estimate_follows_the_batch_size_and_the_precision(tmp_path):
    def memory(*overrides):
        return build_run(make_cfg(tmp_path, *DIGITS, *overrides)).memory

    base, bigger_batch = memory("data.batch_size=100"), memory("data.batch_size=200")
    half = memory("data.batch_size=100", "precision=bf16-true")
    assert bigger_batch["activations_mb"] == pytest.approx(2 * base["activations_mb"], abs=0.002)  # rounded to kB
    assert bigger_batch["parameters_mb"] == base["parameters_mb"] > 0
    assert half["parameters_mb"] == pytest.approx(base["parameters_mb"] / 2, abs=0.001)


def test_the_loggers_get_the_resolved_config_once_not_the_modules_record_of_it(tmp_path):
    train_and_test(make_cfg(tmp_path, *DIGITS, "trainer.max_epochs=1", "trainer.limit_train_batches=2",
                            "trainer.limit_val_batches=1", "logger=csv"))
    logged = yaml.safe_load((tmp_path / "csv" / "hparams.yaml").read_text())
    assert logged["optim"]["lr"] == 0.001 and logged["paths"]["output_dir"] == str(tmp_path)
    assert not {"config", "num_features", "num_classes"} & set(logged)  # save_hyperparameters(logger=False)


@pytest.mark.parametrize(("precision", "warns"), [("16-mixed", True), ("32-true", False), ("bf16-mixed", False)])
def test_a_precision_the_cpu_cannot_run_says_what_runs_instead(tmp_path, caplog, precision, warns):
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        build_run(make_cfg(tmp_path, *DIGITS, f"precision={precision}"))
    said = [r.getMessage() for r in caplog.records if r.name == "trainlab"]
    assert said == (["precision=16-mixed cannot run on a CPU; here it runs as bf16-mixed"] if warns else [])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("trained")
    train_and_test(make_cfg(folder, *DIGITS, "model=uniform", "model.width=8", "model.depth=1",
                            "trainer.max_epochs=1", "logger=none"))
    return folder / "checkpoints" / "last.ckpt"


def without_config(trained, path):
    state = torch.load(trained, weights_only=True)
    del state["hyper_parameters"]["config"]
    torch.save(state, path)
    return path


def other_shape(trained, path):
    state = torch.load(trained, weights_only=True)
    state["state_dict"] = {name: torch.zeros(3, 3) for name in state["state_dict"]}
    torch.save(state, path)
    return path


@pytest.mark.parametrize(("make", "says"), [
    (lambda trained, path: path, "no such checkpoint file"),
    (lambda trained, path: path.write_bytes(b"not a checkpoint") and path, "is corrupted or not a checkpoint"),
    (without_config, "holds no trainlab config (a checkpoint from before trainlab saved one, or not trainlab's); "
                     "use a checkpoint of a run trained with this version"),
    (other_shape, "is of another model shape"),
])
@pytest.mark.parametrize("key", [None, "resume"])
def test_load_module_refuses_what_it_cannot_rebuild_naming_the_key_and_the_file(trained, tmp_path, make, says, key):
    path = make(trained, tmp_path / "bad.ckpt")
    with pytest.raises(ConfigError) as refused:
        load_module(path) if key is None else load_module(path, key)
    assert refused.value.key == (key or "checkpoint") and says in str(refused.value)
    assert str(path) in str(refused.value) and "\n" not in str(refused.value)
