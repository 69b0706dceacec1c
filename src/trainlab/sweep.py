"""Hydra callback: every multirun ends with the report of its sweep folder (trainlab.report).

A sweep with a failed job exits with code 1 after its report."""
from __future__ import annotations

import logging

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger("trainlab")


class ReportAfterSweep(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        from trainlab.report import main as report  # imported only when a sweep has run

        code = report([config.hydra.sweep.dir, "--no-wandb"])
        if code == 2:
            log.warning("no run of the sweep wrote a summary.json: no report")
        if code:  # some job failed: the sweep's exit code says so (the report lists why)
            raise SystemExit(1)
