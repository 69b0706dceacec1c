"""Runs pooled into settings, a ranking that admits ties, and the notes' claims checked against them.

A *setting* is what a sweep compares: the runs whose overrides differ only in `seed` and
`data.split_seed` are its replicates. val chose each run's checkpoint, so settings are ranked on test metrics
of that checkpoint; each is tested against the top one (paired over replicates that share seed and split, else
McNemar on the saved per-sample predictions of one shared evaluation set), with Holm's correction over the
comparisons. Values are read at the tested checkpoint (`best`) or at each run's last epoch (`last`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from trainlab.errors import ConfigError
from trainlab.overrides import is_setting_override
from trainlab.stats import ALPHA, Comparison, Estimate, estimate, holm, mcnemar, paired_t, welch

METRICS = ("val/acc", "test/acc", "train/acc", "val/loss", "train/loss", "test/loss")
RANK_METRIC = "test/acc"  # val chose the checkpoint; test judges it
EPOCHS = ("best", "last")


def replicate_id(config: dict) -> tuple:
    """(seed, data.split_seed) of a run's saved config: what pairs replicates across settings."""
    return config.get("seed"), (config.get("data") or {}).get("split_seed")


def last_metrics(run: dict) -> dict:
    """Train and val metrics of a run's last epoch (test is measured for the tested checkpoint only)."""
    last = run["history"][-1] if run["history"] else {}
    return {k: last[k] for k in METRICS if isinstance(last.get(k), (int, float))}


def run_metrics(summary: dict) -> dict:
    """The tested model's metrics: its epoch's train/val values and the test values."""
    history = summary.get("history") or []
    evaluated = summary.get("evaluated") or {}
    epoch = evaluated.get("epoch", summary.get("best_epoch"))
    chosen = next((h for h in history if h.get("epoch") == epoch), summary.get("best") or summary.get("final") or {})
    values = {k: chosen[k] for k in METRICS if isinstance(chosen.get(k), (int, float))}
    values.update({k: v for k, v in (summary.get("test") or {}).items() if k in METRICS})
    return values


@dataclass
class Setting:
    name: str
    overrides: dict[str, str]
    runs: list[dict] = field(default_factory=list)  # completed runs
    failed: list[dict] = field(default_factory=list)
    estimates: dict[str, Estimate] = field(default_factory=dict)
    versus_best: Comparison | None = None
    p_holm: float | None = None
    rank: str = ""

    @property
    def n(self) -> int:
        return len(self.runs)

    def values(self, metric: str, replicates: list | None = None, epoch: str = "best") -> list[float]:
        runs = self.runs if replicates is None else [self.by_replicate[r] for r in replicates]
        read = (lambda r: r["metrics"]) if epoch == "best" else last_metrics
        return [m[metric] for m in map(read, runs) if metric in m]

    def estimate(self, metric: str, epoch: str = "best") -> Estimate | None:
        """Mean and 95% interval of metric over the replicates, at the tested checkpoint or the last epoch."""
        if epoch == "best" and metric in self.estimates:
            return self.estimates[metric]
        values = self.values(metric, epoch=epoch)
        if not values:
            return None
        # The eval-mode train sample is as large as the val split.
        total = self.samples("test" if metric.startswith("test") else "val") if metric.endswith("acc") else None
        return estimate(values, total, low=0.0, high=1.0 if metric.endswith("acc") else math.inf)

    @cached_property
    def by_replicate(self) -> dict[tuple, dict]:
        """Completed runs by (seed, split); read once grouping is done."""
        return {r["replicate"]: r for r in self.runs}

    @cached_property
    def test_confusion(self) -> list[list[int]] | None:
        """The test confusion matrix (rows: true class, columns: predicted), summed over the setting's runs."""
        matrices = [m for m in (r["summary"].get("evaluated", {}).get("test_confusion") for r in self.runs) if m]
        if not matrices or len({len(m) for m in matrices}) != 1:
            return None
        size = len(matrices[0])
        return [[sum(m[i][j] for m in matrices) for j in range(size)] for i in range(size)]

    @property
    def chance(self) -> float | None:
        """The test accuracy of always guessing the most common class (None without a confusion matrix)."""
        rows = [sum(row) for row in self.test_confusion or []]
        return max(rows) / sum(rows) if rows and sum(rows) else None

    def samples(self, split: str) -> int | None:
        """How many samples the setting's runs were evaluated on in `split` (val or test)."""
        return next((r["summary"]["evaluated"][f"{split}_samples"] for r in self.runs
                     if f"{split}_samples" in (r["summary"].get("evaluated") or {})), None)

    @property
    def tied(self) -> bool:
        return self.p_holm is not None and self.p_holm >= ALPHA


def group_settings(runs: list[dict]) -> list[Setting]:
    """Runs with the same setting overrides, in order of first appearance; names show what differs."""
    settings: dict[tuple, Setting] = {}
    for run in runs:
        own = tuple(o for o in run["overrides"] if is_setting_override(o))
        setting = settings.setdefault(own, Setting("", dict(o.split("=", 1) for o in own if "=" in o)))
        (setting.failed if run["failed"] else setting.runs).append(run)
    common = set.intersection(*(set(k) for k in settings)) if len(settings) > 1 else set()
    for own, setting in settings.items():
        setting.name = ", ".join(o for o in own if o not in common) or "default"
    for setting in settings.values():
        setting.estimates = {m: e for m in METRICS if (e := setting.estimate(m)) is not None}
    return list(settings.values())


def _fingerprint(run: dict) -> str | None:
    return (run["summary"].get("evaluated") or {}).get("fingerprint")


def _correct(run: dict, split: str) -> np.ndarray | None:
    """Which samples of `split` a run got right, from its predictions.npz (read once, kept on the run)."""
    cache = run.setdefault("correct", {})
    if split not in cache:
        path = Path(run["dir"]) / "predictions.npz"
        cache[split] = None
        if path.exists():
            with np.load(path) as saved:
                cache[split] = saved[f"{split}_predicted"] == saved[f"{split}_label"]
    return cache[split]


def _check_same_samples(a: Setting, b: Setting, shared: list) -> None:
    for replicate in shared:
        fa, fb = _fingerprint(a.by_replicate[replicate]), _fingerprint(b.by_replicate[replicate])
        if fa and fb and fa != fb:
            keys = sorted(k for k in a.overrides.keys() | b.overrides.keys() if a.overrides.get(k) != b.overrides.get(k))
            data_keys = [k for k in keys if k.startswith("data")] or keys or ["data"]
            raise ConfigError(", ".join(data_keys), f"'{a.name}' and '{b.name}' are evaluated on different samples "
                              f"(seed, split {replicate}), so they cannot be compared as paired; report them "
                              "separately: trainlab-report <folder> --only KEY=VALUE")


def compare(a: Setting, b: Setting, metric: str, epoch: str = "best") -> Comparison | None:
    """a - b on metric: paired t over shared replicates (>= 2), else McNemar on one shared evaluation set
    (accuracies of the tested checkpoint only), else Welch's t over unpaired replicates; None when nothing can
    be tested."""
    shared = sorted(set(a.by_replicate) & set(b.by_replicate), key=str)
    _check_same_samples(a, b, shared)
    if len(shared) >= 2:
        return paired_t(a.values(metric, shared, epoch), b.values(metric, shared, epoch))
    split = metric.split("/")[0]
    if shared and epoch == "best" and metric.endswith("/acc") and split in ("val", "test"):
        correct_a, correct_b = _correct(a.by_replicate[shared[0]], split), _correct(b.by_replicate[shared[0]], split)
        if correct_a is not None and correct_b is not None:
            return mcnemar(correct_a, correct_b)
    if len(a.values(metric, epoch=epoch)) >= 2 and len(b.values(metric, epoch=epoch)) >= 2:
        return welch(a.values(metric, epoch=epoch), b.values(metric, epoch=epoch))
    return None


def higher_is_better(metric: str) -> bool:
    return metric.endswith("acc")


def rank(settings: list[Setting], metric: str = RANK_METRIC) -> list[Setting]:
    """Best mean `metric` first; each other setting tested against the best, Holm-corrected; ties share rank 1."""
    sign = 1 if higher_is_better(metric) else -1
    scored = sorted((s for s in settings if metric in s.estimates), key=lambda s: -sign * s.estimates[metric].mean)
    unscored = [s for s in settings if metric not in s.estimates]
    if not scored:
        return unscored
    best, others = scored[0], scored[1:]
    best.rank = "1"
    tested = [(s, compare(best, s, metric)) for s in others]
    p_values = holm([c.p for _, c in tested if c is not None])
    adjusted = iter(p_values)
    for position, (setting, comparison) in enumerate(tested, start=2):
        setting.versus_best = comparison
        setting.p_holm = next(adjusted) if comparison is not None else None
        setting.rank = "=1" if setting.tied else str(position)
    return scored + unscored


def versus_best_text(setting: Setting, comparisons: int) -> str:
    if setting.rank == "1":
        return "best"
    if setting.versus_best is None:
        return "not tested (no shared evaluation or replicates)" if setting.runs else "-"
    c = setting.versus_best
    verdict = "tied" if setting.tied else "worse"
    holm_note = f", Holm over {comparisons}" if comparisons > 1 else ""
    return f"{verdict} ({c.test}, p={setting.p_holm:.3g}{holm_note})"


def fit_summary(setting: Setting) -> str:
    """A setting's verdict: the single run's, or how many replicates got each verdict."""
    if not setting.runs:
        return "failed: " + " ".join(str(setting.failed[0]["summary"].get("error") or "no reason recorded").split())[:120]
    verdicts = [(r["summary"].get("verdict") or {}) for r in setting.runs]
    fits = [v.get("fit") for v in verdicts if v.get("fit")]
    if not fits:
        return "-"
    if len(setting.runs) == 1:
        reason = str(verdicts[0].get("reason") or "")
        return fits[0] + (f": {reason.split(';')[0]}" if reason else "")
    counts = {fit: fits.count(fit) for fit in dict.fromkeys(fits)}
    top = max(counts, key=counts.get)
    text = f"{top} ({counts[top]} of {len(fits)} replicates)"
    rest = ", ".join(f"{fit} {k}" for fit, k in counts.items() if fit != top)
    failed = f", {len(setting.failed)} failed" if setting.failed else ""
    return text + (f"; {rest}" if rest else "") + failed


def per_class(matrix: list[list[int]]) -> dict[str, list[float | None]]:
    """Precision (of each predicted class) and recall (of each true class) from a confusion matrix."""
    size = len(matrix)
    predicted = [sum(matrix[i][j] for i in range(size)) for j in range(size)]
    true = [sum(row) for row in matrix]
    return {"precision": [matrix[c][c] / predicted[c] if predicted[c] else None for c in range(size)],
            "recall": [matrix[c][c] / true[c] if true[c] else None for c in range(size)], "support": true}
