"""Checkpoints a run can be resumed from: the last epoch's at every epoch end, and one where an interrupt found it."""
from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from trainlab.errors import NonFiniteLoss

log = logging.getLogger("trainlab")


class BestAndLastCheckpoint(ModelCheckpoint):
    """ModelCheckpoint whose `last.ckpt` is the last epoch's, written at every epoch end.

    Lightning 2.6 writes `last.ckpt` only at a step that also wrote a top-k checkpoint, so after the
    best epoch it kept the best epoch, and `resume=` after a kill re-trained every epoch since.

    Lightning has no public call that saves `last.ckpt` alone, so this uses ModelCheckpoint's private
    members (PRIVATE_API); tests/test_loggers_callbacks.py pins them and the behaviour, and fails on an
    upgrade that changes either.
    """

    PRIVATE_API = ("_every_n_train_steps", "_train_time_interval", "_should_save_on_train_epoch_end",
                   "_should_skip_saving_checkpoint", "_save_last_checkpoint", "_monitor_candidates")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self._every_n_train_steps < 1 and self._train_time_interval is None:
            self.on_train_batch_end = None  # it only saves every n steps or minutes: Lightning skips a None hook

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_not_saved(trainer)

    def on_validation_end(self, trainer, pl_module) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_not_saved(trainer)

    def _save_last_if_not_saved(self, trainer) -> None:
        # Skipped when Lightning already saved at this step (a new best, with last.ckpt), in sanity
        # checks, outside fit and under fast_dev_run.
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))


class InterruptCheckpoint(L.Callback):
    """Ctrl-C, SIGTERM or a crash during fit: save where training stood, for `resume=`.

    Lightning's OnExceptionCheckpoint does the same, but its mere presence turns every
    `fit(ckpt_path=None)` into "resume from last.ckpt" and counts as a ModelCheckpoint.
    """

    def __init__(self, dirpath: str, filename: str = "interrupted"):
        self.path = Path(dirpath) / f"{filename}.ckpt"

    def on_exception(self, trainer, pl_module, exception) -> None:
        # A NaN guard stop, or weights a NaN or inf reached (a crash after a blow-up): nothing to resume from.
        if isinstance(exception, NonFiniteLoss):
            log.warning("a non-finite loss stopped training: no %s is written", self.path.name)
            return
        if not all(torch.isfinite(p).all() for p in pl_module.parameters()):
            log.warning("the weights are no longer finite: no %s is written", self.path.name)
            return
        try:
            trainer.save_checkpoint(self.path)
        except OSError as error:  # a full disk, say: the error that stopped training is the one to report
            log.warning("could not write %s: %s", self.path, error.strerror or error)
