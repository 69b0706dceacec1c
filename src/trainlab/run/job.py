"""What Hydra says about the running job: its overrides, a readable name, its setting and its sweep."""
from __future__ import annotations

from pathlib import Path

from trainlab.overrides import is_setting_override


def job_identity() -> dict:
    """The job's command-line overrides, a name from them, its setting and its sweep (None for single runs)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return {"overrides": [], "name": None, "group": None, "launcher": "", "setting": None}
    hydra_cfg = HydraConfig.get()
    overrides = list(hydra_cfg.overrides.task)
    multirun = str(hydra_cfg.mode) == "RunMode.MULTIRUN"
    setting = ",".join(sorted(o for o in overrides if is_setting_override(o))) or "default"
    return {"overrides": overrides, "name": hydra_cfg.job.override_dirname or "default", "setting": setting,
            "group": Path(hydra_cfg.sweep.dir).name if multirun else None,
            "launcher": str(hydra_cfg.launcher.get("_target_", ""))}
