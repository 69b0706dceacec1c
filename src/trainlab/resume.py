"""Run folders: a new run never overwrites an old one; `resume=<run folder>` continues one from its last.ckpt."""
from __future__ import annotations

import logging
import pickle
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from trainlab.errors import ConfigError

log = logging.getLogger("trainlab")


def resumed_config(cfg: DictConfig) -> tuple[DictConfig, Path | None]:
    """With `resume=<run folder>`: that run's saved config and its last checkpoint; else `cfg` and None."""
    if not cfg.get("resume"):
        return cfg, None
    folder = Path(cfg.resume).expanduser()
    saved, last = folder / "config.yaml", folder / "checkpoints" / "last.ckpt"
    if not saved.exists():
        raise ConfigError("resume", f"{folder} is not a trainlab run folder (no config.yaml)")
    if not last.exists():
        raise ConfigError("resume", f"{folder} has no checkpoints/last.ckpt: it ended before its first epoch; start it anew")
    resumed = OmegaConf.load(saved)
    with open_dict(resumed):
        resumed.resume = str(folder)
    return resumed, last


def open_run_folder(cfg: DictConfig, resume_from: Path | None) -> Path:
    """The run folder with the resolved config saved in it; refuses a folder that holds another run."""
    out = Path(cfg.paths.output_dir)
    if resume_from is None and ((out / "summary.json").exists() or any(out.glob("checkpoints/*.ckpt"))):
        raise ConfigError("paths.output_dir", f"{out} already holds a run; continue it with resume={out}, or "
                          "train into a new folder (another hydra.run.dir, or none for a fresh one)")
    out.mkdir(parents=True, exist_ok=True)
    # The resolved config alone reproduces the run (no ${...} left to re-evaluate).
    (out / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.to_container(cfg, resolve=True)))
    return out


def read_checkpoint(path: Path, key: str = "resume") -> dict:
    """A checkpoint's contents as plain data; a corrupted file, or one holding more than plain data, is refused."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        state["state_dict"]
    except pickle.UnpicklingError as error:
        if "Unsupported global" in str(error):  # a pickled object that would run code on load
            raise ConfigError(key, f"{path} holds objects other than tensors and plain data, so it is refused "
                              "(checkpoints load with weights_only=True); use a checkpoint trainlab wrote") from None
        raise ConfigError(key, f"{path} is corrupted or not a checkpoint; use another run or start anew") from None
    except (RuntimeError, EOFError, KeyError, TypeError, OSError) as error:
        raise ConfigError(key, f"{path} is corrupted or not a checkpoint ({type(error).__name__}); "
                          "use another run or start anew") from None
    return state


def check_shapes(path: Path, state: dict, module: torch.nn.Module, key: str = "resume") -> None:
    """Refuse weights of another model shape (a name whose tensor does not fit, or a missing one)."""
    expected = module.state_dict()
    for name, tensor in expected.items():
        saved = state["state_dict"].get(name)
        if saved is None or saved.shape != tensor.shape:
            there = "missing" if saved is None else f"{list(saved.shape)}"
            raise ConfigError(key, f"{path} is of another model shape: {name} is {there} there, "
                              f"{list(tensor.shape)} here")


def check_checkpoint(path: Path, module: torch.nn.Module) -> None:
    """Refuse a checkpoint to resume from that is corrupted, holds more than plain data, or fits another model."""
    check_shapes(path, read_checkpoint(path), module)
    log.info("resuming from %s", path)
