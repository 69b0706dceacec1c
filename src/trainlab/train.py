"""Build everything a composed config names, train, test on the best checkpoint, write summary.json."""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import pickle
import signal
import sys
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.pytorch.accelerators import CPUAccelerator
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import WandbLogger
from omegaconf import DictConfig, OmegaConf, open_dict

from trainlab.callbacks import NonFiniteLoss
from trainlab.compare import is_setting_override
from trainlab.errors import ConfigError, check_replicates
from trainlab.models import build_mlp, count_parameters, estimate_memory
from trainlab.module import Classifier, output_size

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
    check_replicates(cfg.get("replicates", 1))
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


def save_predictions(trainer: L.Trainer, module: Classifier, datamodule, out: Path) -> dict:
    """Per-sample predictions of the tested weights on val and test, for paired tests between runs.

    Written to predictions.npz; returns what summary.json records of them: the epoch the weights come
    from, the accuracies they give and a fingerprint of the evaluation samples (their labels, in order),
    so the report pairs only runs that were evaluated on the same samples.
    """
    if trainer.world_size > 1 or trainer.fast_dev_run:  # a rank sees its shard only; fast_dev_run one batch
        return {}
    loaders = {"val": datamodule.val_dataloader()[0], "test": datamodule.test_dataloader()}
    batches = trainer.predict(module, dataloaders=list(loaders.values()))
    arrays, record = {}, {}
    for split, outputs in zip(loaders, batches):
        predicted, label = (torch.cat(parts).cpu().numpy() for parts in zip(*outputs))
        arrays |= {f"{split}_predicted": predicted.astype(np.int32), f"{split}_label": label.astype(np.int32)}
        record[f"{split}/acc"] = float((predicted == label).mean())
        record[f"{split}_samples"] = len(label)
    np.savez_compressed(out / "predictions.npz", **arrays)
    labels = arrays["val_label"].tobytes() + arrays["test_label"].tobytes()
    epoch = module.loaded_epoch if module.loaded_epoch is not None else (module.history[-1]["epoch"] if module.history else None)
    return {"epoch": epoch, **record, "fingerprint": hashlib.sha1(labels).hexdigest()[:16]}


def build(node: DictConfig, **kwargs):
    """hydra.utils.instantiate, but a ConfigError raised by the target surfaces as itself."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as error:
        if isinstance(error.__cause__, ConfigError):
            raise error.__cause__ from None
        raise


def job_identity() -> dict:
    """The job's command-line overrides, a readable name from them, and its sweep (None for single runs)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return {"overrides": [], "name": None, "group": None, "launcher": "", "setting": None}
    hydra_cfg = HydraConfig.get()
    overrides = list(hydra_cfg.overrides.task)
    multirun = str(hydra_cfg.mode) == "RunMode.MULTIRUN"
    setting = ",".join(sorted(o for o in overrides if is_setting_override(o))) or "default"
    return {"overrides": overrides, "name": hydra_cfg.job.override_dirname or "default", "setting": setting,
            "group": Path(hydra_cfg.sweep.dir).name if multirun else None,
            "launcher": str(hydra_cfg.launcher.get("_target_", ""))}


def check_wandb(cfg: DictConfig, identity: dict) -> None:
    """W&B online needs a key; without one it would wait at a login prompt or fail late."""
    if not cfg.logger or not str(cfg.logger.get("_target_", "")).endswith("WandbLogger"):
        return
    if cfg.logger.get("mode") == "online" and not os.environ.get("WANDB_API_KEY") and not _netrc_has_wandb():
        raise ConfigError("logger.mode", "W&B online needs an API key: `wandb login` or WANDB_API_KEY=...; "
                          "or keep the default offline mode and `wandb sync` later")
    with open_dict(cfg):
        cfg.logger.name = cfg.logger.get("name") or identity["name"]
        cfg.logger.group = cfg.logger.get("group") or identity["group"]
        # Replicates of one setting share a job_type, so W&B's grouped charts draw their band.
        cfg.logger.job_type = cfg.logger.get("job_type") or identity["setting"]


def _netrc_has_wandb() -> bool:
    import netrc

    try:
        return any("wandb" in host for host in netrc.netrc().hosts)
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def resumed_config(cfg: DictConfig) -> tuple[DictConfig, Path | None]:
    """With `resume=<run folder>`: that run's saved config and its last checkpoint."""
    if not cfg.get("resume"):
        return cfg, None
    folder = Path(cfg.resume).expanduser()
    saved, last = folder / "config.yaml", folder / "checkpoints" / "last.ckpt"
    if not saved.exists():
        raise ConfigError("resume", f"{folder} is not a trainlab run folder (no config.yaml)")
    if not last.exists():
        raise ConfigError("resume", f"{folder} has no checkpoints/last.ckpt: it ended before its first epoch; start it anew")
    resumed = OmegaConf.load(saved)
    with open_dict(resumed):
        resumed.resume = str(folder)
    return resumed, last


def check_checkpoint(path: Path, module: Classifier) -> None:
    """Refuse a checkpoint that is corrupted, holds more than plain data, or fits another model shape."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    except pickle.UnpicklingError as error:
        if "Unsupported global" in str(error):  # a pickled object that would run code on load
            raise ConfigError("resume", f"{path} holds objects other than tensors and plain data, so it is refused "
                              "(checkpoints load with weights_only=True); use a checkpoint trainlab wrote") from None
        raise ConfigError("resume", f"{path} is corrupted or not a checkpoint; resume from another run or start anew") from None
    except (RuntimeError, EOFError, KeyError, OSError) as error:
        raise ConfigError("resume", f"{path} is corrupted or not a checkpoint ({type(error).__name__}); "
                          "resume from another run or start anew") from None
    expected = module.state_dict()
    for name, tensor in state.items():
        if name in expected and expected[name].shape != tensor.shape:
            raise ConfigError("resume", f"{path} is of another model shape: {name} is {list(tensor.shape)} there, "
                              f"{list(expected[name].shape)} here")


def train(cfg: DictConfig) -> dict:
    """Train and test the configured model; returns (and writes) the run summary."""
    started = time.perf_counter()
    cfg, resume_from = resumed_config(cfg)
    identity = job_identity()
    check_config(cfg)
    check_wandb(cfg, identity)
    adapt_to_precision(cfg)
    out = Path(cfg.paths.output_dir)
    if resume_from is None and ((out / "summary.json").exists() or any(out.glob("checkpoints/*.ckpt"))):
        raise ConfigError("paths.output_dir", f"{out} already holds a run; continue it with resume={out}, or "
                          "train into a new folder (another hydra.run.dir, or none for a fresh one)")
    out.mkdir(parents=True, exist_ok=True)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    # The resolved config alone reproduces the run (no ${...} left to re-evaluate).
    (out / "config.yaml").write_text(OmegaConf.to_yaml(resolved))

    threads = cfg.get("threads") or (1 if "Joblib" in identity["launcher"] else None)
    if threads:
        torch.set_num_threads(threads)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build(cfg.data, shuffle_seed=cfg.seed, encoder=cfg.model.get("encoder"))
    if getattr(datamodule, "label_names", None):
        (out / "labels.json").write_text(json.dumps(dict(enumerate(datamodule.label_names)), indent=2))
    norm = build(cfg.norm) if cfg.norm else None
    net = build_mlp(datamodule.num_features, output_size(datamodule.num_classes), OmegaConf.to_container(cfg.model),
                    build(cfg.activation), norm, OmegaConf.to_container(cfg.init))
    scheduler = build(cfg.scheduler) if cfg.scheduler else None
    module = Classifier(net, datamodule.num_classes, build(cfg.optim), scheduler)
    if resume_from is not None:
        check_checkpoint(resume_from, module)
        log.info("resuming %s from %s", out, resume_from)
    memory = estimate_memory(net, datamodule.splits["train"][0][torch.arange(1)], module.optimizer_factory(
        net.parameters()), str(cfg.trainer.precision), datamodule.batch_size)
    log.info("%s | activation=%s norm=%s init=%s | memory estimate %.1f MB (%s)", net.describe(),
             cfg.activation._target_.rsplit(".", 1)[-1], cfg.norm.get("_target_", "none").rsplit(".", 1)[-1],
             cfg.init.scheme, memory["total_mb"], ", ".join(f"{k[:-3]} {v:.1f}" for k, v in memory.items() if k != "total_mb"))

    logger = build(cfg.logger) if cfg.logger else False
    named_callbacks = {name: build(c) for name, c in cfg.callbacks.items() if c}
    if not logger:
        # LearningRateMonitor refuses to run without a logger; the lr is still in the config.
        named_callbacks = {n: c for n, c in named_callbacks.items() if not isinstance(c, LearningRateMonitor)}
    callbacks = list(named_callbacks.values())
    # Without a configured ModelCheckpoint, Lightning would add its own: callbacks=none means none.
    checkpointing = any(isinstance(c, ModelCheckpoint) for c in callbacks)
    trainer: L.Trainer = build(cfg.trainer, callbacks=callbacks, logger=logger, enable_checkpointing=checkpointing)
    if cfg.trainer.precision == "16-mixed" and isinstance(trainer.accelerator, CPUAccelerator):
        log.warning("precision=16-mixed: fp16 autocast needs a GPU; on this CPU it runs as bf16-mixed")
    for each in trainer.loggers:
        each.log_hyperparams(resolved)
        each.log_metrics({f"memory/{k}": v for k, v in memory.items()})
    if isinstance(logger, WandbLogger):
        for prefix in ("train", "val", "gap", "dead", "lr-*"):  # plot epoch metrics against the epoch
            logger.experiment.define_metric(f"{prefix}/*" if prefix != "lr-*" else prefix, step_metric="epoch")

    record = {"overrides": identity["overrides"], "threads": torch.get_num_threads(), "num_parameters": count_parameters(net),
              "layer_widths": getattr(net, "widths", None), "precision": str(trainer.precision), "memory": memory}
    try:
        # Checkpoints are our own, but load them as plain data all the same (weights_only).
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
        best_checkpoint = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        # Test once, on the best checkpoint when one was saved (else the final weights).
        tested = trainer.test(module, datamodule=datamodule, ckpt_path=best_checkpoint or None, verbose=False,
                              weights_only=True)
    except BaseException as error:
        summary = {**build_summary(module, trainer, {}, time.perf_counter() - started), **record, "status": "failed",
                   "error": (str(error).splitlines() or [type(error).__name__])[0]}
        if trainer.is_global_zero:
            (out / "summary.json").write_text(json.dumps(summary, indent=2))
        if isinstance(logger, WandbLogger) and logger._experiment is not None:
            logger.experiment.finish(exit_code=1)  # the W&B run shows as failed, not finished
        raise
    if isinstance(logger, WandbLogger):
        logger.experiment.finish()  # the next job of a sweep then starts a run of its own
    summary = {**build_summary(module, trainer, dict(tested[0]) if tested else {}, time.perf_counter() - started),
               **record, "best_checkpoint": best_checkpoint or None,
               "evaluated": save_predictions(trainer, module, datamodule, out)}
    if torch.cuda.is_available() and trainer.strategy.root_device.type == "cuda":
        summary["memory"]["measured_peak_mb"] = round(torch.cuda.max_memory_allocated() / 1024**2, 3)
    for name, callback in named_callbacks.items():
        if getattr(callback, "report", None):
            summary.setdefault("diagnostics", {})[name] = callback.report
    summary["verdict"] = summary.get("diagnostics", {}).pop("fit_verdict", None)
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
    """Hydra entry: bad input becomes one line on stderr and exit code 2, not a traceback.

    In a multirun a failing job does not stop the sweep: its summary.json records the failure,
    the others run, and the sweep's report lists it (and the sweep exits non-zero).
    """
    # SIGTERM (a scheduler's stop) behaves like Ctrl-C: interrupt_checkpoint saves before exit.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        if check_replicates(cfg.get("replicates", 1)) > 1 and not job_identity()["group"]:
            raise ConfigError("replicates", f"replicates={cfg.replicates} repeats each setting of a sweep with its own "
                              "seed; add -m to run it as one (python train.py -m replicates=...)")
        return optimized_value(cfg, train(cfg))
    except (ConfigError, NonFiniteLoss) as error:
        code, message = (2, f"error: {error}") if isinstance(error, ConfigError) else (3, f"error: training stopped: {error}")
        print(message, file=sys.stderr)
        if not job_identity()["group"]:
            sys.exit(code)
        _record_failure(cfg, error)
        return math.nan
    except OSError as error:
        # Disk full, read-only or vanished folder while saving: say which file, keep what exists.
        print(f"error: cannot write {error.filename or 'to the run folder'}: {error.strerror or error}; free disk space "
              "or write elsewhere with hydra.run.dir=... (earlier runs and checkpoints are untouched)", file=sys.stderr)
        if not job_identity()["group"]:
            sys.exit(4)
        _record_failure(cfg, error)
        return math.nan
    except Exception as error:
        if not job_identity()["group"]:
            raise
        log.exception("job failed; the sweep goes on")
        _record_failure(cfg, error)
        return math.nan


def _record_failure(cfg: DictConfig, error: BaseException) -> None:
    """A failed sweep job's summary.json (kept if training already wrote one)."""
    path = Path(cfg.paths.output_dir) / "summary.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        first_line = (str(error).splitlines() or [type(error).__name__])[0]
        path.write_text(json.dumps({"status": "failed", "error": first_line, "overrides": job_identity()["overrides"]}))
