"""What Hydra and the scheduler say about the running job: its overrides, a readable name, its setting, its sweep,
the CPUs it was given, and the scheduler's id for it."""
from __future__ import annotations

import os
from pathlib import Path

from trainlab.overrides import is_setting_override


def job_identity() -> dict:
    """The job's command-line overrides, a name from them, its setting and its sweep (None for single runs)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return {"overrides": [], "name": None, "group": None, "launcher": "", "setting": None, "cpus_per_task": None}
    hydra_cfg = HydraConfig.get()
    overrides = list(hydra_cfg.overrides.task)
    multirun = str(hydra_cfg.mode) == "RunMode.MULTIRUN"
    setting = ",".join(sorted(o for o in overrides if is_setting_override(o))) or "default"
    return {"overrides": overrides, "name": hydra_cfg.job.override_dirname or "default", "setting": setting,
            "group": Path(hydra_cfg.sweep.dir).name if multirun else None,
            "launcher": str(hydra_cfg.launcher.get("_target_", "")),
            "cpus_per_task": hydra_cfg.launcher.get("cpus_per_task")}  # submitit's launchers: the job's CPUs


def scheduler_job() -> str | None:
    """This job's id when submitit started it (on SLURM, or locally): the same on every requeued attempt; else None."""
    if not os.environ.get("SUBMITIT_EXECUTOR"):
        return None
    import submitit

    return str(submitit.JobEnvironment().job_id)


def scheduler_rank() -> int:
    """This task's global rank in its submitit job (0 for a job of one task, or without submitit)."""
    if not os.environ.get("SUBMITIT_EXECUTOR"):
        return 0
    import submitit

    return submitit.JobEnvironment().global_rank
