"""BestAndLastCheckpoint on tiny fits: last.ckpt holds the last epoch whether Lightning saves on train epoch end or
after validation, and only when asked for. Whole runs with the shipped callbacks are in test_loggers_callbacks."""
from __future__ import annotations

from datetime import timedelta

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from trainlab.nn.checkpoints import BestAndLastCheckpoint
from trainlab.nn.module import Classifier


def fit(tmp_path, epochs: int, check_val_every_n_epoch: int = 1, monitor: str | None = "val/loss",
        filename: str = "best-{epoch}", last_name: str | None = None, **checkpoint) -> list[str]:
    """Trains a 2-feature, 3-class linear classifier on 24 fixed samples; the checkpoint files it left."""
    torch.manual_seed(0)
    x, y = torch.randn(24, 2), torch.arange(24) % 3
    loader = DataLoader(TensorDataset(x, y), batch_size=8)
    module = Classifier(nn.Linear(2, 3), 3, optimizer=lambda params: torch.optim.SGD(params, lr=0.1))
    callback = BestAndLastCheckpoint(dirpath=tmp_path, monitor=monitor, filename=filename, **checkpoint)
    if last_name:
        callback.CHECKPOINT_NAME_LAST = last_name
    trainer = L.Trainer(max_epochs=epochs, check_val_every_n_epoch=check_val_every_n_epoch, callbacks=[callback],
                        logger=False, enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(module, train_dataloaders=loader, val_dataloaders=loader)
    return sorted(p.name for p in tmp_path.iterdir())


def saved_epoch(path) -> int:
    return torch.load(path, weights_only=True)["epoch"]


def test_last_checkpoint_is_rewritten_at_every_epoch_end_without_a_top_k_save(tmp_path):
    assert fit(tmp_path, epochs=3, save_top_k=0, save_last=True) == ["last.ckpt"]
    assert saved_epoch(tmp_path / "last.ckpt") == 2


def test_validated_every_second_epoch_last_checkpoint_is_written_after_each_validation(tmp_path):
    # Lightning then saves after validation, not at the train epoch's end: the other path of the callback.
    assert fit(tmp_path, epochs=4, check_val_every_n_epoch=2, save_top_k=0, save_last=True) == ["last.ckpt"]
    assert saved_epoch(tmp_path / "last.ckpt") == 3


@pytest.mark.parametrize("check_val_every_n_epoch", [1, 2])
def test_no_last_checkpoint_unless_asked_for(tmp_path, check_val_every_n_epoch):
    files = fit(tmp_path, epochs=2, check_val_every_n_epoch=check_val_every_n_epoch, save_top_k=1, save_last=False)
    assert len(files) == 1 and files[0].startswith("best-epoch=")


@pytest.mark.parametrize("trigger", [{"every_n_train_steps": 1}, {"train_time_interval": timedelta(0)}])
def test_saving_every_n_steps_or_minutes_still_saves_within_the_epoch(tmp_path, trigger):
    # 24 samples in batches of 8: three steps an epoch. Without these triggers the per-batch hook is dropped.
    files = fit(tmp_path, epochs=1, monitor=None, filename="{step}", save_top_k=-1, **trigger)
    assert files == ["step=1.ckpt", "step=2.ckpt", "step=3.ckpt"]


def test_a_templated_last_name_is_filled_from_the_epochs_metrics(tmp_path):
    # Lightning's documented way to name last.ckpt otherwise: the class attribute CHECKPOINT_NAME_LAST.
    assert fit(tmp_path, epochs=3, save_top_k=0, save_last=True, last_name="last-{epoch}") == ["last-epoch=2.ckpt"]


def test_the_directory_may_be_given_positionally_as_to_modelcheckpoint(tmp_path):
    assert BestAndLastCheckpoint(str(tmp_path)).dirpath == str(tmp_path)
