"""The LightningModule: wraps any classifier `nn.Module`; train, val and test share one step."""
from __future__ import annotations

from collections.abc import Callable

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import BinaryAccuracy, MulticlassAccuracy

from trainlab.optim import build_optimizer

# "fit" is the running average over training steps (train mode, dropout on); "train" is the
# fixed training sample measured in eval mode exactly as "val" is, so the two curves compare.
STAGES = ("fit", "train", "val", "test")
VAL_LOADERS = ("val", "train")  # the datamodule's validation loaders, in order


def output_size(num_classes: int) -> int:
    """The logits a classifier's net outputs: one (sigmoid, binary cross-entropy) for two classes, else one each."""
    return 1 if num_classes == 2 else num_classes


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
        # Labels are checked against the output size when the data loads: the accuracy's own per-step
        # argument checks would only cost time.
        accuracy = (BinaryAccuracy(validate_args=False) if self.binary
                    else MulticlassAccuracy(num_classes, average="micro", validate_args=False))
        # Epoch metrics are accumulated on-device and synced once per epoch, not per step.
        # Keyed "<stage>_split": ModuleDict keys may not shadow Module attributes such as `train`.
        self.metrics = nn.ModuleDict({
            f"{stage}_split": MetricCollection({"loss": MeanMetric(), "acc": accuracy.clone()})
            for stage in STAGES
        })
        self.history: list[dict[str, float]] = []
        self.samples: dict[str, int] = {}  # samples measured per stage in the last epoch (for noise-aware verdicts)
        self.loaded_epoch: int | None = None  # the epoch of the checkpoint last loaded for testing

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        """float32 logits; one per sample for two classes."""
        logits = self(x).float()
        return logits.squeeze(-1) if self.binary else logits

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        x, y = batch
        logits = self._logits(x)
        if self.binary:
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
        loss = self._step(batch, "fit")
        # A self.log call costs about as much as a small MLP's whole step: call it only on the steps the
        # logger writes (Trainer(log_every_n_steps)); epoch metrics come from the torchmetrics above.
        if (self.global_step + 1) % self.trainer.log_every_n_steps == 0:
            self.log("train/loss_step", loss, on_step=True, on_epoch=False, prog_bar=True)
        return loss

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
            return (positive > 0.5).long(), y, torch.stack([1 - positive, positive], dim=1)
        return logits.argmax(-1), y, torch.softmax(logits, dim=-1)

    def _epoch_values(self, stage: str) -> dict[str, float]:
        metrics = self.metrics[f"{stage}_split"]
        if not metrics["loss"].update_called:
            return {}
        name = "train/{}_running" if stage == "fit" else f"{stage}/{{}}"
        values = {name.format(key): value.item() for key, value in metrics.compute().items()}
        self.samples[stage] = int(metrics["loss"].weight.item())  # the loss is weighted by batch size
        metrics.reset()
        return values

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
        """The trained module of a checkpoint trainlab wrote, its net rebuilt from the config saved in it (on the CPU)."""
        from trainlab.build import load_module  # build imports this module

        module = load_module(checkpoint_path)
        return module.to(map_location) if isinstance(map_location, (str, torch.device)) else module

    def configure_optimizers(self):
        optimizer = build_optimizer(self.optimizer_factory, self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = {"scheduler": self.scheduler_factory(optimizer), "interval": "epoch"}
        return {"optimizer": optimizer, "lr_scheduler": scheduler}
