"""trainlab.stats against closed forms and scipy's other entry points, on fixed inputs."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sp

from trainlab.stats import Estimate, estimate, gap_is_noise, holm, mcnemar, no_spread, paired_t, t_interval, welch, wilson


def test_wilson_interval_matches_the_closed_form():
    correct, total, z = 472, 500, sp.norm.ppf(0.975)
    p = correct / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z / (1 + z * z / total) * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
    result = wilson(correct, total)
    assert (result.lo, result.hi) == pytest.approx((centre - half, centre + half), abs=1e-12)
    assert result.mean == p and result.method == "wilson"
    assert result.text() == "0.944 [0.920, 0.961]"  # the "+-0.02 on 500 samples"


def test_t_interval_matches_scipy_t_distribution():
    values = [0.94, 0.95, 0.93, 0.96, 0.945]
    expected = sp.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=sp.sem(values))
    result = t_interval(values)
    assert (result.lo, result.hi) == pytest.approx(expected, abs=1e-12) and result.n == 5


def test_single_value_has_no_t_interval_but_a_single_accuracy_has_wilson():
    assert t_interval([0.9]).method == "" and t_interval([0.9]).text() == "0.900"
    assert estimate([0.944], total=500) == wilson(472, 500)


def test_identical_replicates_fall_back_to_the_evaluation_noise():
    result = estimate([0.9, 0.9, 0.9], total=100)
    assert result.n == 3 and (result.lo, result.hi) == (wilson(90, 100).lo, wilson(90, 100).hi)


def test_accuracy_interval_is_kept_inside_zero_one():
    result = estimate([0.99, 0.5], total=100, low=0.0, high=1.0)
    assert result.lo == 0.0 and result.hi == 1.0


def test_paired_t_matches_ttest_rel():
    a, b = [0.95, 0.94, 0.96, 0.93, 0.95], [0.92, 0.93, 0.93, 0.91, 0.94]
    result = paired_t(a, b)
    assert result.p == pytest.approx(sp.ttest_rel(a, b).pvalue, abs=1e-12)
    assert result.difference == pytest.approx(0.02) and result.test == "paired t" and result.n == 5
    interval = sp.ttest_1samp(np.subtract(a, b), 0.0).confidence_interval(confidence_level=0.95)
    assert (result.lo, result.hi) == pytest.approx((interval.low, interval.high), abs=1e-12)
    assert paired_t(b, a).difference == pytest.approx(-0.02)  # a - b, in that order
    two = paired_t([0.95, 0.93], [0.90, 0.91])  # the fewest pairs a t interval takes (1 degree of freedom)
    interval = sp.ttest_1samp([0.05, 0.02], 0.0).confidence_interval(confidence_level=0.95)
    assert (two.lo, two.hi) == pytest.approx((interval.low, interval.high), abs=1e-12) and two.lo < 0 < two.hi


def test_paired_t_with_no_spread_in_the_differences():
    assert paired_t([0.9, 0.8], [0.9, 0.8]).p == 1.0
    shift = paired_t([0.9, 0.8, 0.7], [0.8, 0.7, 0.6])  # a constant shift: an interval of one point, not nan
    assert shift.p == 0.0 and (shift.lo, shift.hi) == pytest.approx((0.1, 0.1), abs=1e-12)


@pytest.mark.parametrize(("values", "flat"), [
    ([0.5, 0.5], True), ([0.5, 0.5 + 0.5e-9], True), ([0.5, 0.5 + 1.5e-9], False),  # absolute below 1
    ([1000.0, 1000.0 + 1e-7], True), ([1000.0, 1000.0 + 2e-6], False),  # relative above 1
])
def test_no_spread_is_equality_up_to_rounding(values, flat):
    assert no_spread(np.array(values)) is flat


def test_mcnemar_is_the_exact_binomial_on_discordant_samples():
    a = np.array([1] * 80 + [1] * 15 + [0] * 5, dtype=bool)  # 15 only a got right, 5 only b
    b = np.array([1] * 80 + [0] * 15 + [1] * 5, dtype=bool)
    expected = min(1.0, 2 * sum(math.comb(20, k) for k in range(15, 21)) / 2**20)
    result = mcnemar(a, b)
    assert result.p == pytest.approx(expected, abs=1e-12) and result.test == "McNemar"
    assert result.difference == pytest.approx(0.10)
    assert mcnemar(a, a).p == 1.0  # no discordant sample: nothing to tell apart


def test_welch_matches_ttest_ind():
    a, b = [0.9, 0.92, 0.91], [0.85, 0.88, 0.86, 0.87]
    reference = sp.ttest_ind(a, b, equal_var=False)
    result = welch(a, b)
    assert result.p == pytest.approx(reference.pvalue, abs=1e-12)
    interval = reference.confidence_interval(confidence_level=0.95)
    assert (result.lo, result.hi) == pytest.approx((interval.low, interval.high), abs=1e-12)
    assert result.difference == pytest.approx(0.91 - 0.865) and result.n == 7 and result.test == "Welch t"
    assert welch(b, a).difference == pytest.approx(0.865 - 0.91)


def test_welch_without_spread_decides_by_the_means():
    # No spread in either group: scipy's statistic is nan; equal means are no difference, others a sure one.
    assert welch([0.9, 0.9], [0.9, 0.9]).p == 1.0
    assert welch([0.9, 0.9], [0.8, 0.8]).p == 0.0  # scipy: an infinite statistic
    assert welch([0.8, 0.8], [0.9, 0.9]).p == 0.0


def test_holm_step_down():
    # sorted 0.01, 0.03, 0.04 -> 3 x 0.01, 2 x 0.03, max(0.06, 1 x 0.04)
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([]) == []


def test_gap_is_noise_is_a_one_sided_fisher_test():
    noise, p = gap_is_noise(0.96, 0.90, 50, 50)
    assert noise and p == pytest.approx(sp.fisher_exact([[48, 2], [45, 5]], alternative="greater").pvalue)
    assert not gap_is_noise(0.96, 0.90, 500, 500)[0]
    assert gap_is_noise(0.90, 0.96, 500, 500)[0], "val above train is never overfitting"


def test_mcnemar_takes_0_1_lists_and_gives_the_interval_of_the_per_sample_differences():
    a = [1] * 80 + [1] * 15 + [0] * 5
    b = [1] * 80 + [0] * 15 + [1] * 5
    result = mcnemar(a, b)
    assert result == mcnemar(np.array(a, dtype=bool), np.array(b, dtype=bool))
    reference = sp.ttest_1samp(np.array(a, float) - np.array(b, float), 0.0).confidence_interval(confidence_level=0.95)
    assert (result.lo, result.hi) == pytest.approx((reference.low, reference.high), abs=1e-12)
    assert result.n == 100 and result.lo < result.difference < result.hi


def test_t_interval_of_one_value_has_no_interval_and_of_equal_values_a_point():
    one = t_interval([0.5])
    assert (one.mean, one.n, one.method) == (0.5, 1, "") and math.isnan(one.lo) and math.isnan(one.hi)
    assert t_interval([0.5, 0.5, 0.5]) == Estimate(0.5, 0.5, 0.5, 3, "t")
    assert estimate([0.2, 0.4, 0.3], low=0.25).n == 3
