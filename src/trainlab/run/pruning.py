"""Pruning, the job's side: a trial of an Optuna search reports its val metric after each epoch and stops early when
the study's pruner (hydra/sweeper/pruner=median, ...) judges its curve hopeless. The sweeper's side, which asks for
the trial and tells Optuna it was pruned, is trainlab.run.search."""
from __future__ import annotations

import logging

import lightning as L
from omegaconf import DictConfig, OmegaConf

from trainlab.errors import ConfigError
from trainlab.run import search

log = logging.getLogger("trainlab")

SWEEPER = "hydra_plugins.trainlab_sweepers.optuna_sweeper.OptunaSweeper"


class PruneHopeless(L.Callback):
    """Reports `monitor` to an Optuna trial after each validation; stops training when the trial's pruner says so.
    `pruned_at` is the epoch it stopped after, else None. For a trial that trains in one process."""

    def __init__(self, trial, monitor: str) -> None:
        self.trial, self.monitor, self.pruned_at = trial, monitor, None

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        epoch, value = trainer.current_epoch, float(trainer.callback_metrics[self.monitor])
        self.trial.report(value, epoch)
        if self.trial.should_prune():
            self.pruned_at, trainer.should_stop = epoch, True
            log.info("trial %d pruned after epoch %d: %s=%.4g is not promising beside the study's other trials",
                     self.trial.number, epoch, self.monitor, value)


def trial_pruning(cfg: DictConfig, world_size: int) -> PruneHopeless | None:
    """The callback for a job that is a trial of trainlab's Optuna search with a pruner; None for any other job."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    hydra_cfg = HydraConfig.get()
    sweeper = hydra_cfg.sweeper
    if str(hydra_cfg.mode) != "RunMode.MULTIRUN" or sweeper.get("_target_") != SWEEPER or not sweeper.get("pruner"):
        return None
    if world_size > 1:  # Lightning starts the other ranks as plain runs: they would not know the trial to stop with
        raise ConfigError("hydra.sweeper.pruner", f"prunes trials that train in one process, not {world_size} "
                          "(trainer.devices x trainer.num_nodes): drop the pruner or train each trial on one device")
    # The sweeper launched trial n as job n; the storage is resolved here, from this process's environment.
    pruner = OmegaConf.to_container(sweeper.pruner, resolve=True)
    trial = search.open_trial(sweeper.study_name, sweeper.storage, pruner, hydra_cfg.job.num)
    return PruneHopeless(trial, cfg.optimized_metric)
