"""The statistics behind every comparison trainlab prints: intervals, paired tests, Holm's correction.

Everything here is scipy.stats; this module only picks the test that fits the data at hand.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

LEVEL = 0.95  # every interval is a 95% interval
ALPHA = 0.05  # and every test is at the 5% level


def no_spread(values: np.ndarray) -> bool:
    """All equal up to rounding: scipy's t statistics are nan (or noise) for a zero spread."""
    return float(np.ptp(values)) <= 1e-9 * max(1.0, float(np.abs(values).max()))


@dataclass(frozen=True)
class Estimate:
    """A mean with its 95% interval (lo = hi = mean when there is nothing to go on)."""

    mean: float
    lo: float
    hi: float
    n: int
    method: str  # "t" (over replicates), "wilson" (one run's accuracy), or "" (no interval)

    def text(self, digits: int = 3) -> str:
        if self.method == "" or math.isnan(self.lo):
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} [{self.lo:.{digits}f}, {self.hi:.{digits}f}]"


def wilson(correct: int, total: int) -> Estimate:
    """Binomial (Wilson score) interval of one run's accuracy on `total` evaluation samples."""
    interval = stats.binomtest(int(correct), int(total)).proportion_ci(confidence_level=LEVEL, method="wilson")
    return Estimate(correct / total, float(interval.low), float(interval.high), 1, "wilson")


def t_interval(values) -> Estimate:
    """Student t interval of the mean over replicates (no interval from a single value)."""
    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) < 2:
        return Estimate(mean, math.nan, math.nan, len(values), "")
    if no_spread(values):
        return Estimate(mean, mean, mean, len(values), "t")
    interval = stats.ttest_1samp(values, 0.0).confidence_interval(confidence_level=LEVEL)
    return Estimate(mean, float(interval.low), float(interval.high), len(values), "t")


def estimate(values, total: int | None = None, low: float = -math.inf, high: float = math.inf) -> Estimate:
    """Replicates get a t interval, kept inside [low, high]; a single accuracy measured on `total` samples
    gets a Wilson interval, and so do replicates that all agree (no spread to measure): the sampling noise
    of the evaluation set they share.
    """
    values = list(values)
    if total and (len(values) == 1 or no_spread(np.asarray(values, dtype=float))):
        single = wilson(round(values[0] * total), total)
        return Estimate(single.mean, single.lo, single.hi, len(values), "wilson")
    result = t_interval(values)
    if result.method:
        return Estimate(result.mean, max(result.lo, low), min(result.hi, high), result.n, result.method)
    return result


@dataclass(frozen=True)
class Comparison:
    """a - b: its mean, 95% interval, the two-sided p-value and the test that gave it."""

    difference: float
    lo: float
    hi: float
    p: float
    test: str
    n: int


def _difference_interval(differences: np.ndarray) -> tuple[float, float]:
    if len(differences) < 2 or no_spread(differences):
        return float(differences.mean()), float(differences.mean())
    interval = stats.ttest_1samp(differences, 0.0).confidence_interval(confidence_level=LEVEL)
    return float(interval.low), float(interval.high)


def paired_t(a, b) -> Comparison:
    """Paired t-test over replicates that share seed and split (a[i] and b[i] are one pair)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    differences = a - b
    if no_spread(differences):  # equal pairs, or a constant shift
        p = 1.0 if abs(differences.mean()) <= 1e-12 else 0.0
    else:
        p = float(stats.ttest_rel(a, b).pvalue)
    lo, hi = _difference_interval(differences)
    return Comparison(float(differences.mean()), lo, hi, p, "paired t", len(a))


def mcnemar(correct_a, correct_b) -> Comparison:
    """Exact McNemar test on one evaluation set: a binomial test on the samples only one got right."""
    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    p = float(stats.binomtest(only_a, only_a + only_b, 0.5).pvalue) if only_a + only_b else 1.0
    lo, hi = _difference_interval(a.astype(float) - b.astype(float))
    return Comparison(float(a.mean() - b.mean()), lo, hi, p, "McNemar", len(a))


def welch(a, b) -> Comparison:
    """Unpaired comparison of replicates that do not share seeds (Welch's t-test)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    result = stats.ttest_ind(a, b, equal_var=False)
    # nan only when neither group varies and the means are equal (different means give inf and p = 0)
    p = float(result.pvalue) if math.isfinite(result.pvalue) else 1.0
    interval = result.confidence_interval(confidence_level=LEVEL)
    return Comparison(float(a.mean() - b.mean()), float(interval.low), float(interval.high), p, "Welch t", len(a) + len(b))


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment for several comparisons (controls the family-wise error rate)."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted, running = [1.0] * len(p_values), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def gap_is_noise(train_acc: float, val_acc: float, n_train: int, n_val: int) -> tuple[bool, float]:
    """Could sampling noise alone explain train acc above val acc? One-sided Fisher exact test on the counts."""
    train_right, val_right = round(train_acc * n_train), round(val_acc * n_val)
    table = [[train_right, n_train - train_right], [val_right, n_val - val_right]]
    p = float(stats.fisher_exact(table, alternative="greater").pvalue)
    return p >= ALPHA, p
