"""Build everything a composed config names, train, test on the best checkpoint, write summary.json."""
from __future__ import annotations

import json
import logging
import math
import sys
import time
from pathlib import Path

import lightning as L
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.pytorch.accelerators import CPUAccelerator
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from omegaconf import DictConfig, OmegaConf, open_dict

from trainlab.errors import ConfigError
from trainlab.models import build_mlp, count_parameters
from trainlab.module import Classifier

log = logging.getLogger("trainlab")

PRECISIONS = ("32-true", "64-true", "16-mixed", "bf16-mixed", "bf16-true", "16-true")
# fp16's smallest subnormal is ~6e-8: an Adam/RMSprop eps of 1e-8 rounds to 0 and divides by zero.
FP16_MIN_EPS = 1e-4


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_config(cfg: DictConfig) -> None:
    """Reject impossible values before anything is built or trained (the rest are checked where used)."""
    if not isinstance(cfg.seed, int) or isinstance(cfg.seed, bool):
        raise ConfigError("seed", f"must be an integer, got {cfg.seed!r}")
    optim = cfg.optim
    if not _is_number(optim.lr) or optim.lr <= 0:
        raise ConfigError("optim.lr", f"learning rate must be a number > 0, got {optim.lr!r}")
    if not _is_number(optim.get("weight_decay", 0)) or optim.get("weight_decay", 0) < 0:
        raise ConfigError("optim.weight_decay", f"must be a number >= 0, got {optim.weight_decay!r}")
    if "momentum" in optim and (not _is_number(optim.momentum) or not 0 <= optim.momentum < 1):
        raise ConfigError("optim.momentum", f"must be in [0, 1), got {optim.momentum!r}")
    precision = str(cfg.trainer.get("precision", "32-true"))
    if precision not in PRECISIONS:
        raise ConfigError("trainer.precision", f"unknown precision {precision!r}; use precision=<one of {', '.join(PRECISIONS)}>")
    if cfg.trainer.accelerator == "gpu" and not torch.cuda.is_available():
        raise ConfigError("trainer.accelerator", "trainer=gpu but torch sees no CUDA GPU here; use trainer=cpu or trainer=default")
    epochs = cfg.trainer.get("max_epochs")
    if not isinstance(epochs, int) or epochs < 1:
        raise ConfigError("trainer.max_epochs", f"must be an integer >= 1, got {epochs!r}")
    dropout = cfg.model.get("dropout", 0.0)
    if not _is_number(dropout) or not 0 <= dropout < 1:
        raise ConfigError("model.dropout", f"must be in [0, 1), got {dropout!r}")


def adapt_to_precision(cfg: DictConfig) -> None:
    """16-true with a tiny optimizer eps gives NaN within an epoch: raise eps, and say so."""
    eps = cfg.optim.get("eps")
    if cfg.trainer.precision == "16-true" and eps is not None and eps < FP16_MIN_EPS:
        log.warning("precision=16-true: optim.eps=%g underflows in fp16 and would give NaN; using %g", eps, FP16_MIN_EPS)
        with open_dict(cfg):
            cfg.optim.eps = FP16_MIN_EPS


def _epoch_metrics(history: list[dict], epoch: int | None) -> dict:
    return next((dict(h) for h in history if h["epoch"] == epoch), {})


def build_summary(module: Classifier, trainer: L.Trainer, test_metrics: dict, seconds: float) -> dict:
    history = [h for h in module.history if "val/loss" in h]
    best = min(history, key=lambda h: h["val/loss"]) if history else {}
    return {
        "status": "completed",
        "final": _epoch_metrics(module.history, module.history[-1]["epoch"]) if module.history else {},
        "best": best,
        "best_epoch": best.get("epoch"),
        "test": test_metrics,
        "epochs_run": trainer.current_epoch,
        "num_parameters": count_parameters(module.net),
        "layer_widths": getattr(module.net, "widths", None),
        "precision": str(trainer.precision),
        "wall_time_s": round(seconds, 3),
        "history": module.history,
    }


def build(node: DictConfig, **kwargs):
    """hydra.utils.instantiate, but a ConfigError raised by the target surfaces as itself."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as error:
        if isinstance(error.__cause__, ConfigError):
            raise error.__cause__ from None
        raise


def train(cfg: DictConfig) -> dict:
    """Train and test the configured model; returns (and writes) the run summary."""
    started = time.perf_counter()
    check_config(cfg)
    adapt_to_precision(cfg)
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    # The resolved config alone reproduces the run (no ${...} left to re-evaluate).
    (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))

    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build(cfg.data, shuffle_seed=cfg.seed, encoder=cfg.model.get("encoder"))
    if getattr(datamodule, "label_names", None):
        (out / "labels.json").write_text(json.dumps(dict(enumerate(datamodule.label_names)), indent=2))
    norm = build(cfg.norm) if cfg.norm else None
    outputs = 1 if datamodule.num_classes == 2 else datamodule.num_classes  # one sigmoid logit for two classes
    net = build_mlp(datamodule.num_features, outputs, OmegaConf.to_container(cfg.model),
                    build(cfg.activation), norm, OmegaConf.to_container(cfg.init))
    log.info("%s | activation=%s norm=%s init=%s", net.describe(), cfg.activation._target_.rsplit(".", 1)[-1],
             cfg.norm.get("_target_", "none").rsplit(".", 1)[-1], cfg.init.scheme)
    scheduler = build(cfg.scheduler) if cfg.scheduler else None
    module = Classifier(net, datamodule.num_classes, build(cfg.optim), scheduler)

    logger = build(cfg.logger) if cfg.logger else False
    callbacks = [build(c) for c in cfg.callbacks.values() if c]
    if not logger:
        # LearningRateMonitor refuses to run without a logger; the lr is still in the config.
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    # Without a configured ModelCheckpoint, Lightning would add its own: callbacks=none means none.
    checkpointing = any(isinstance(c, ModelCheckpoint) for c in callbacks)
    trainer: L.Trainer = build(cfg.trainer, callbacks=callbacks, logger=logger, enable_checkpointing=checkpointing)
    if cfg.trainer.precision == "16-mixed" and isinstance(trainer.accelerator, CPUAccelerator):
        log.warning("precision=16-mixed: fp16 autocast needs a GPU; on this CPU it runs as bf16-mixed")

    trainer.fit(module, datamodule=datamodule)
    best_checkpoint = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    # Test once, on the best checkpoint when one was saved (else the final weights).
    tested = trainer.test(module, datamodule=datamodule, ckpt_path=best_checkpoint or None, verbose=False)
    summary = build_summary(module, trainer, dict(tested[0]) if tested else {}, time.perf_counter() - started)
    summary["best_checkpoint"] = best_checkpoint or None
    if trainer.is_global_zero:
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        log.info("best epoch %s: %s | test: %s", summary["best_epoch"], _fmt(summary["best"]), _fmt(summary["test"]))
    return summary


def _fmt(metrics: dict) -> str:
    return " ".join(f"{k}={v:.4f}" for k, v in metrics.items() if k != "epoch")


def optimized_value(cfg: DictConfig, summary: dict) -> float | None:
    """The metric sweepers optimise, taken at the best epoch (or from the test run)."""
    name = cfg.get("optimized_metric")
    for section in ("best", "test"):
        if name in summary[section]:
            return summary[section][name]
    return None


def run_from_cli(cfg: DictConfig) -> float | None:
    """Hydra entry: bad input becomes one line on stderr and exit code 2, not a traceback."""
    try:
        return optimized_value(cfg, train(cfg))
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
