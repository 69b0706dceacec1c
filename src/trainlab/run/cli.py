"""The `python train.py` / `trainlab-train` command: compose the config, run the job, and turn every expected
failure into one line and its exit code.

In a multirun a failing job does not stop the sweep: its summary.json records the failure, the
others run, and the sweep's report lists it (and the sweep exits non-zero). Torch is imported only
when a job runs, so `--help` and `--cfg job` stay instant.
"""
from __future__ import annotations

import contextlib
import logging
import math
import re
import shutil
import signal
import string
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf, open_dict

from trainlab import CONF, CONF_MODULE, import_from_cwd
from trainlab.config.habits import adapted
from trainlab.config.schema import check_replicates
from trainlab.errors import ConfigError, as_trainlab_error, exit_with
from trainlab.run.world import run_name

log = logging.getLogger("trainlab")


def replicate_seeds(replicates, seed) -> str:
    """The sweep's `seed` values for `replicates=N`: N seeds from `seed` on (seed=42 replicates=3: 42,43,44)."""
    try:
        check_replicates(replicates)
    except ConfigError as error:  # resolved while Hydra sets up the sweep: one line, not its traceback
        exit_with(error)
    return str(seed) if replicates == 1 else f"range({seed},{seed + replicates})"


OmegaConf.register_new_resolver("replicate_seeds", replicate_seeds, replace=True)
OmegaConf.register_new_resolver("run_name", run_name, replace=True)  # hydra.run.dir: one folder per launch


def run_job(cfg: DictConfig) -> float | None:
    """Train and test; returns the metric a sweeper optimises (NaN for a failed job of a sweep)."""
    from trainlab.run.job import job_identity, scheduler_job
    from trainlab.run.pipeline import train_and_test
    from trainlab.run.summary import optimized_value, record_failure

    # SIGTERM (a scheduler's stop) behaves like Ctrl-C: interrupt_checkpoint saves before exit. Not under submitit,
    # which ignores SIGTERM on purpose: on preemption SLURM sends it first, then the signal submitit requeues on.
    if scheduler_job() is None:
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    identity = job_identity()
    try:
        if check_replicates(cfg.get("replicates", 1)) > 1 and not identity["group"]:
            raise ConfigError("replicates", f"replicates={cfg.replicates} repeats each setting of a sweep with its own "
                              "seed; add -m to run it as one (python train.py -m replicates=...)")
        return optimized_value(cfg, train_and_test(cfg))
    except Exception as error:
        expected = as_trainlab_error(error)
        if not identity["group"]:
            if expected is None:
                raise  # a bug, not bad input: the traceback is what helps
            if isinstance(expected, ConfigError):
                remove_if_only_hydras(Path(cfg.paths.output_dir))
            exit_with(expected)
        if expected is None:
            log.exception("job failed; the sweep goes on")
        else:
            print(expected.line(), file=sys.stderr)
        record_failure(cfg, expected or error, identity["overrides"])
        return math.nan


def remove_if_only_hydras(folder: Path) -> None:
    """Bad input writes nothing: the run folder Hydra made before the job, holding only its own record, goes."""
    if folder.is_dir() and {path.name for path in folder.iterdir()} <= {".hydra", "train.log"}:
        shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(OSError):  # outputs/runs/ too, if this run made it: rmdir leaves a folder in use
            for parent in folder.resolve().parents[:2]:
                parent.rmdir()


@hydra.main(config_path=f"pkg://{CONF_MODULE}", config_name="train", version_base="1.3")
def hydra_main(cfg: DictConfig) -> float | None:
    return run_job(cfg)


def help_text(overrides: list[str]) -> str | None:
    """Hydra's `--help` page for these overrides, from its own template, without Hydra's cost: it lists the groups
    by building a config repository per option of every group, its own included (slow); here they are read
    from the package's conf/ and the config composed once. None for a template that asks for Hydra's flags or groups."""
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module=CONF_MODULE, version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    template = string.Template(cfg.hydra.help.template)
    if {"FLAGS_HELP", "HYDRA_CONFIG_GROUPS"} & set(template.get_identifiers()):
        return None
    groups = "".join(f"{group.name}: {', '.join(sorted(option.stem for option in group.glob('*.yaml')))}\n"
                     for group in sorted(CONF.iterdir(), key=lambda path: path.name)
                     if group.is_dir() and group.name != "hydra")  # hydra/: Hydra's own groups (the Optuna sweeper)
    with open_dict(cfg):
        del cfg["hydra"]
    return template.substitute(APP_CONFIG_GROUPS=groups, CONFIG=OmegaConf.to_yaml(cfg))


def config_dirs(argv: list[str]) -> list[Path]:
    """The folders Hydra's `--config-dir` / `-cd` add; each must be a folder (Hydra's own refusal is a traceback hint
    and exit 1)."""
    folders = []
    for position, given in enumerate(argv):
        flag, _, joined = given.partition("=")
        value = argv[position + 1] if position + 1 < len(argv) else None
        if flag in ("--config-dir", "-cd"):
            folder = joined or value or ""
            if not folder or not Path(folder).is_dir():
                raise ConfigError("--config-dir", f"{folder or 'no folder given: it'} is not a folder; give the folder "
                                  "that holds your own config groups (e.g. my_conf, holding my_conf/model/my_net.yaml)")
            folders.append(Path(folder))
    return folders


PLUGIN_GROUPS = ("hydra/launcher", "hydra/sweeper")  # groups Hydra's plugins add options to, besides trainlab's


def check_options(argv: list[str], folders: list[Path]) -> None:
    """Each option a group override names exists (`model=pyramid`, `-m activation=relu,tanh`, `logger=[csv,wandb]`,
    `hydra/sweeper/pruner=median`), and a logger key names its logger (`logger.wandb.mode`, not the `logger.mode`
    of the days of one logger per run). Hydra's own refusal is a screenful and exit 1."""
    if any(a.split("=", 1)[0].lstrip("+~") in ("hydra.searchpath", "--config-path", "-cp") for a in argv):
        return  # groups from elsewhere: Hydra judges
    for given in argv:
        key, _, value = given.lstrip("+~").partition("=")
        group = key.split("@", 1)[0]
        if key.startswith("logger.") and key.split(".")[1] not in group_options("logger", folders):
            raise ConfigError(key, f"a logger key names its logger: logger.wandb.{key.split('.', 1)[1]}=... for W&B "
                              "(logger.<option>.<key>)")
        if given.startswith("-") or "." in group or group in PLUGIN_GROUPS or value in ("", "null"):
            continue
        options = group_options(group, folders)
        names = [name.removesuffix(".yaml") for name in re.split(r"[\s,\[\]()]+", value.removeprefix("choice("))]
        if not options or not all(re.fullmatch(r"[\w\-/.]*", name) for name in names):
            continue  # not a group of trainlab's or the user's, or a value Hydra's grammar spells otherwise
        unknown = [name for name in names if name and name not in options]
        if unknown:
            several = ", several at once as a list: logger=[csv,wandb]" if group == "logger" else ""
            raise ConfigError(group, f"no {group} option {unknown[0]!r}; the options are "
                              f"{', '.join(sorted(options))}{several}")


def group_options(group: str, folders: list[Path]) -> set[str]:
    """The options of a config group: trainlab's and those of the user's config folders."""
    return {path.relative_to(folder / group).with_suffix("").as_posix() for folder in (CONF, *folders)
            for path in (folder / group).rglob("*.yaml")}


def main() -> float | None:
    """`python train.py` / `trainlab-train`: lightning-hydra-template's habits translated, then Hydra."""
    import_from_cwd()
    try:
        sys.argv[1:] = adapted(sys.argv[1:])
        check_options(sys.argv[1:], config_dirs(sys.argv[1:]))
    except ConfigError as error:
        exit_with(error)
    flags = [a for a in sys.argv[1:] if a.startswith("-")]
    if flags in (["--help"], ["-h"]):
        from hydra.errors import HydraException
        from omegaconf.errors import OmegaConfBaseException

        try:
            text = help_text([a for a in sys.argv[1:] if a not in flags])
        except (HydraException, OmegaConfBaseException):
            text = None  # a bad override: Hydra reports it its own way
        if text is not None:
            print(text)
            return None
    return hydra_main()
