"""Fair arms: each arm of a comparison at its own best value of a tuned key, chosen on val, judged on test.

An experiment names the keys it tunes per arm (`tuned: [optim.lr]`) and sweeps their grid with the rest.
An *arm* is a setting without its tuned keys; of each arm's settings, the one with the highest mean val acc
whose runs all completed is the arm's result (a diverging value is never chosen). Rankings and claims then
see one setting per arm, named with its chosen value, on test metrics that played no part in the choice.
"""
from __future__ import annotations

from hydra.core.override_parser.overrides_parser import OverridesParser

from trainlab.config.schema import rule_for
from trainlab.errors import ConfigError
from trainlab.overrides import override_key
from trainlab.study.compare import Setting

CHOOSE_ON = "val/acc"


def check_tuned(tuned: list[str], sweep: dict[str, str]) -> None:
    """Every tuned key is swept over at least two values that its rule accepts (`sweep`: key -> "a,b,c")."""
    for key in tuned:
        if key not in sweep:
            raise ConfigError("tuned", f"tunes {key}, which this sweep does not vary; sweep its grid too "
                              f"(hydra.sweeper.params or {key}=a,b on the command line)")
        (override,) = OverridesParser.create().parse_overrides([f"{key}={sweep[key]}"])
        values = list(override.sweep_iterator()) if override.is_sweep_override() else [override.value()]
        if len(values) < 2:
            raise ConfigError("tuned", f"tunes {key} over one value ({sweep[key]}); give a grid of two or more")
        rule = rule_for(key)
        refused = [v for v in values if rule is not None and not rule.accepts(v)]
        if rule is None or refused:
            what = f"must be {rule.describe}, got {refused[0]!r}" if rule else "is not a key trainlab knows"
            raise ConfigError("tuned", f"{key} {what}; fix the grid in hydra.sweeper.params")


def choose_arms(settings: list[Setting], tuned: list[str]) -> tuple[list[Setting], list[list[str]]]:
    """One setting per arm, at its best tuned value on val; and the tuning table (arm, value, val acc, chosen)."""
    if not tuned:
        return settings, []
    arms: dict[tuple, list[Setting]] = {}
    for setting in settings:
        arm = tuple(sorted((k, v) for k, v in setting.overrides.items() if override_key(k) not in tuned))
        arms.setdefault(arm, []).append(setting)
    common = set.intersection(*map(set, arms)) if len(arms) > 1 else set()  # named by what differs, as settings are
    chosen, rows = [], []
    for arm, candidates in arms.items():
        eligible = [c for c in candidates if c.runs and not c.failed and CHOOSE_ON in c.estimates]
        best = max(eligible, key=lambda c: c.estimates[CHOOSE_ON].mean) if eligible else candidates[0]
        chosen.append(best)
        name = ", ".join(f"{k}={v}" for k, v in arm if (k, v) not in common) or "default"
        for c in candidates:
            value = ", ".join(f"{k}={v}" for k, v in c.overrides.items() if override_key(k) in tuned)
            score = c.estimates[CHOOSE_ON].text() if CHOOSE_ON in c.estimates else "-"
            note = f"{len(c.failed)} of {len(c.failed) + c.n} runs failed" if c.failed else ""
            rows.append([name, value, score, "chosen" if c is best else note])
    return chosen, rows
