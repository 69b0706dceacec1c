"""Test-only callbacks, loaded by Hydra in subprocess runs (tests/ is put on PYTHONPATH)."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import lightning as L


class SignalAt(L.Callback):
    """Sends `signal_name` to this process at (epoch, batch), once: the marker file says it happened."""

    def __init__(self, epoch: int, batch: int, marker: str, signal_name: str = "SIGKILL"):
        self.epoch, self.batch, self.marker, self.signal = epoch, batch, Path(marker), getattr(signal, signal_name)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if (trainer.current_epoch, batch_idx) == (self.epoch, self.batch) and not self.marker.exists():
            self.marker.touch()
            os.kill(os.getpid(), self.signal)


class CrashAt(L.Callback):
    """Raises a RuntimeError at (epoch, batch), once: a crash in the middle of training (the marker file says it
    happened, so a run resumed with the same config goes past it)."""

    def __init__(self, epoch: int, batch: int, marker: str):
        self.epoch, self.batch, self.marker = epoch, batch, Path(marker)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if (trainer.current_epoch, batch_idx) == (self.epoch, self.batch) and not self.marker.exists():
            self.marker.touch()
            raise RuntimeError(f"crash at epoch {self.epoch}, batch {self.batch}")
