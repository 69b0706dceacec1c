"""One run, top to bottom: check the config, build what it names, fit, test on the best checkpoint, summarise."""
from __future__ import annotations

import logging
import time

import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from trainlab.config import schema
from trainlab.errors import ConfigError
from trainlab.nn.precision import PRECISIONS
from trainlab.run import pruning, summary, tracking, world
from trainlab.run.build import build_run
from trainlab.run.console import one_line_per_message, print_config
from trainlab.run.job import job_identity
from trainlab.run.resume import check_checkpoint, note_attempt, open_run_folder, resumed_config, save_config
from trainlab.run.tune import find_lr

log = logging.getLogger("trainlab")


def train_and_test(cfg: DictConfig) -> dict:
    """Train and test the configured model; returns (and writes) the run summary.

    With tune=lr_find it finds a learning rate instead, and returns that record (trainlab.run.tune).
    """
    started = time.perf_counter()
    one_line_per_message()
    identity = job_identity()
    cfg, resume_from = resumed_config(cfg, identity["overrides"])
    prepare(cfg, identity)
    out = open_run_folder(cfg, resume_from)
    requeues = note_attempt(out)
    if cfg.get("print_config"):
        print_config(cfg)
    run = build_run(cfg)
    if resume_from is not None:
        check_checkpoint(resume_from, run.module)  # before config.yaml: a refused resume leaves the folder as it was
    save_config(out, cfg)
    if cfg.get("lr_find"):
        return find_lr(run, out, OmegaConf.to_container(cfg.lr_find))
    summary.record_labels(out, run.datamodule)
    record = summary.run_record(run, identity["overrides"]) | ({"requeued": requeues} if requeues else {})
    trainer, module = run.trainer, run.module
    if prune := pruning.trial_pruning(cfg, trainer.world_size):  # a trial of an Optuna search with a pruner
        trainer.callbacks.append(prune)
    with tracking.tracked(trainer, cfg, run.memory), summary.failure_recorded(run, out, record, started):
        # Checkpoints are our own, but load them as plain data all the same (weights_only).
        try:
            trainer.fit(module, datamodule=run.datamodule, ckpt_path=resume_from, weights_only=True)
        except torch.distributed.DistError as error:
            if trainer.global_step:  # a world that formed and later broke: its own error says more
                raise
            raise world.not_formed(error, cfg.trainer) from error
        if prune and prune.pruned_at is not None:
            record["pruned_at_epoch"] = prune.pruned_at
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        # Test once, on the best checkpoint when one was saved (else the final weights).
        tested = trainer.test(module, datamodule=run.datamodule, ckpt_path=best or None, verbose=False, weights_only=True)
    return summary.completed(run, out, tested, best, record, started)


def prepare(cfg: DictConfig, identity: dict) -> None:
    """Check every key, and what this machine can run; settle what the config leaves to the job."""
    schema.check(cfg)
    if cfg.trainer.accelerator == "gpu" and not torch.cuda.is_available():
        raise ConfigError("trainer.accelerator", "trainer=gpu but torch sees no CUDA GPU here; "
                          "use trainer=cpu or trainer=default")
    world.check_world(cfg.trainer)
    tracking.prepare(cfg, identity)
    adapt_to_precision(cfg)
    threads = cfg.get("threads") or job_threads(identity)
    if threads:
        torch.set_num_threads(threads)


def job_threads(identity: dict) -> int | None:
    """Jobs of a joblib sweep run side by side: one torch thread each. A submitit job (SLURM or local): one per CPU it
    was given (hydra.launcher.cpus_per_task; SLURM's default is one). Else torch's default."""
    if "Joblib" in identity["launcher"]:
        return 1
    if "submitit" in identity["launcher"]:
        return identity["cpus_per_task"] or 1
    return None


def adapt_to_precision(cfg: DictConfig) -> None:
    """A precision whose smallest number is above the optimizer's eps gives NaN within an epoch: raise eps, say so."""
    eps, min_eps = cfg.optim.get("eps"), PRECISIONS[cfg.trainer.precision].min_eps
    if min_eps is not None and eps is not None and eps < min_eps:
        log.warning("precision=%s: optim.eps=%g underflows and would give NaN; using %g", cfg.trainer.precision, eps,
                    min_eps)
        with open_dict(cfg):
            cfg.optim.eps = min_eps
