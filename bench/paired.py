"""Ratios of paired timings with a 95% interval: what every bench's `ratio` line reports.

This machine's speed drifts between minutes by more than the margins the targets ask about, so each repeat
runs both sides back to back, and the ratio is taken within a repeat: the geometric mean of the per-repeat
ratios, with the 95% t interval of their logs (trainlab.stats.t_interval) turned back into ratios.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from trainlab.stats import t_interval


@dataclass(frozen=True)
class PairedRatio:
    """Per-repeat ratios; their geometric mean and its 95% interval (nan with fewer than 2 repeats)."""

    ratios: tuple[float, ...]
    ratio: float
    lo: float
    hi: float

    def verdict(self, target: float) -> str:
        """met: the whole interval at or below `target`; missed: all above; else the run cannot tell."""
        if math.isnan(self.hi):
            return "one repeat: no interval, no verdict"
        if self.hi <= target:
            return "met"
        if self.lo > target:
            return "missed"
        return "inside the noise: the interval holds the target"

    def text(self, target: float | None = None) -> str:
        line = (f"pairs {' '.join(f'{r:.3f}' for r in self.ratios)}; "
                f"95% interval [{self.lo:.3f}, {self.hi:.3f}]")
        return f"{line}: {self.verdict(target)} (target <= {target})" if target else line


def paired_ratio(num: list[float], den: list[float]) -> PairedRatio:
    """`num[i] / den[i]` for each repeat i (both sides timed minutes apart at most): the drift between repeats cancels."""
    ratios = tuple(a / b for a, b in zip(num, den, strict=True))
    logs = t_interval(np.log(ratios))
    return PairedRatio(ratios, math.exp(logs.mean), math.exp(logs.lo), math.exp(logs.hi))
