"""bench/paired.py: the interval behind every bench's `ratio` line, on fixed timings (no clock is read here)."""
from __future__ import annotations

import functools
import math
import threading

import numpy as np
import pytest
from scipy import stats as sp

from bench.paired import paired_ratio


def test_the_ratio_is_the_geometric_mean_of_each_repeats_own_ratio():
    # The second side drifts 2x slower in the last repeat; pairing keeps the ratio at 1.1 throughout.
    estimate = paired_ratio([1.1, 1.1 * 2], [1.0, 2.0])
    assert estimate.ratios == pytest.approx((1.1, 1.1))
    assert (estimate.ratio, estimate.lo, estimate.hi) == pytest.approx((1.1, 1.1, 1.1))


def test_the_interval_is_the_t_interval_of_the_log_ratios():
    num, den = [1.02, 1.10, 0.97, 1.08], [1.0, 1.0, 1.0, 1.0]
    logs = np.log(num)
    lo, hi = sp.t.interval(0.95, len(logs) - 1, loc=logs.mean(), scale=sp.sem(logs))
    estimate = paired_ratio(num, den)
    assert (estimate.ratio, estimate.lo, estimate.hi) == pytest.approx((math.exp(logs.mean()), math.exp(lo), math.exp(hi)))


@pytest.mark.parametrize(("num", "target", "verdict"), [
    ([1.01, 1.02, 1.03], 1.05, "met"),
    ([1.07, 1.08, 1.09], 1.05, "missed"),
    ([0.95, 1.05, 1.15], 1.05, "inside the noise: the interval holds the target"),
    ([1.01], 1.05, "one repeat: no interval, no verdict"),
])
def test_a_target_is_met_or_missed_only_when_the_whole_interval_says_so(num, target, verdict):
    estimate = paired_ratio(num, [1.0] * len(num))
    assert estimate.verdict(target) == verdict
    assert estimate.text(target).endswith(f"{verdict} (target <= {target})")


def test_unpaired_timings_are_refused():
    with pytest.raises(ValueError):
        paired_ratio([1.0, 1.0], [1.0])


@pytest.mark.parametrize(("epochs", "order"), [
    ((3, 3), [(0, 0), (1, 0), (0, 1), (1, 1), (0, 2), (1, 2)]),
    ((1, 3), [(0, 0), (1, 0), (1, 1), (1, 2)]),  # a side that stops early (early stopping) leaves the others going
])
def test_lockstep_sides_take_turns_epoch_by_epoch(epochs, order):
    from bench.speed import Baton  # imports Lightning: here, not for the tests above

    baton, timeline = Baton(len(epochs)), []

    def side(index: int) -> None:
        for epoch in range(epochs[index]):
            baton.next_epoch()
            timeline.append((index, epoch))  # only the side holding the baton runs here

    threads = [threading.Thread(target=baton.run, args=(i, functools.partial(side, i)), daemon=True)
               for i in range(len(epochs))]  # daemons: a hang fails the test instead of blocking the suite
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert timeline == order and baton.epochs_started == list(epochs)
