"""Experiment tracking in one place: what every logger receives, and everything Weights & Biases needs.

A run's W&B run is named from its overrides, grouped by its sweep and typed by its setting (so
W&B's grouped charts band the replicates); it finishes as failed when training fails, so the next
job of a sweep starts a run of its own. A sweep's report goes to a W&B run of its own.
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from textwrap import shorten
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from omegaconf import DictConfig, OmegaConf, open_dict

from trainlab.errors import ConfigError

if TYPE_CHECKING:  # `trainlab-report` does not need Lightning
    import lightning as L

EPOCH_METRICS = ("train/*", "val/*", "gap/*", "dead/*", "lr-*")  # plotted against the epoch in W&B


def is_logger(node, kind: str) -> bool:
    """Whether a config node builds a logger of class `kind` (e.g. "WandbLogger")."""
    return isinstance(node, (dict, DictConfig)) and str(node.get("_target_", "")).endswith(f".{kind}")


def loggers_of(logger: dict | DictConfig | None, kind: str) -> list[tuple[str, dict | DictConfig]]:
    """(name, node) of each logger picked in a `logger` config whose class is `kind`."""
    return [(name, node) for name, node in (logger or {}).items() if is_logger(node, kind)]


def prepare(cfg: DictConfig, identity: dict) -> None:
    """Refuse W&B online without a key (it would wait at a login prompt or fail late); name the W&B and MLflow runs
    after the run's overrides."""
    for name, node in loggers_of(cfg.logger, "WandbLogger"):
        if node.get("mode") == "online" and not os.environ.get("WANDB_API_KEY") and not _netrc_has_wandb():
            raise ConfigError(f"logger.{name}.mode", "W&B online needs an API key: `wandb login` or WANDB_API_KEY=...; "
                              "or keep the default offline mode and `wandb sync` later")
        with open_dict(node):
            node.name = node.get("name") or identity["name"]
            node.group = node.get("group") or identity["group"]
            node.job_type = node.get("job_type") or identity["setting"]
    for _, node in loggers_of(cfg.logger, "MLFlowLogger"):
        with open_dict(node):
            node.run_name = node.get("run_name") or identity["name"]


def masked(url: str) -> str:
    """`url` with the password in it, if any, shown as ***: a storage or tracking URL fit for a log line."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)))


def _netrc_has_wandb() -> bool:
    import netrc

    try:
        return any("wandb" in host for host in netrc.netrc().hosts)
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


@contextmanager
def tracked(trainer: L.Trainer, cfg: DictConfig, memory: dict[str, float]):
    """Every logger gets the resolved config and the memory estimate; W&B's run is finished on the way out."""
    from lightning.pytorch.loggers import WandbLogger

    for logger in trainer.loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        logger.log_metrics({f"memory/{k}": v for k, v in memory.items()})
    wandb_loggers = [logger for logger in trainer.loggers if isinstance(logger, WandbLogger)]
    for logger in wandb_loggers:
        for pattern in EPOCH_METRICS:
            logger.experiment.define_metric(pattern, step_metric="epoch")
    try:
        yield
    except BaseException:
        if wandb_loggers:
            import wandb

            if wandb.run is not None:
                wandb.run.finish(exit_code=1)  # the W&B run shows as failed, not finished
        raise
    for logger in wandb_loggers:
        logger.experiment.finish()


def wandb_project(runs: list[dict]) -> str | None:
    """The W&B project the runs logged to (their config's logger.project), else None."""
    for run in runs:
        wandb_dir = run["dir"] / "wandb"
        if any(d.is_dir() for pattern in ("offline-run-*", "run-*") for d in wandb_dir.glob(pattern)):
            project = next((node.get("project") for _, node in loggers_of(run["config"].get("logger"), "WandbLogger")),
                           None)
            return project or os.environ.get("WANDB_PROJECT", "trainlab")
    return None


def log_report(folder: Path, project: str, tables: dict[str, tuple[list[str], list[list[str]]]],
               images: dict[Path, str]) -> Path | None:
    """A sweep report's tables and plots to one W&B run (offline unless WANDB_MODE says otherwise); never fatal."""
    try:
        import wandb

        settings = wandb.Settings(init_timeout=30, silent=True, console="off", x_disable_stats=True)
        run = wandb.init(project=project, dir=str(folder), job_type="report", group=folder.name,
                         name=f"report-{folder.name}", mode=os.environ.get("WANDB_MODE", "offline"), settings=settings)
        try:
            run.log({**{name: wandb.Table(columns=columns, data=rows) for name, (columns, rows) in tables.items()},
                     **{p.relative_to(folder).with_suffix("").as_posix(): wandb.Image(str(p)) for p in images}})
            return Path(run.dir).parent
        finally:
            run.finish()
    except Exception as error:  # a report must not fail because W&B did
        print(f"warning: W&B logging skipped: {shorten(str(error), 200)}", file=sys.stderr)
        return None
