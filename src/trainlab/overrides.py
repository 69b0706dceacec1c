"""Command-line overrides read as settings: which key an override sets, and whether it changes what a run trains.

The run side names its sweep folders and resumes by these; the study side groups runs into settings by them.
"""
from __future__ import annotations

REPLICATE_KEYS = ("seed", "data.split_seed")
# Overrides that change how a run is watched, not what it trains: not part of a setting.
TOOLING = ("replicates", "require_varied_splits", "tuned", "logger", "threads", "print_config", "callbacks.progress_bar",
           "hydra", "paths")


def override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def is_setting_override(override: str) -> bool:
    key = override_key(override)
    return key not in REPLICATE_KEYS and not any(key == t or key.startswith(t + ".") or key.startswith(t + "/")
                                                 for t in TOOLING)
