"""Run folders: a new run never overwrites an old one; `resume=` continues a run folder or a checkpoint file."""
from __future__ import annotations

import json
import logging
import os
import pickle
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from trainlab.errors import ConfigError
from trainlab.overrides import override_key
from trainlab.run.job import scheduler_job, scheduler_rank

log = logging.getLogger("trainlab")
SCHEDULER_RECORD = "scheduler.json"  # a submitit job's id and attempts, in its run folder


def resumed_config(cfg: DictConfig, overrides: list[str]) -> tuple[DictConfig, Path | None]:
    """The config and checkpoint a run continues from, or `cfg` and None for a fresh run.

    `resume=<run folder>`: that run's saved config, continued in its folder from its last.ckpt.
    `resume=<file.ckpt>` (or `ckpt_path=`, lightning-hydra-template's name): the config saved in the
    checkpoint, continued from it in a new run folder. Either way the command line's keys apply on top
    (`trainer.max_epochs=20` trains on for more epochs); a group (`optim=sgd`) would change what was trained.
    """
    key = "resume" if cfg.get("resume") else "ckpt_path"
    if not cfg.get(key):
        last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
        return cfg, last if earlier_attempts(last.parents[1]) and last.exists() else None
    path = Path(cfg[key]).expanduser()
    if path.is_dir():
        resumed, checkpoint = _run_folder(path, key), path / "checkpoints" / "last.ckpt"
    elif path.is_file():
        resumed, checkpoint = _saved_in(path, key, new_folder=str(cfg.paths.output_dir)), path
    else:
        raise ConfigError(key, f"{path} does not exist: give a run folder or a .ckpt file")
    _carry_overrides(resumed, cfg, overrides, key)
    with open_dict(resumed):
        resumed.resume, resumed.ckpt_path = str(path), None
    return resumed, checkpoint


def _run_folder(folder: Path, key: str) -> DictConfig:
    if not (folder / "config.yaml").exists():
        raise ConfigError(key, f"{folder} is not a trainlab run folder (no config.yaml)")
    if not (folder / "checkpoints" / "last.ckpt").exists():
        raise ConfigError(key, f"{folder} has no checkpoints/last.ckpt: it ended before its first epoch; start it anew")
    return OmegaConf.create(current_form(OmegaConf.to_container(OmegaConf.load(folder / "config.yaml"))))


def _saved_in(path: Path, key: str, new_folder: str) -> DictConfig:
    """The resolved config a checkpoint carries, its run folder's paths moved to `new_folder`."""
    config = read_checkpoint(path, key).get("hyper_parameters", {}).get("config")
    if config is None:
        raise ConfigError(key, f"{path} holds no saved config (not written by this trainlab); "
                          "resume its run folder instead (resume=<run folder>)")
    old = config["paths"]["output_dir"]

    def moved(_, value):
        inside = isinstance(value, str) and (value == old or value.startswith(old + "/"))
        return new_folder + value[len(old):] if inside else value

    return OmegaConf.create(_rewritten(config, moved))


def _rewritten(node, change, key: str | None = None):
    """A saved config with every leaf replaced by change(its key, its value)."""
    if isinstance(node, dict):
        return {name: _rewritten(value, change, name) for name, value in node.items()}
    if isinstance(node, list):
        return [_rewritten(value, change, key) for value in node]
    return change(key, node)


# What a continued run may change: how long and how it goes on, and how it is watched. The rest was trained
# (data, model, optimizer and scheduler, whose state the checkpoint restores over any new value).
CARRIED = ("trainer", "callbacks", "logger", "print_config", "threads", "optimized_metric")
KEPT = ("resume", "ckpt_path", "seed")  # seed: a sweep adds it to every job; the run keeps its own


def _carry_overrides(resumed: DictConfig, cfg: DictConfig, overrides: list[str], key: str) -> None:
    """The command line's keys, as Hydra composed them into `cfg`, set in the resumed config."""
    for name in (override_key(o) for o in overrides):
        if name in KEPT:
            continue
        if name.split(".")[0] not in CARRIED or name in ("trainer", "trainer.precision"):
            raise ConfigError(key, f"{name}=... would change what was trained: a continued run can change "
                              f"{', '.join(CARRIED[:3])} keys (trainer.max_epochs=20), or train anew")
        with open_dict(resumed):
            OmegaConf.update(resumed, name, OmegaConf.select(cfg, name))


def open_run_folder(cfg: DictConfig, resume_from: Path | None) -> Path:
    """The run folder; refuses a folder that holds another run."""
    out = Path(cfg.paths.output_dir)
    holds_a_run = (out / "summary.json").exists() or any(out.glob("checkpoints/*.ckpt"))
    if resume_from is None and holds_a_run and not earlier_attempts(out):
        raise ConfigError("paths.output_dir", f"{out} already holds a run; continue it with resume={out}, or "
                          "train into a new folder (another hydra.run.dir, or none for a fresh one)")
    out.mkdir(parents=True, exist_ok=True)
    return out


def earlier_attempts(out: Path) -> int:
    """How often the scheduler started this job in `out` before: it requeues a job stopped by its time limit or by
    preemption, with the same command, and that attempt continues the run from its last.ckpt (or anew, if the
    first epoch never ended)."""
    job, record = scheduler_job(), out / SCHEDULER_RECORD
    if job is None or not record.exists():
        return 0
    saved = json.loads(record.read_text())
    return saved["attempts"] if saved.get("job") == job else 0


def note_attempt(out: Path) -> int:
    """Records this attempt of a scheduler's job in its run folder; returns how many came before (requeues).
    Rank 0 of the job writes it, whole or not at all (a rename), so the job's other tasks never read half a file."""
    before = earlier_attempts(out)
    if (job := scheduler_job()) and scheduler_rank() == 0:
        written = out / f".{SCHEDULER_RECORD}.{os.getpid()}"
        written.write_text(json.dumps({"job": job, "attempts": before + 1}))
        os.replace(written, out / SCHEDULER_RECORD)
    return before


def save_config(out: Path, cfg: DictConfig) -> None:
    """config.yaml, resolved: it alone reproduces the run (no ${...} left to re-evaluate)."""
    (out / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.to_container(cfg, resolve=True)))


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
    saved = state.get("hyper_parameters") or {}
    if "config" in saved:
        saved["config"] = current_form(saved["config"])
    return state


# Where the classes a config can name lived before trainlab's modules were grouped into wings (nn, run, study,
# config): configs saved in older checkpoints and run folders name them so.
OLD_HOMES = {f"trainlab.{name}.": f"trainlab.{wing}.{name}." for wing, names in (
    ("nn", ("data", "text", "models", "module", "optim", "scalers")), ("run", ("console",)),
    ("study", ("hydra_callbacks",)))
    for name in names} | {f"trainlab.callbacks.{name}": f"trainlab.nn.{home}.{name}" for home, names in (
    ("diagnostics", ("FitVerdict", "EpochTime", "GradientFlow", "DeadUnits", "NaNGuard")),
    ("checkpoints", ("BestAndLastCheckpoint", "InterruptCheckpoint"))) for name in names}


def current_form(config: dict) -> dict:
    """A saved config in this version's form: each moved class named at its current home, and a single logger,
    saved before `logger` took a list, under its option's name."""
    config = _rewritten(config, lambda key, value: _current(value) if key == "_target_" else value)
    logger = config.get("logger")
    if isinstance(logger, dict) and "_target_" in logger:
        config["logger"] = {logger["_target_"].rsplit(".", 1)[-1].removesuffix("Logger").lower(): logger}
    return config


def _current(target):
    old = next((old for old in OLD_HOMES if isinstance(target, str) and target.startswith(old)), None)
    return OLD_HOMES[old] + target[len(old):] if old else target


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
