"""The LightningModule: wraps any classifier `nn.Module`; train, val and test share one step."""
from __future__ import annotations

from typing import Callable

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import BinaryAccuracy, MulticlassAccuracy

STAGES = ("train", "val", "test")


class Classifier(L.LightningModule):
    """Classifier; logs `<stage>/loss` and `<stage>/acc` once per epoch.

    Two classes: one logit, sigmoid and binary cross-entropy (as in the notes' IMDB model);
    more: one logit per class, softmax cross-entropy.

    `history` keeps one dict of epoch metrics per epoch, the record summary.json is built from.
    """

    def __init__(self, net: nn.Module, num_classes: int, optimizer: Callable[..., torch.optim.Optimizer],
                 scheduler: Callable[..., object] | None = None):
        super().__init__()
        self.net, self.optimizer_factory, self.scheduler_factory = net, optimizer, scheduler
        self.binary = num_classes == 2
        accuracy = BinaryAccuracy() if self.binary else MulticlassAccuracy(num_classes, average="micro")
        # Epoch metrics are accumulated on-device and synced once per epoch, not per step.
        # Keyed "<stage>_split": ModuleDict keys may not shadow Module attributes such as `train`.
        self.metrics = nn.ModuleDict({
            f"{stage}_split": MetricCollection({"loss": MeanMetric(), "acc": accuracy.clone()})
            for stage in STAGES
        })
        self.history: list[dict[str, float]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        x, y = batch
        logits = self(x).float()
        if self.binary:
            logits = logits.squeeze(-1)
            loss = F.binary_cross_entropy_with_logits(logits, y.float())
            predictions = torch.sigmoid(logits.detach())  # probabilities, so the metric never guesses
        else:
            loss = F.cross_entropy(logits, y)
            predictions = logits.detach()
        metrics = self.metrics[f"{stage}_split"]
        metrics["loss"].update(loss.detach(), weight=len(y))
        metrics["acc"].update(predictions, y)
        return loss

    def training_step(self, batch, batch_idx):
        loss = self._step(batch, "train")
        self.log("train/loss_step", loss, on_step=True, on_epoch=False, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def _log_epoch(self, stage: str) -> None:
        values = {f"{stage}/{name}": value.item() for name, value in self.metrics[f"{stage}_split"].compute().items()}
        self.metrics[f"{stage}_split"].reset()
        self.log_dict(values, prog_bar=stage == "val")
        if stage != "test":
            if not self.history or self.history[-1]["epoch"] != self.current_epoch:
                self.history.append({"epoch": self.current_epoch})
            self.history[-1].update(values)

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            self.metrics["val_split"].reset()
            return
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": self.scheduler_factory(optimizer), "interval": "epoch"}}
