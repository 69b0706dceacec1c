"""Hydra callbacks: the output folder is checked before anything runs, and every multirun ends with the
report of its sweep folder (trainlab.report).

A sweep with a failed job exits with code 1 after its report; an output folder that cannot be written
exits with code 4 before any job starts."""
from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger("trainlab")


def ensure_writable(folder: str, key: str) -> None:
    """Create `folder` (Hydra would, with a traceback on failure) and prove a file can be written in it."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        print(f"error: cannot write the output folder {folder}: {error.strerror or error}; choose a writable "
              f"folder with {key}=... (earlier runs are untouched)", file=sys.stderr)
        raise SystemExit(4) from None


class WritableOutputDir(Callback):
    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        ensure_writable(config.hydra.run.dir, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        ensure_writable(config.hydra.sweep.dir, "hydra.sweep.dir")


class ReportAfterSweep(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        from trainlab.report import main as report  # imported only when a sweep has run

        code = report([config.hydra.sweep.dir, "--no-wandb"])
        if code == 2:
            log.warning("no run of the sweep wrote a summary.json: no report")
        if code:  # some job failed: the sweep's exit code says so (the report lists why)
            raise SystemExit(1)
