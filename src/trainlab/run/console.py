"""What a run prints: its resolved config as a tree, progress bars on a terminal and one line per epoch
anywhere else (a file, a pipe, a CI log), each library message once."""
from __future__ import annotations

import logging
import sys
import time
import warnings

from lightning.pytorch.callbacks import ProgressBar, TQDMProgressBar
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, ListConfig, OmegaConf
from rich.console import Console
from rich.syntax import Syntax
from rich.text import Text
from rich.tree import Tree

from trainlab.nn.module import STEP_LOSS, VAL_LOADERS

EPOCH_KEYS = ("train/loss", "train/acc", "val/loss", "val/acc")
VAL_DESCRIPTIONS = {"val": "Validation (val split)", "train": "Validation (train sample, eval mode)"}


def progress_bar(refresh_rate: int = 20) -> ProgressBar:
    """Bars redrawn every `refresh_rate` steps on a terminal; one line per epoch elsewhere; 0: neither."""
    return ProgressBars(refresh_rate) if sys.stdout.isatty() else EpochLines(refresh_rate)


class ProgressBars(TQDMProgressBar):
    """Lightning's bars, with the second validation loader named for what it is and the last logged step loss."""

    def get_metrics(self, trainer, pl_module) -> dict:
        metrics = super().get_metrics(trainer, pl_module)
        loss = getattr(pl_module, "last_logged_loss", None)  # read back here, once a redraw, not at every step
        if loss is not None:
            metrics[STEP_LOSS] = loss.item()
        return metrics

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        super().on_validation_batch_start(trainer, pl_module, batch, batch_idx, dataloader_idx)
        if self.is_enabled and not trainer.sanity_checking and batch_idx == 0:
            self.val_progress_bar.set_description(VAL_DESCRIPTIONS[VAL_LOADERS[dataloader_idx]])


class EpochLines(ProgressBar):
    """One line per epoch: train and val loss and accuracy (train measured like val) and the epoch's seconds."""

    def __init__(self, refresh_rate: int = 20):
        super().__init__()
        self.refresh_rate, self._enabled, self._started = refresh_rate, True, 0.0

    @property
    def is_enabled(self) -> bool:
        return self._enabled and self.refresh_rate > 0

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._started = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        # Runs after the epoch's validation, whose metrics are in callback_metrics by now.
        if not self.is_enabled or not trainer.is_global_zero:
            return
        metrics = trainer.callback_metrics
        values = "  ".join(f"{key} {metrics[key].item():.4f}" for key in EPOCH_KEYS if key in metrics)
        self.print(f"epoch {trainer.current_epoch}  {values}  {time.perf_counter() - self._started:.1f} s", flush=True)


@rank_zero_only
def print_config(cfg: DictConfig) -> None:
    """The resolved config, one branch per top-level key."""
    tree = Tree("config", guide_style="dim")
    for key in cfg:
        value = cfg[key]  # resolved
        if isinstance(value, (DictConfig, ListConfig)) and value:
            yaml = OmegaConf.to_yaml(value, resolve=True).rstrip()
            tree.add(str(key)).add(Syntax(yaml, "yaml", background_color="default", word_wrap=True))
        else:
            tree.add(Text(f"{key}: {value}"))  # plain text: a path may hold [brackets] rich reads as markup
    Console().print(tree)


def _not_an_advertisement(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("💡 Tip")


def one_line_per_message() -> None:
    """Lightning's package logger has a console handler of its own and also propagates to the root logger's
    (Hydra's, which writes the run's log file too): keep the root's only. Lightning's tips for its cloud
    products and a deprecation inside Lightning's own pytree code (torch's LeafSpec) say nothing about the run."""
    if logging.getLogger().handlers:
        logging.getLogger("lightning").handlers.clear()
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_not_an_advertisement)
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)", category=FutureWarning)
