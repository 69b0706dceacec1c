"""Hydra callbacks: the output folder, the replicate seeds, the claims and tuned keys are checked before anything
runs, and every multirun ends with the report of its sweep folder (trainlab.study.report).

A sweep with a failed job exits with code 1 after its report, one whose report cannot be made (no run
wrote a summary, or settings that cannot be compared) with code 2; an output folder that cannot be
written exits with code 4 before any job starts."""
from __future__ import annotations

import tempfile
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from trainlab.config.schema import check_replicates
from trainlab.errors import CannotWrite, ConfigError, exit_with


def ensure_writable(folder: str, key: str) -> None:
    """Create `folder` (Hydra would, with a traceback on failure) and prove a file can be written in it."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        exit_with(CannotWrite(f"the output folder {folder}", error.strerror or str(error),
                              f"choose a writable folder with {key}=... (earlier runs are untouched)"))


class WritableOutputDir(Callback):
    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        ensure_writable(config.hydra.run.dir, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        ensure_writable(config.hydra.sweep.dir, "hydra.sweep.dir")


class ReplicateSeeds(Callback):
    """`seed=7` on a sweep's command line would replace the seeds `replicates=N` sweeps: one seed, silently. And
    an experiment that requires varied splits refuses a fixed `data.split_seed` (its replicates would share one)."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        try:
            replicates = check_replicates(config.get("replicates", 1))
        except ConfigError as error:
            exit_with(error)
        if replicates == 1:
            return
        data = config.get("data")
        if config.get("require_varied_splits") and data is not None and "split_seed" in data \
                and not OmegaConf.is_interpolation(data, "split_seed"):
            exit_with(ConfigError("data.split_seed", f"data.split_seed={data.split_seed} gives all {replicates} "
                                  "replicates one split, but this experiment's claims must hold across splits "
                                  "(require_varied_splits=true); leave data.split_seed out, or add "
                                  "require_varied_splits=false for a quick look on one split"))
        for override in OverridesParser.create().parse_overrides(list(config.hydra.overrides.task)):
            if override.key_or_group == "seed" and not override.is_sweep_override():
                start = override.value()
                hint = f"seed=range({start},{start + replicates})" if isinstance(start, int) else "a list, seed=1,2,3"
                exit_with(ConfigError("seed", f"seed={start} would replace the {replicates} seeds that "
                                      f"replicates={replicates} sweeps, leaving one; write {hint}, or leave seed out"))


class ExperimentIsWellFormed(Callback):
    """An experiment's claims (kind, metric, epoch) and tuned keys (swept, over values the schema accepts) are
    checked before its sweep runs, not after its last job."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        from trainlab.study.claims import check
        from trainlab.study.tuning import check_tuned

        sweep = {str(k): str(v) for k, v in (config.hydra.sweeper.get("params") or {}).items()}
        parsed = OverridesParser.create().parse_overrides(list(config.hydra.overrides.task))
        sweep.update(o.input_line.split("=", 1) for o in parsed if o.is_sweep_override())
        claims, tuned = config.get("claims"), config.get("tuned")
        try:
            check(OmegaConf.to_container(claims, resolve=True) if claims else [])
            check_tuned(list(tuned) if tuned else [], sweep)
        except ConfigError as error:
            exit_with(error)


class ReportAfterSweep(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        from trainlab.study.report import main as report  # imported only when a sweep has run

        code = report([config.hydra.sweep.dir, "--no-wandb"])
        if code:  # 1: some job failed (the report lists why); 2: no report (its error says why)
            raise SystemExit(code)
