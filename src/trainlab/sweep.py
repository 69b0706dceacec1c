"""Hydra callback: every multirun ends with the report of its sweep folder (trainlab.report)."""
from __future__ import annotations

import logging

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger("trainlab")


class ReportAfterSweep(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        from trainlab.report import main as report  # imported only when a sweep has run

        if report([config.hydra.sweep.dir, "--no-wandb"]) == 2:
            log.warning("no run of the sweep wrote a summary.json: no report")
