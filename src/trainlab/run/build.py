"""Everything a composed config names, built in one place: the training pipeline, tests, benches and notebooks call it."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from lightning.pytorch.accelerators import CPUAccelerator
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf
from torch import nn

from trainlab import CONF_MODULE
from trainlab.errors import ConfigError
from trainlab.nn.checkpoints import InterruptCheckpoint
from trainlab.nn.data import InMemoryDataModule
from trainlab.nn.diagnostics import FitVerdict
from trainlab.nn.folding import fold_own
from trainlab.nn.models import build_mlp, build_own_net, describe, estimate_memory
from trainlab.nn.module import Classifier, output_size
from trainlab.nn.precision import PRECISIONS
from trainlab.run.resume import check_shapes, read_checkpoint
from trainlab.run.tracking import is_logger, masked

log = logging.getLogger("trainlab")



def compose_config(*overrides: str, output_dir: str | Path, return_hydra_config: bool = False) -> DictConfig:
    """The config `python train.py <overrides>` composes from the package's conf/, writing into `output_dir`."""
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module=CONF_MODULE, version_base="1.3"):
        return compose("train", overrides=[f"paths.output_dir={output_dir}", *overrides],
                       return_hydra_config=return_hydra_config)


def instantiate_node(node: DictConfig, **kwargs):
    """hydra.utils.instantiate, but a ConfigError raised by the target surfaces as itself."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as error:
        if isinstance(error.__cause__, ConfigError):
            raise error.__cause__ from None
        raise


def model_inputs(cfg: DictConfig) -> str:
    """What the net's first module reads: `features` (a row of numbers) unless a text encoder says otherwise."""
    encoder = cfg.model.get("encoder")
    if not encoder:
        return "features"
    reads = getattr(get_class(encoder._target_), "reads", None) if encoder.get("_target_") else None
    if reads is None:
        raise ConfigError("model.encoder", "is not a text encoder: use model=text_bow or model=text_embed "
                          "(their encoder is trainlab.nn.text.MultiHot or trainlab.nn.text.WordEmbedding)")
    return reads


def build_datamodule(cfg: DictConfig) -> InMemoryDataModule:
    """The `data` group's datamodule, its splits loaded in the form the model reads."""
    return instantiate_node(cfg.data, shuffle_seed=cfg.seed, inputs=model_inputs(cfg))


def build_net(cfg: DictConfig, num_features: int, num_classes: int) -> nn.Module:
    """The plain nn.Module from the `model`, `activation`, `norm` and `init` groups.

    A `model` with a `_target_` is the user's own class; otherwise the `model` keys shape trainlab's MLP.
    """
    norm = instantiate_node(cfg.norm) if cfg.norm else None
    if cfg.model.get("_target_"):
        params = {k: v for k, v in OmegaConf.to_container(cfg.model, resolve=True).items() if not k.startswith("_")}
        return build_own_net(get_class(cfg.model._target_), num_features, output_size(num_classes),
                             instantiate_node(cfg.activation), norm, OmegaConf.to_container(cfg.init), **params)
    encoder = instantiate_node(cfg.model.encoder)(num_features) if cfg.model.get("encoder") else None
    return build_mlp(encoder.out_features if encoder else num_features, output_size(num_classes),
                     OmegaConf.to_container(cfg.model), instantiate_node(cfg.activation), norm,
                     OmegaConf.to_container(cfg.init), encoder)


def build_module(cfg: DictConfig, num_features: int, num_classes: int) -> Classifier:
    """The LightningModule: the net for data of this shape, with the `optim` and `scheduler` groups.

    Its checkpoints carry the resolved config and the data's shape, so `load_module` can rebuild it.
    """
    net = build_net(cfg, num_features, num_classes)
    scheduler = instantiate_node(cfg.scheduler) if cfg.scheduler else None
    module = Classifier(net, num_classes, instantiate_node(cfg.optim), scheduler)
    module.save_hyperparameters({"config": OmegaConf.to_container(cfg, resolve=True), "num_features": num_features,
                                 "num_classes": num_classes}, logger=False)  # the loggers get the config themselves
    return module


def load_module(path: str | Path, key: str = "checkpoint") -> Classifier:
    """A trained Classifier from a checkpoint trainlab wrote: rebuilt from the config saved in it, then its weights."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(key, f"no such checkpoint file: {path}")
    state = read_checkpoint(path, key)
    saved = state.get("hyper_parameters") or {}
    if "config" not in saved:
        raise ConfigError(key, f"{path} holds no trainlab config (a checkpoint from before trainlab saved one, or "
                          "not trainlab's); use a checkpoint of a run trained with this version")
    module = build_module(OmegaConf.create(saved["config"]), saved["num_features"], saved["num_classes"])
    check_shapes(path, state, module, key)
    module.load_state_dict(state["state_dict"])
    return module.eval()


def build_loggers(cfg: DictConfig) -> list[Logger]:
    """The `logger` group's loggers, one per option picked (logger=[csv,wandb]); none for logger=none."""
    return [instantiate_node(node, **mlflow_store(node, cfg.paths.output_dir)) for node in (cfg.logger or {}).values()
            if node]


def mlflow_store(node: DictConfig, output_dir: str) -> dict[str, str]:
    """Where an MLflow logger whose config leaves `tracking_uri` open writes: MLFLOW_TRACKING_URI, else a SQLite store
    (and its artifacts) in the run folder. Filled in here, so a URI from the environment stays out of config.yaml."""
    if not is_logger(node, "MLFlowLogger") or node.get("tracking_uri"):
        return {}
    if os.environ.get("MLFLOW_TRACKING_URI"):
        log.info("MLflow store: %s (MLFLOW_TRACKING_URI)", masked(os.environ["MLFLOW_TRACKING_URI"]))
        return {"tracking_uri": os.environ["MLFLOW_TRACKING_URI"]}
    folder = Path(output_dir).resolve()
    return {"tracking_uri": f"sqlite:///{folder / 'mlflow.db'}", "artifact_location": (folder / "mlartifacts").as_uri()}


def build_trainer(cfg: DictConfig) -> L.Trainer:
    """The Trainer with the `logger` and `callbacks` groups."""
    loggers = build_loggers(cfg)
    callbacks = [instantiate_node(node) for node in cfg.callbacks.values() if node]
    if cfg.trainer.get("fast_dev_run"):  # one batch of each split: a wiring check, nothing worth keeping
        log.info("debug=fast_dev_run: one batch of each split; no checkpoint, logger, W&B run or verdict is written")
        loggers = []
        callbacks = [c for c in callbacks if not isinstance(c, (ModelCheckpoint, InterruptCheckpoint, FitVerdict))]
    if not loggers:  # LearningRateMonitor refuses to run without a logger; the lr is still in the config
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    # Without a configured ModelCheckpoint, Lightning would add its own: callbacks=none means none.
    checkpointing = any(isinstance(c, ModelCheckpoint) for c in callbacks)
    # torch's SyncBatchNorm runs on GPUs only: CPU processes (gloo) keep their own batch statistics
    on_gpus = cfg.trainer.accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available()
    sync = {"sync_batchnorm": False} if cfg.trainer.get("sync_batchnorm") and not on_gpus else {}
    trainer = instantiate_node(cfg.trainer, callbacks=fold_own(callbacks), logger=loggers or False,
                               enable_checkpointing=checkpointing, **sync)
    fallback = PRECISIONS[cfg.trainer.precision].cpu_fallback
    if fallback and isinstance(trainer.accelerator, CPUAccelerator):
        log.warning("precision=%s cannot run on a CPU; here it runs as %s", cfg.trainer.precision, fallback)
    return trainer


@dataclass
class Run:
    """A run's objects, built and wired, not yet trained."""

    datamodule: InMemoryDataModule
    module: Classifier
    trainer: L.Trainer
    memory: dict[str, float]


def build_run(cfg: DictConfig) -> Run:
    """Seed, then build the data, the model and the trainer a (checked) config names."""
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build_datamodule(cfg)
    module = build_module(cfg, datamodule.num_features, datamodule.num_classes)
    net = module.net
    memory = estimate_memory(net, datamodule.input_example(), module.optimizer_factory(net.parameters()),
                             str(cfg.trainer.precision), datamodule.batch_size)
    log.info("%s | activation=%s norm=%s init=%s | memory estimate %.1f MB (%s)", describe(net),
             cfg.activation._target_.rsplit(".", 1)[-1], cfg.norm.get("_target_", "none").rsplit(".", 1)[-1],
             cfg.init.scheme, memory["total_mb"],
             ", ".join(f"{k[:-3]} {v:.1f}" for k, v in memory.items() if k != "total_mb"))
    return Run(datamodule, module, build_trainer(cfg), memory)
