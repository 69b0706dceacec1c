"""Training diagnostics as Lightning callbacks: fit verdict, epoch time, gradient flow, dead units, NaN guard.

Each diagnostic is a `Diagnostic`: what it found is its `report` (a dict), which trainlab.run.summary
writes into summary.json under its `name`.
"""
from __future__ import annotations

import logging
import math
import statistics
import time

import lightning as L
import torch
from torch import nn

from trainlab.errors import NonFiniteLoss
from trainlab.nn.module import log_to_loggers, output_size
from trainlab.nn.precision import PRECISIONS
from trainlab.nn.verdict import fit_verdict

log = logging.getLogger("trainlab")


def _mark(evidence: bool) -> str:
    return "x" if evidence else " "


def _linear_layers(module: nn.Module) -> list[nn.Linear]:
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


class Diagnostic(L.Callback):
    """A callback that reports a finding: `report` (empty when it found nothing), saved under `name`."""

    name: str = ""
    report: dict

    def __init__(self):
        self.report = {}


class FitVerdict(Diagnostic):
    """Classifies the run as underfitting, overfitting or a good fit at the end of training."""

    name = "verdict"

    def __init__(self, underfit_acc: float = 0.8, overfit_gap: float = 0.05, turn_tolerance: float = 0.02):
        super().__init__()
        self.thresholds = {"underfit_acc": underfit_acc, "overfit_gap": overfit_gap, "turn_tolerance": turn_tolerance}

    def on_fit_end(self, trainer, pl_module) -> None:
        samples = pl_module.samples.get("train"), pl_module.samples.get("val")
        self.report = fit_verdict(pl_module.history, **self.thresholds, samples=samples if all(samples) else None)
        log.info("verdict: %s: %s", self.report["fit"], self.report["reason"])
        for logger in trainer.loggers:
            logger.log_metrics({"verdict/overfitting": float(self.report["fit"] == "overfitting"),
                                "verdict/underfitting": float(self.report["fit"] == "underfitting")})


class EpochTime(Diagnostic):
    """Seconds per epoch (training and its evaluation), without start-up, data loading or testing."""

    name = "epoch_time"

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._started = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        seconds = self.report.setdefault("seconds", [])
        seconds.append(round(time.perf_counter() - self._started, 4))
        self.report["median_s"] = statistics.median(seconds)


class GradientFlow(Diagnostic):
    """Per-layer gradient norms every `every_n_steps`; warns on vanishing or exploding gradients.

    Vanishing: the first layer's gradient norm is `vanishing_ratio` times (or more) below the last
    layer's. Exploding: any layer's norm above `exploding_norm`.
    """

    name = "gradient_flow"

    def __init__(self, every_n_steps: int = 25, vanishing_ratio: float = 50.0, exploding_norm: float = 1e3):
        super().__init__()
        self.every_n_steps, self.vanishing_ratio, self.exploding_norm = every_n_steps, vanishing_ratio, exploding_norm
        self.report = {"warnings": []}

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if trainer.global_step % self.every_n_steps:
            return
        layers = _linear_layers(pl_module.net)
        if len(layers) < 2:
            return
        zero = torch.zeros((), device=layers[0].weight.device)
        norms = torch.stack([layer.weight.grad.norm().float() if layer.weight.grad is not None else zero
                             for layer in layers]).tolist()  # one read-back, not one per layer
        log_to_loggers(trainer, {f"grad_norm/layer{i}": n for i, n in enumerate(norms)})
        ratio = norms[-1] / max(norms[0], 1e-30)
        self.report.update(last_norms=norms, last_to_first_ratio=ratio)
        if ratio > self.vanishing_ratio:
            self._warn(f"vanishing gradients at step {trainer.global_step}: first layer {norms[0]:.2e} is "
                       f"{ratio:.0f}x below the last layer {norms[-1]:.2e} (try relu, kaiming init, "
                       "batch norm or an adaptive optimizer)")
        if max(norms) > self.exploding_norm:
            self._warn(f"exploding gradients at step {trainer.global_step}: a layer's gradient norm is "
                       f"{max(norms):.2e} (lower the lr, clip gradients with trainer.gradient_clip_val=1.0, "
                       "or normalise)")

    def _warn(self, message: str) -> None:
        kind = message.split()[0]  # vanishing or exploding
        if not any(w.startswith(kind) for w in self.report["warnings"]):  # once per kind, not every N steps
            log.warning("gradient flow: %s", message)
            self.report["warnings"].append(message)


class DeadUnits(Diagnostic):
    """Fraction of hidden ReLU units that never activate on the first validation batch, per layer.

    Read from validation's own forward pass through forward hooks on that one batch: no extra pass.
    """

    name = "dead_units"

    def __init__(self):
        super().__init__()
        self._never_active: list[torch.Tensor] = []  # per ReLU layer: which units stayed <= 0
        self._handles: list = []

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        if trainer.sanity_checking or batch_idx or dataloader_idx:
            return
        self._never_active = []
        relus = [module for module in pl_module.net.modules() if type(module) is nn.ReLU]
        self._handles = [relu.register_forward_hook(lambda _m, _i, out: self._never_active.append((out <= 0).all(dim=0)))
                         for relu in relus]

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if not self._never_active:
            return
        fractions = {f"dead/layer{i}": units.float().mean().item() for i, units in enumerate(self._never_active)}
        self._never_active = []
        log_to_loggers(trainer, fractions)
        self.report = fractions


class NaNGuard(L.Callback):
    """Stops at the first non-finite training loss and explains the usual causes with evidence.

    Reading a loss back is free on the CPU but stalls a GPU's queue, so there the guard keeps the first
    bad step on the device and reads it every `every_n_steps` steps (default: the Trainer's
    log_every_n_steps, when the logger reads the loss anyway) and at each epoch's end, before
    that epoch's checkpoints are written. `every_n_steps=1` checks every step anywhere.
    """

    def __init__(self, every_n_steps: int | None = None):
        self.every_n_steps = every_n_steps
        self.first_bad_step: torch.Tensor | None = None  # on the loss's device; -1 while every loss was finite

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is None:
            return
        every = self.every_n_steps or (1 if loss.device.type == "cpu" else trainer.log_every_n_steps)
        if every == 1:
            if not math.isfinite(loss.item()):
                where = f"epoch {trainer.current_epoch}, step {trainer.global_step}"
                raise NonFiniteLoss(self.checklist(trainer, pl_module, batch, f"loss became {loss.item()} at {where}"))
            return
        if self.first_bad_step is None or self.first_bad_step.device != loss.device:
            self.first_bad_step = torch.full((), -1, device=loss.device)
        fresh = (self.first_bad_step < 0) & ~torch.isfinite(loss.detach())
        self.first_bad_step = torch.where(fresh, trainer.global_step, self.first_bad_step)
        self.last_batch = batch
        if trainer.global_step % every == 0:
            self._raise_if_bad(trainer, pl_module)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self.first_bad_step is not None:
            self._raise_if_bad(trainer, pl_module)

    def on_validation_end(self, trainer, pl_module) -> None:
        # Weights that overflow in the last steps leave every training loss finite and the val loss inf; this runs
        # before the epoch's checkpoints (Lightning calls checkpoint callbacks last).
        loss = trainer.callback_metrics.get("val/loss")
        if trainer.sanity_checking or trainer.state.fn != "fit" or loss is None or math.isfinite(loss):
            return
        raise NonFiniteLoss(self.checklist(trainer, pl_module, self.last_val_batch,
                                           f"val loss became {float(loss)} at epoch {trainer.current_epoch}"))

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        if not batch_idx and not dataloader_idx:
            self.last_val_batch = batch

    def _raise_if_bad(self, trainer, pl_module) -> None:
        step = int(self.first_bad_step)  # the one read back from the device
        if step >= 0:
            raise NonFiniteLoss(self.checklist(trainer, pl_module, self.last_batch,
                                               f"loss became non-finite at epoch {trainer.current_epoch}, step "
                                               f"{step} (read back at step {trainer.global_step}: on this device "
                                               "the guard reads it every few steps; the checks below look at the "
                                               "latest batch)"))

    @staticmethod
    def checklist(trainer, pl_module, batch, what: str) -> str:
        x, y = batch
        optimizer = trainer.optimizers[0]
        group = optimizer.param_groups[0]
        dm = trainer.datamodule
        values = x.values() if x.layout == torch.sparse_csr else x  # multi-hot text batches are sparse
        finite_inputs = bool(torch.isfinite(values.float()).all())  # word ids are always finite
        linear = _linear_layers(pl_module.net)  # a user's own net may end in another layer: then unknown
        outputs = linear[-1].out_features if linear else None
        needed = output_size(dm.num_classes)
        max_abs = dm.largest_feature()
        lines = [
            what,
            "Checklist (x: evidence found):",
            f"  [{_mark(not finite_inputs)}] NaN/inf in the inputs: "
            f"{'found in this batch' if not finite_inputs else 'none in this batch'}",
            f"  [{_mark(not x.is_floating_point() and x.dtype != torch.long)}] input dtype: {x.dtype} "
            "(float expected, or word ids)",
            f"  [ ] learning rate: {group['lr']:g} (lower it, e.g. optim.lr={group['lr'] / 10:g})",
            f"  [ ] optimizer: {type(optimizer).__name__} (an adaptive one, optim=adam, is more forgiving)",
            f"  [{_mark(max_abs > 1e3)}] feature scaling: largest |training feature| {max_abs:.3g} "
            "(data.scaler=global, standard or minmax)",
            f"  [{_mark(outputs not in (needed, None) or int(y.max()) >= dm.num_classes)}] output size vs labels: {outputs} "
            f"outputs for {dm.num_classes} classes, largest label in this batch {int(y.max())}",
            f"  [{_mark(PRECISIONS[str(trainer.precision)].reduced)}] precision: {trainer.precision} "
            "(32-true is the safe choice)",
        ]
        return "\n".join(lines)
