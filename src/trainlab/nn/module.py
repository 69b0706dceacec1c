"""The LightningModule: wraps any classifier `nn.Module`; train, val and test share one step."""
from __future__ import annotations

from collections.abc import Callable

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from trainlab.nn.optim import build_optimizer

# "fit" is the running average over training steps (train mode, dropout on); "train" is the
# fixed training sample measured in eval mode exactly as "val" is, so the two curves compare.
STAGES = ("fit", "train", "val", "test")
VAL_LOADERS = ("val", "train")  # the datamodule's validation loaders, in order
STEP_LOSS = "train/loss_step"  # logged every Trainer(log_every_n_steps) steps


def log_to_loggers(trainer: L.Trainer, metrics: dict[str, float]) -> None:
    """`metrics` to every logger of the run at the current step, with the epoch column self.log's rows have.

    For values no callback monitors: self.log's result bookkeeping costs a sizeable share of a small step;
    this skips it (docs/performance.md).
    """
    row = {**metrics, "epoch": trainer.current_epoch}
    for logger in trainer.loggers:
        logger.log_metrics(row, step=trainer.global_step)


def output_size(num_classes: int) -> int:
    """The logits a classifier's net outputs: one (sigmoid, binary cross-entropy) for two classes, else one each."""
    return 1 if num_classes == 2 else num_classes


class EpochSums:
    """An epoch's summed loss (each batch's mean loss times its size) and correct predictions, kept on the loss's
    device, and its sample count, kept on the host: three small tensor ops a step and no host sync.

    torchmetrics' MeanMetric and Accuracy cost more a step (their update wrappers, and the mean's NaN check
    reads a value back every step); a NaN loss now makes the epoch's mean NaN instead of being dropped.
    """

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.loss: torch.Tensor | None = None
        self.correct: torch.Tensor | None = None
        self.count = 0

    def update(self, loss: torch.Tensor, predicted: torch.Tensor, target: torch.Tensor) -> None:
        if self.loss is None:
            self.loss, self.correct = torch.zeros((), device=loss.device), torch.zeros((), device=loss.device)
        self.loss.add_(loss.detach(), alpha=len(target))
        self.correct.add_((predicted == target).sum())
        self.count += len(target)

    def read(self, reduce: Callable[[torch.Tensor], torch.Tensor]) -> tuple[float, float, int] | None:
        """(mean loss, accuracy, samples) summed by `reduce` (over DDP ranks), then reset; None before any update."""
        if self.loss is None:
            return None
        local = torch.stack([self.loss, self.correct, torch.tensor(float(self.count), device=self.loss.device)])
        total = reduce(local)
        # Means in float32, as self.log records them: the history and the logged metrics are the same numbers.
        loss, acc, count = torch.cat([total[:2] / total[2], total[2:]]).tolist()
        self.reset()
        return loss, acc, int(count)


class Classifier(L.LightningModule):
    """Classifier; logs `<stage>/loss` and `<stage>/acc` once per epoch, and the generalisation gap.

    Two classes: one logit, sigmoid and binary cross-entropy (as in the notes' IMDB model);
    more: one logit per class, softmax cross-entropy.

    `history` keeps one dict of epoch metrics per epoch, the record summary.json is built from.
    """

    def __init__(self, net: nn.Module, num_classes: int, optimizer: Callable[..., torch.optim.Optimizer],
                 scheduler: Callable[..., object] | None = None):
        super().__init__()
        self.net, self.optimizer_factory, self.scheduler_factory = net, optimizer, scheduler
        self.num_classes, self.binary = num_classes, output_size(num_classes) == 1
        self.sums = {stage: EpochSums() for stage in STAGES}  # epoch metrics, read once per epoch
        self.history: list[dict[str, float]] = []
        self.samples: dict[str, int] = {}  # samples measured per stage in the last epoch (for noise-aware verdicts)
        self.loaded_epoch: int | None = None  # the epoch of the checkpoint last loaded for testing
        self.last_logged_loss: torch.Tensor | None = None  # the step loss last written to the loggers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        """float32 logits; one per sample for two classes."""
        logits = self.net(x).float()  # not self(x): a LightningModule call costs a second module dispatch a step
        return logits.squeeze(-1) if self.binary else logits

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        x, y = batch
        logits = self._logits(x)
        loss = F.binary_cross_entropy_with_logits(logits, y.float()) if self.binary else F.cross_entropy(logits, y)
        self.sums[stage].update(loss, self._classes(logits.detach()), y)
        return loss

    def _classes(self, logits: torch.Tensor) -> torch.Tensor:
        """Predicted class ids: a positive logit (probability above 0.5) for two classes, else the largest logit."""
        return (logits > 0).long() if self.binary else logits.argmax(-1)

    def training_step(self, batch, batch_idx):
        loss = self._step(batch, "fit")
        if (self.global_step + 1) % self.trainer.log_every_n_steps == 0:
            self._log_step_loss(loss.detach())
        return loss

    def _log_step_loss(self, loss: torch.Tensor) -> None:
        """The step loss, straight to the loggers on the steps they write (Trainer(log_every_n_steps)).

        Not self.log (see log_to_loggers), nor a progress-bar value, which Lightning would read back (.item())
        at every later step, a host sync a step on a GPU. Epoch metrics come from the sums above; the bars show
        `last_logged_loss` when they redraw.
        """
        self.last_logged_loss = loss
        if self.trainer.loggers:  # read back only for a logger
            log_to_loggers(self.trainer, {STEP_LOSS: loss.item()})

    def validation_step(self, batch, batch_idx, dataloader_idx: int = 0):
        self._step(batch, VAL_LOADERS[dataloader_idx])

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def predict_step(self, batch, batch_idx, dataloader_idx: int = 0) -> tuple[torch.Tensor, ...]:
        """(predicted class ids, labels, class probabilities): classes decided as the accuracy metric decides them."""
        x, y = batch
        logits = self._logits(x)
        if self.binary:
            positive = torch.sigmoid(logits)
            return self._classes(logits), y, torch.stack([1 - positive, positive], dim=1)
        return self._classes(logits), y, torch.softmax(logits, dim=-1)

    def _epoch_values(self, stage: str) -> dict[str, float]:
        strategy = self._trainer.strategy if self._trainer else None  # none when a test steps the module by hand
        totals = self.sums[stage].read(lambda local: strategy.reduce(local, reduce_op="sum") if strategy else local)
        if totals is None:
            return {}
        loss, acc, self.samples[stage] = totals
        name = "train/{}_running" if stage == "fit" else f"{stage}/{{}}"
        return {name.format("loss"): loss, name.format("acc"): acc}

    def _record(self, values: dict[str, float]) -> None:
        self.log_dict(values)
        if not self.history or self.history[-1]["epoch"] != self.current_epoch:
            self.history.append({"epoch": self.current_epoch})
        self.history[-1].update(values)

    def on_train_epoch_end(self) -> None:
        self._record(self._epoch_values("fit"))

    def on_validation_epoch_end(self) -> None:
        values = {**self._epoch_values("val"), **self._epoch_values("train")}
        if self.trainer.sanity_checking or not values:
            return
        if "train/loss" in values:
            values["gap/loss"] = values["val/loss"] - values["train/loss"]
            values["gap/acc"] = values["train/acc"] - values["val/acc"]
        self._record(values)

    def on_test_epoch_end(self) -> None:
        self.log_dict(self._epoch_values("test"))

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["history"] = self.history  # a resumed run keeps its earlier epochs' record

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if self.trainer.state.fn == "fit":  # resuming; testing the best checkpoint keeps the whole record
            self.history = checkpoint.get("history", [])
        else:
            self.loaded_epoch = checkpoint["epoch"]

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path, map_location=None, **kwargs) -> Classifier:
        """Lightning's loader cannot rebuild the net, which the config saved in the checkpoint describes: building
        from a config is the run side's job (trainlab.run.build), and this module stays below it."""
        raise TypeError("Classifier.load_from_checkpoint cannot rebuild the net from a config; use "
                        f"trainlab.run.build.load_module({str(checkpoint_path)!r}) instead")

    def configure_optimizers(self):
        optimizer = build_optimizer(self.optimizer_factory, self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        # Stepped once an epoch: Lightning's default interval.
        return {"optimizer": optimizer, "lr_scheduler": self.scheduler_factory(optimizer)}
