"""The LightningModule (trainlab.nn.module.Classifier) stepped by hand and in one tiny fit: predictions, the
per-loader sums, the history, the step losses written to loggers, and the history a checkpoint carries. Fits of
the real configs are in test_train."""
from __future__ import annotations

import math

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import Logger
from lightning.pytorch.trainer.states import TrainerFn
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from trainlab.nn.module import STEP_LOSS, Classifier, EpochSums, log_to_loggers


class Rows(Logger):
    """A Lightning logger that keeps what it is given."""

    def __init__(self):
        super().__init__()
        self.rows = []

    name, version = "rows", 0

    def log_metrics(self, metrics, step=None):
        self.rows.append((dict(metrics), step))

    def log_hyperparams(self, params, *args, **kwargs):
        pass


def classifier(num_classes: int, weights: list[list[float]]) -> Classifier:
    net = nn.Linear(2, len(weights), bias=False)
    with torch.no_grad():
        net.weight.copy_(torch.tensor(weights))
    return Classifier(net, num_classes, optimizer=lambda params: torch.optim.SGD(params, lr=0.1))


def test_predictions_of_many_classes_are_the_largest_logit_with_softmax_probabilities():
    module = classifier(3, [[1, 0], [0, 1], [-1, -1]])
    x, y = torch.tensor([[2.0, 0.0], [0.0, 3.0], [-2.0, -2.0]]), torch.tensor([0, 1, 1])
    classes, labels, probabilities = module.predict_step((x, y), 0)
    assert classes.tolist() == [0, 1, 2] and labels is y
    assert torch.allclose(probabilities, torch.softmax(x @ module.net.weight.T, dim=-1))


def test_predictions_of_two_classes_come_from_one_logit_and_its_sigmoid():
    module = classifier(2, [[1, -1]])
    x, y = torch.tensor([[2.0, 0.0], [0.0, 1.0], [0.5, 0.0], [1.0, 1.0]]), torch.tensor([1, 0, 1, 0])
    classes, labels, probabilities = module.predict_step((x, y), 0)
    positive = torch.sigmoid(torch.tensor([2.0, -1.0, 0.5, 0.0]))
    assert classes.tolist() == [1, 0, 1, 0] and labels is y  # class 1 above probability 0.5, not at it
    assert torch.allclose(probabilities, torch.stack([1 - positive, positive], dim=1))


def test_two_classes_are_scored_by_binary_cross_entropy_on_one_logit():
    module = classifier(2, [[1, -1]])  # stepped by hand, with no trainer: nothing to sum over
    module.validation_step((torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([1, 1])), 0)
    expected = F.binary_cross_entropy_with_logits(torch.tensor([2.0, -1.0]), torch.tensor([1.0, 1.0])).item()
    assert module._epoch_values("val") == {"val/loss": pytest.approx(expected), "val/acc": 0.5}


def test_the_second_validation_loader_is_the_training_sample_measured_as_val_is():
    module = classifier(3, [[1, 0], [0, 1], [-1, -1]])
    batch = (torch.tensor([[2.0, 0.0], [0.0, 3.0]]), torch.tensor([0, 0]))
    module.validation_step(batch, 0)
    module.validation_step(batch, 0, dataloader_idx=1)
    module.validation_step(batch, 0, dataloader_idx=1)
    assert (module.sums["val"].count, module.sums["train"].count) == (2, 4)
    loss, acc, count = module.sums["train"].read(lambda local: local)
    assert (acc, count) == (0.5, 4) and loss == pytest.approx(module.sums["val"].read(lambda local: local)[0])


def attached(module: Classifier, fn: TrainerFn) -> Classifier:
    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.state.fn = fn
    module.trainer = trainer
    return module


def test_a_checkpoint_carries_the_history_and_a_resumed_fit_takes_it_back():
    saved = classifier(3, [[1, 0], [0, 1], [-1, -1]])
    saved.history = [{"epoch": 0, "val/loss": 1.5}, {"epoch": 1, "val/loss": 1.2}]
    checkpoint = {"epoch": 1}
    saved.on_save_checkpoint(checkpoint)
    assert checkpoint["history"] == saved.history
    resumed = attached(classifier(3, [[0, 0]] * 3), TrainerFn.FITTING)
    resumed.on_load_checkpoint(checkpoint)
    assert resumed.history == saved.history and resumed.loaded_epoch is None


def test_a_checkpoint_loaded_for_testing_keeps_the_whole_history_and_names_its_epoch():
    module = attached(classifier(3, [[0, 0]] * 3), TrainerFn.TESTING)
    module.history = [{"epoch": e} for e in range(5)]
    module.on_load_checkpoint({"epoch": 2, "history": [{"epoch": 0}]})
    assert module.loaded_epoch == 2 and len(module.history) == 5


def test_a_checkpoint_without_a_history_resumes_with_an_empty_one():
    module = attached(classifier(3, [[0, 0]] * 3), TrainerFn.FITTING)
    module.history = [{"epoch": 0}]
    module.on_load_checkpoint({"epoch": 0})
    assert module.history == []


def test_loading_through_lightning_points_to_trainlabs_loader():
    with pytest.raises(TypeError, match=r"^Classifier.load_from_checkpoint cannot .* use "
                                        r"trainlab.run.build.load_module\('runs/x/last.ckpt'\) instead$"):
        Classifier.load_from_checkpoint("runs/x/last.ckpt")


def test_rows_written_to_loggers_carry_the_epoch_and_the_step():
    trainer = L.Trainer(logger=[Rows(), Rows()], enable_checkpointing=False, enable_progress_bar=False)
    trainer.fit_loop.epoch_progress.current.completed = 3  # trainer.current_epoch
    log_to_loggers(trainer, {STEP_LOSS: 0.25})
    assert [logger.rows for logger in trainer.loggers] == [[({STEP_LOSS: 0.25, "epoch": 3}, 0)]] * 2


def test_epoch_sums_weigh_each_batch_by_its_size_and_reset_when_read():
    sums = EpochSums()
    assert sums.read(lambda local: local) is None  # nothing measured yet
    sums.update(torch.tensor(1.0), torch.tensor([0, 1, 2]), torch.tensor([0, 1, 1]))  # 3 samples, 2 right
    sums.update(torch.tensor(4.0), torch.tensor([1]), torch.tensor([1]))  # 1 sample, right
    loss, acc, count = sums.read(lambda local: local)
    assert (loss, acc, count) == (pytest.approx((3 * 1.0 + 4.0) / 4), 0.75, 4)
    assert sums.read(lambda local: local) is None  # read once: the next epoch starts from nothing


def test_epoch_sums_are_summed_over_ranks_before_the_means():
    sums = EpochSums()
    sums.update(torch.tensor(2.0), torch.tensor([0, 0]), torch.tensor([0, 1]))
    # Another rank with the same counts: summed loss, correct and samples double, and the means stay.
    loss, acc, count = sums.read(lambda local: local * 2)
    assert (loss, acc, count) == (pytest.approx(2.0), 0.5, 4)


def test_a_nan_loss_makes_the_epochs_mean_nan():
    sums = EpochSums()
    sums.update(torch.tensor(float("nan")), torch.tensor([0]), torch.tensor([0]))
    sums.update(torch.tensor(1.0), torch.tensor([0]), torch.tensor([0]))
    assert math.isnan(sums.read(lambda local: local)[0])


def test_epoch_values_are_summed_over_ranks_by_the_trainers_strategy(monkeypatch):
    module = attached(classifier(3, [[1, 0], [0, 1], [-1, -1]]), TrainerFn.VALIDATING)
    # As if another rank had the same batch: the strategy sums the sums.
    monkeypatch.setattr(module.trainer.strategy, "reduce", lambda local, reduce_op: local * 2 if reduce_op.lower() == "sum"
                        else None)
    module.validation_step((torch.tensor([[2.0, 0.0], [0.0, 3.0]]), torch.tensor([0, 0])), 0)
    values = module._epoch_values("val")
    assert values["val/acc"] == 0.5 and module.samples["val"] == 4


class HistoryAtTrainStart(L.Callback):
    def __init__(self):
        self.seen = []

    def on_train_start(self, trainer, pl_module):
        self.seen.append((list(pl_module.history), pl_module.last_logged_loss))


def test_a_fit_records_an_epochs_running_train_val_and_gap_metrics_and_logs_every_nth_step_loss(tmp_path):
    x = torch.tensor([[2.0, 0.0], [0.0, 3.0], [-2.0, -2.0], [1.0, 0.5]] * 4)
    y = torch.tensor([0, 1, 2, 1] * 4)  # the starting weights get 3 of 4 right
    module, rows, after_sanity = classifier(3, [[1, 0], [0, 1], [-1, -1]]), Rows(), HistoryAtTrainStart()
    trainer = L.Trainer(max_epochs=2, logger=rows, log_every_n_steps=3, callbacks=[after_sanity], num_sanity_val_steps=1,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        default_root_dir=tmp_path)
    batches = [DataLoader(TensorDataset(x[start:start + 8], y[start:start + 8]), batch_size=4) for start in (0, 8)]
    trainer.fit(module, DataLoader(TensorDataset(x, y), batch_size=4), batches)  # 4 steps an epoch
    assert after_sanity.seen == [([], None)]  # the sanity check leaves no record, nor a step loss for the bars
    assert [row["epoch"] for row in module.history] == [0, 1]
    for row in module.history:
        assert set(row) == {"epoch", "train/loss_running", "train/acc_running", "val/loss", "val/acc", "train/loss",
                            "train/acc", "gap/loss", "gap/acc"}
        assert row["gap/loss"] == pytest.approx(row["val/loss"] - row["train/loss"])
        assert row["gap/acc"] == pytest.approx(row["train/acc"] - row["val/acc"]) and row["val/acc"] > 0
    step_losses = [(step, metrics[STEP_LOSS]) for metrics, step in rows.rows if STEP_LOSS in metrics]
    assert [step for step, _ in step_losses] == [2, 5]  # the 3rd and 6th of 8 steps
    assert module.last_logged_loss.item() == step_losses[-1][1]
