"""Settings, ties and claims on constructed runs: each claim kind reaches each of its outcomes."""
from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from trainlab import CONF
from trainlab.errors import ConfigError
from trainlab.stats import Comparison, Estimate
from trainlab.study import claims
from trainlab.study.claims import _against_value, _needed, check, evaluate
from trainlab.study.compare import METRICS, Setting, group_settings, rank
from trainlab.study.report import add_combinations

from conftest import fake_run, run_cli

SEEDS = (1, 2, 3, 4, 5)
JITTER = (-0.004, 0.002, 0.0, 0.003, -0.001)  # seed-to-seed noise shared by paired replicates


def replicated(tmp_path, overrides: list[str], mean: float, spread: float = 1.0, **kwargs) -> list[dict]:
    """Replicates whose test acc (what claims judge) is their val acc."""
    return [fake_run(tmp_path, overrides, s, mean + spread * j, test_acc=mean + spread * j, **kwargs)
            for s, j in zip(SEEDS, JITTER, strict=True)]


def settings(runs: list[dict]):
    add_combinations(runs)
    return rank(group_settings(runs))


def outcome(runs: list[dict], **claim) -> dict:
    (record,) = evaluate([{"text": "a claim", "source": "000", **claim}], settings(runs))
    return record


ADAM, SGD = ["optim=adam"], ["optim=sgd"]


@pytest.mark.parametrize("adam, sgd, expected", [
    (0.95, 0.90, "reproduced"), (0.90, 0.95, "contradicted")])
def test_better_is_decided_by_a_paired_test(tmp_path, adam, sgd, expected):
    runs = replicated(tmp_path, ADAM, adam) + replicated(tmp_path, SGD, sgd)
    record = outcome(runs, kind="better", setting={"optim": "adam"}, than={"optim": "sgd"}, metric="test/acc")
    assert record["outcome"] == expected and "paired t" in record["evidence"]


def test_better_inside_the_noise_is_not_significant_and_says_what_was_needed(tmp_path):
    sgd = [fake_run(tmp_path, SGD, s, 0.95 - 3 * j, test_acc=0.95 - 3 * j) for s, j in zip(SEEDS, JITTER, strict=True)]
    runs = replicated(tmp_path, ADAM, 0.951) + sgd
    record = outcome(runs, kind="better", setting={"optim": "adam"}, than={"optim": "sgd"}, metric="test/acc")
    assert record["outcome"] == "not significant" and "or narrower was needed" in record["evidence"]


def test_lower_loss_is_better(tmp_path):
    runs = replicated(tmp_path, ADAM, 0.95, val_loss=0.2) + replicated(tmp_path, SGD, 0.95, val_loss=0.2)
    for run in runs[:5]:
        run["metrics"]["test/loss"] = 0.1 + 0.01 * run["replicate"][0]
    for run in runs[5:]:
        run["metrics"]["test/loss"] = 0.4 + 0.012 * run["replicate"][0]
    record = outcome(runs, kind="better", setting={"optim": "adam"}, than={"optim": "sgd"}, metric="test/loss")
    assert record["outcome"] == "reproduced"


@pytest.mark.parametrize("kind, value, mean, expected", [
    ("above", 0.9, 0.95, "reproduced"), ("above", 0.9, 0.85, "contradicted"), ("above", 0.9, 0.9, "not significant"),
    ("below", 0.9, 0.85, "reproduced"), ("below", 0.9, 0.95, "contradicted"), ("below", 0.9, 0.9, "not significant"),
    ("near", 0.1, 0.1, "reproduced"), ("near", 0.1, 0.3, "contradicted"), ("near", 0.1, 0.147, "not significant")])
def test_claims_against_a_value_use_the_interval(tmp_path, kind, value, mean, expected):
    runs = replicated(tmp_path, ADAM, mean) + replicated(tmp_path, SGD, 0.5)
    claim = {"kind": kind, "setting": {"optim": "adam"}, "metric": "test/acc", "value": value, "tolerance": 0.05}
    assert outcome(runs, **claim)["outcome"] == expected


def test_single_run_is_judged_on_its_wilson_interval(tmp_path):
    runs = [fake_run(tmp_path, ADAM, 1, 0.944, test_acc=0.944), fake_run(tmp_path, SGD, 1, 0.5)]
    record = outcome(runs, kind="above", setting={"optim": "adam"}, metric="test/acc", value=0.93)
    assert record["outcome"] == "not significant" and "0.944 [0.920, 0.961] (n=1, Wilson interval)" in record["evidence"]


@pytest.mark.parametrize("bf16, expected", [(0.9502, "reproduced"), (0.90, "contradicted"), (0.942, "not significant")])
def test_same_is_an_equivalence_claim(tmp_path, bf16, expected):
    runs = replicated(tmp_path, ["precision=32-true"], 0.95) + replicated(tmp_path, ["precision=bf16-mixed"], bf16, spread=3)
    record = outcome(runs, kind="same", setting={"precision": "bf16-mixed"}, than={"precision": "32-true"},
                     metric="test/acc", tolerance=0.01)
    assert record["outcome"] == expected


@pytest.mark.parametrize("relu, expected", [(0.96, "reproduced"), (0.9505, "not significant"), (0.90, "contradicted")])
def test_best_admits_ties(tmp_path, relu, expected):
    runs = (replicated(tmp_path, ["activation=relu"], relu) + replicated(tmp_path, ["activation=tanh"], 0.95, spread=-1)
            + replicated(tmp_path, ["activation=sigmoid"], 0.80))
    record = outcome(runs, kind="best", setting={"activation": "relu"}, metric="test/acc")
    assert record["outcome"] == expected


def curve(turns: bool) -> list[dict]:
    val = [0.5, 0.3, 0.35, 0.45] if turns else [0.5, 0.3, 0.25, 0.2]
    return [{"epoch": i, "val/loss": v, "train/loss": 0.4 / (i + 1), "val/acc": 0.9, "train/acc": 0.95}
            for i, v in enumerate(val)]


@pytest.mark.parametrize("turning, expected", [(5, "reproduced"), (0, "contradicted"), (3, "not significant")])
def test_turn_is_judged_by_the_rise_after_the_mean_minimum_over_replicates(tmp_path, turning, expected):
    # 3 of 5 turning: the mean curve is lowest at epoch 1; rises +50% (3) and -33% (2): the interval holds 0.
    runs = [fake_run(tmp_path, ADAM, s, 0.9, history=curve(i < turning)) for i, s in enumerate(SEEDS)]
    record = outcome(runs, kind="turn", setting={})
    assert record["outcome"] == expected and record["epoch"] == "last"


def test_small_rises_in_every_replicate_are_a_turn(tmp_path):
    # BBC News under imdb_overfit: every run's val loss rose 0.3-2.2%, which a fixed 2% rule called no turn.
    rises = (0.003, 0.008, 0.012, 0.018, 0.022)
    runs = [fake_run(tmp_path, ADAM, s, 0.9, history=[
        {"epoch": 0, "val/loss": 0.5, "train/loss": 0.6}, {"epoch": 1, "val/loss": 0.2, "train/loss": 0.2},
        {"epoch": 2, "val/loss": 0.2 * (1 + r), "train/loss": 0.1}]) for s, r in zip(SEEDS, rises, strict=True)]
    record = outcome(runs, kind="turn", setting={})
    assert record["outcome"] == "reproduced" and "val loss +1.3% [" in record["evidence"]


def test_a_val_loss_that_rises_with_the_train_loss_is_no_turn(tmp_path):
    history = [{"epoch": 0, "val/loss": 0.3, "train/loss": 0.2}, {"epoch": 1, "val/loss": 0.4, "train/loss": 0.3}]
    runs = [fake_run(tmp_path, ADAM, s, 0.9, history=history) for s in SEEDS]
    assert outcome(runs, kind="turn", setting={})["outcome"] == "contradicted"


def test_claim_on_a_setting_the_sweep_did_not_run(tmp_path):
    runs = replicated(tmp_path, ADAM, 0.95) + replicated(tmp_path, SGD, 0.9)
    record = outcome(runs, kind="better", setting={"optim": "rmsprop"}, than={"optim": "sgd"}, metric="test/acc")
    assert record["outcome"] == "not run"


@pytest.mark.parametrize("claim, key, says", [
    ({"kind": "better", "setting": {"optim": "adam"}, "than": {"optim": "sgd"}, "metric": "val/accuracy"},
     "claims[0].metric", "unknown metric 'val/accuracy'; use one of val/acc, "),
    ({"kind": "beats", "setting": {"optim": "adam"}}, "claims[0].kind",
     "unknown kind 'beats'; use one of better, same, best, above, below, near, turn"),
    ({"kind": "better", "setting": {"optimizer": "adam"}, "than": {"optim": "sgd"}, "metric": "test/acc"},
     "claims[0].setting.optimizer", "this sweep does not vary 'optimizer' (it varies optim)"),
    ({"kind": "above", "setting": {"optim": "adam"}, "metric": "test/acc"}, "claims[0].value",
     "a 'above' claim needs value"),
    ({"kind": "best", "setting": {"optim": "adam"}, "metric": "val/acc"}, "claims[0].metric",
     "val/acc chose the best checkpoint, so it cannot judge it; use test/acc, or read the last epoch with epoch: last"),
    ({"kind": "best", "setting": {"optim": "adam"}, "metric": "train/acc"}, "claims[0].metric",
     "a 'best' claim must use it"),
    ({"kind": "above", "setting": {"optim": "adam"}, "metric": "test/acc", "value": 0.9, "epoch": "final"},
     "claims[0].epoch", "unknown epoch 'final' for a 'above' claim; use best or last"),
    ({"kind": "above", "setting": {"optim": "adam"}, "metric": "test/acc", "value": 0.9, "epoch": "last"},
     "claims[0].metric", "test/acc is measured for the tested checkpoint only; use epoch: best, or val/acc"),
    ({"kind": "turn", "setting": {}, "epoch": "best"}, "claims[0].epoch", "use last (a turn reads the final epochs)"),
    ({"kind": "better", "setting": {"optim": "adam"}, "than": {"optim": "sgd"}, "metric": "test/acc", "floor": 50},
     "claims[0].floor", "must be a test accuracy in [0, 1], got 50")])
def test_bad_claims_name_the_key(tmp_path, claim, key, says):
    runs = replicated(tmp_path, ADAM, 0.95) + replicated(tmp_path, SGD, 0.9)
    with pytest.raises(ConfigError, match=rf"^{key.replace('[', '.').replace(']', '.')}: ") as error:
        evaluate([{"text": "bad", **claim}], settings(runs))
    assert says in str(error.value)


def test_turn_minimum_epochs_skip_epochs_without_a_val_loss(tmp_path):
    history = [{"epoch": 0, "train/loss": 0.9}, *curve(True)[1:]]  # a row of training metrics only
    record = outcome([fake_run(tmp_path, ADAM, 1, 0.9, history=history)], kind="turn", setting={})
    assert record["evidence"].startswith("from epoch 1 (lowest mean val loss)")
    assert record["outcome"] == "not significant" and "one run and no interval" in record["evidence"]


def test_replicates_pool_into_one_setting_ranked_with_ties(tmp_path):
    runs = (replicated(tmp_path, ["activation=relu"], 0.95) + replicated(tmp_path, ["activation=tanh"], 0.9502, spread=-1)
            + replicated(tmp_path, ["activation=sigmoid"], 0.50))
    ranked = settings(runs)
    assert [(s.name, s.n, s.rank) for s in ranked] == [
        ("activation=tanh", 5, "1"), ("activation=relu", 5, "=1"), ("activation=sigmoid", 5, "3")]
    assert ranked[1].versus_best.test == "paired t" and ranked[1].p_holm >= 0.05 > ranked[2].p_holm
    assert ranked[0].estimates["val/acc"].method == "t"


def test_single_runs_are_compared_by_mcnemar_on_saved_predictions(tmp_path):
    runs = [fake_run(tmp_path, ADAM, 1, 0.95), fake_run(tmp_path, SGD, 1, 0.90)]
    labels = np.arange(500) % 10
    for run, wrong in zip(runs, (25, 50), strict=True):
        predicted = labels.copy()
        predicted[:wrong] = (predicted[:wrong] + 1) % 10
        np.savez(run["dir"] / "predictions.npz", val_predicted=predicted, val_label=labels,
                 test_predicted=predicted, test_label=labels)
    ranked = settings(runs)
    assert ranked[1].versus_best.test == "McNemar" and ranked[1].rank == "2"  # 25 discordant samples, all one way
    assert ranked[1].versus_best.difference == pytest.approx(0.05)


def test_settings_evaluated_on_different_samples_are_refused(tmp_path):
    runs = [fake_run(tmp_path, ["data.val_fraction=0.1"], 1, 0.95, fingerprint="a"),
            fake_run(tmp_path, ["data.val_fraction=0.2"], 1, 0.90, fingerprint="b")]
    with pytest.raises(ConfigError, match=r"^data.val_fraction: .* evaluated on different samples"):
        settings(runs)


def estimated(mean: float, lo: float, hi: float, n: int = 5, method: str = "t") -> Setting:
    return Setting("optim=adam", {"optim": "adam"}, estimates={"val/acc": Estimate(mean, lo, hi, n, method)})


# Exact evidence, and intervals that touch the bounds: equality counts as inside (near) and as not beyond (above/below).
@pytest.mark.parametrize(("kind", "value", "interval", "expected", "evidence"), [
    ("above", 0.9, (0.95, 0.92, 0.98), "reproduced", "val/acc 0.950 [0.920, 0.980] (n=5, t interval) is above 0.9"),
    ("above", 0.9, (0.86, 0.84, 0.88), "contradicted", "val/acc 0.860 [0.840, 0.880] (n=5, t interval) is below 0.9"),
    ("above", 0.9, (0.92, 0.9, 0.94), "not significant",
     "val/acc 0.920 [0.900, 0.940] (n=5, t interval) includes 0.9; an interval of +-0.020 or narrower was needed "
     "(about 1x the samples or replicates)"),
    ("above", 0.9, (0.88, 0.86, 0.9), "not significant", None),
    ("below", 0.9, (0.85, 0.8, 0.88), "reproduced", "val/acc 0.850 [0.800, 0.880] (n=5, t interval) is below 0.9"),
    ("below", 0.9, (0.95, 0.92, 0.98), "contradicted", "val/acc 0.950 [0.920, 0.980] (n=5, t interval) is above 0.9"),
    ("below", 0.9, (0.88, 0.86, 0.9), "not significant", None),
    ("below", 0.9, (0.92, 0.9, 0.94), "not significant", None),
    ("near", 0.5, (0.5, 0.25, 0.75), "reproduced", "val/acc 0.500 [0.250, 0.750] (n=5, t interval) lies within 0.5 +- 0.25"),
    ("near", 0.5, (0.875, 0.75, 1.0), "not significant",
     "val/acc 0.875 [0.750, 1.000] (n=5, t interval) straddles 0.5 +- 0.25; no interval width would decide it "
     "at this mean"),
    ("near", 0.5, (0.125, 0.0, 0.25), "not significant", None),
    ("near", 0.5, (0.625, 0.5, 0.875), "not significant",
     "val/acc 0.625 [0.500, 0.875] (n=5, t interval) straddles 0.5 +- 0.25; an interval of +-0.125 or narrower was "
     "needed (about 2.2x the samples or replicates)"),
    ("near", 0.5, (0.9, 0.8, 1.0), "contradicted",
     "val/acc 0.900 [0.800, 1.000] (n=5, t interval) lies outside 0.5 +- 0.25"),
    ("near", 0.5, (0.1, 0.0, 0.2), "contradicted", None),
])
def test_against_a_value_at_and_beyond_the_bounds(kind, value, interval, expected, evidence):
    claim = {"kind": kind, "metric": "val/acc", "value": value, "tolerance": 0.25}
    result = _against_value(claim, estimated(*interval))
    assert result[0] == expected
    if evidence is not None:
        assert result[1] == evidence


def test_against_a_value_names_the_interval_it_used():
    claim = {"kind": "above", "metric": "val/acc", "value": 0.5}
    assert "(n=1, Wilson interval) is above" in _against_value(claim, estimated(0.9, 0.8, 0.95, 1, "wilson"))[1]
    assert _against_value(claim, estimated(0.9, 0.9, 0.9, 1, "")) == (
        "not significant", "val/acc 0.900 (n=1, no interval): one run and no sampling interval for val/acc; add replicates")
    assert _against_value({**claim, "metric": "val/loss"}, estimated(0.9, 0.8, 0.95)) == (
        "not significant", "no val/loss recorded")


def test_turn_evidence_names_the_epoch_and_both_changes(tmp_path):
    runs = [fake_run(tmp_path, ADAM, s, 0.9, history=curve(True)) for s in SEEDS[:3]]
    record = outcome(runs, kind="turn", setting={})
    assert record["evidence"] == ("from epoch 1 (lowest mean val loss) to the last: val loss +50.0% [+50.0%, +50.0%], "
                                  "train loss -50.0% [-50.0%, -50.0%] (n=3)")


def test_needed_interval_and_sample_factor():
    assert _needed(0.04, 0.02) == "an interval of +-0.020 or narrower was needed (about 4x the samples or replicates)"
    assert _needed(0.04, 0.0) == _needed(0.04, -0.01) == "no interval width would decide it at this mean"


def judged_vs(monkeypatch, comparison: Comparison | None, kind: str = "better", metric: str = "val/acc",
              a: Setting | None = None) -> tuple[str, str]:
    monkeypatch.setattr(claims, "compare", lambda *_: comparison)
    b = Setting("optim=sgd", {"optim": "sgd"}, estimates={m: Estimate(0.9, 0.88, 0.92, 5, "t") for m in METRICS})
    a = a or Setting("optim=adam", {"optim": "adam"},
                     estimates={m: Estimate(0.95, 0.94, 0.96, 5, "t") for m in METRICS})
    return claims._vs({"kind": kind, "metric": metric, "tolerance": 0.02}, a, b)


HEAD = "val/acc 0.950 [0.940, 0.960] vs 0.900 [0.880, 0.920]: difference "


@pytest.mark.parametrize(("kind", "metric", "numbers", "expected", "evidence"), [
    ("same", "val/acc", (0.0, -0.02, 0.02, 0.5), "reproduced",
     HEAD + "+0.000 [-0.020, +0.020], paired t p=0.5; interval within +-0.02"),
    ("same", "val/acc", (0.03, 0.02, 0.05, 0.01), "not significant", None),
    ("same", "val/acc", (-0.03, -0.05, -0.02, 0.01), "not significant", None),
    ("same", "val/acc", (0.01, -0.01, 0.05, 0.3), "not significant",
     HEAD + "+0.010 [-0.010, +0.050], paired t p=0.3; an interval of +-0.010 or narrower was needed "
     "(about 9x the samples or replicates)"),
    ("same", "val/acc", (0.05, 0.03, 0.07, 0.01), "contradicted",
     HEAD + "+0.050 [+0.030, +0.070], paired t p=0.01; interval outside +-0.02"),
    ("same", "val/acc", (-0.05, -0.07, -0.03, 0.01), "contradicted", None),
    ("better", "val/acc", (0.05, 0.03, 0.07, 0.01), "reproduced", HEAD + "+0.050 [+0.030, +0.070], paired t p=0.01"),
    ("better", "val/acc", (0.0, 0.0, 0.0, 0.01), "contradicted", None),
    ("better", "val/acc", (0.05, 0.03, 0.07, 0.05), "not significant",
     HEAD + "+0.050 [+0.030, +0.070], paired t p=0.05; an interval of +-0.050 or narrower was needed "
     "(about 0.16x the samples or replicates)"),
    ("better", "val/loss", (0.0, 0.0, 0.0, 0.01), "contradicted", None),
    ("better", "val/loss", (0.5, 0.4, 0.6, 0.01), "contradicted", None),
    ("better", "val/loss", (-0.5, -0.6, -0.4, 0.01), "reproduced", None),
])
def test_versus_at_and_beyond_the_bounds(monkeypatch, kind, metric, numbers, expected, evidence):
    result = judged_vs(monkeypatch, Comparison(*numbers, "paired t", 5), kind, metric)
    assert result[0] == expected
    if evidence is not None:
        assert result[1] == evidence


def test_versus_without_a_test_or_an_estimate_asks_for_replicates(monkeypatch):
    said = ("not significant", "optim=adam vs optim=sgd: no test possible (one run each and no per-sample val/acc); "
                               "add replicates")
    assert judged_vs(monkeypatch, None) == said
    bare = Setting("optim=adam", {"optim": "adam"})
    assert judged_vs(monkeypatch, Comparison(0.05, 0.03, 0.07, 0.01, "paired t", 5), a=bare) == said


def test_best_evidence_names_the_ties_and_the_test():
    def setting(name, mean, p_holm=None, versus=None):
        return Setting(name, {"optim": name}, estimates={"val/acc": Estimate(mean, mean - 0.01, mean + 0.01, 5, "t")},
                       p_holm=p_holm, versus_best=versus)
    versus = Comparison(0.01, -0.01, 0.03, 0.2, "paired t", 5)
    top, second, third = setting("adam", 0.95), setting("sgd", 0.94, 0.3, versus), setting("rmsprop", 0.9)
    claim = {"metric": "val/acc"}
    assert claims._best(claim, top, [top, second, third]) == (
        "not significant", "first on val/acc (0.950 [0.940, 0.960]) but tied with sgd")
    third.p_holm = 0.4
    assert claims._best(claim, top, [top, second, third])[1].endswith("tied with sgd, rmsprop")
    third.p_holm = None
    assert claims._best(claim, third, [top, second, third]) == (
        "contradicted", "val/acc 0.900 [0.890, 0.910] is below the first, adam (0.950 [0.940, 0.960]; untested)")
    third.versus_best, third.p_holm = Comparison(0.05, 0.03, 0.07, 0.004, "McNemar", 500), 0.008
    assert claims._best(claim, third, [top, second, third]) == (
        "contradicted", "val/acc 0.900 [0.890, 0.910] is below the first, adam (0.950 [0.940, 0.960]; "
                        "McNemar p=0.008, Holm)")
    assert claims._best(claim, second, [top, second, third]) == (
        "not significant", "val/acc 0.940 [0.930, 0.950] is tied with the first, adam (0.950 [0.940, 0.960]; "
                           "paired t p=0.3, Holm)")


@pytest.mark.parametrize(("claim", "evidence"), [
    ({"setting": {"optim": "rmsprop"}, "than": {"optim": "sgd"}},
     "0 completed settings of this sweep match setting {'optim': 'rmsprop'}; exactly one is needed"),
    ({"setting": {"optim": "adam"}, "than": {"optim": "rmsprop"}},
     "0 completed settings of this sweep match than {'optim': 'rmsprop'}; exactly one is needed"),
    ({"setting": {}, "than": {"optim": "sgd"}},
     "3 completed settings of this sweep match setting {}; exactly one is needed"),
])
def test_claims_on_settings_that_did_not_complete_say_which_side(tmp_path, claim, evidence):
    failed = fake_run(tmp_path, ["optim=momentum"], 1, 0.1)
    failed["failed"] = True
    runs = [*replicated(tmp_path, ADAM, 0.95), *replicated(tmp_path, SGD, 0.9), failed,
            fake_run(tmp_path, ["optim=adamw"], 1, 0.93)]
    record = outcome(runs, kind="better", metric="test/acc", **claim)
    assert record["outcome"] == "not run" and record["evidence"] == evidence


def test_a_claims_record_keeps_what_it_states(tmp_path):
    ranked = settings(replicated(tmp_path, ADAM, 0.95) + replicated(tmp_path, SGD, 0.9))
    claim = {"text": "t", "source": "003", "kind": "same", "setting": {"optim": "adam"}, "than": {"optim": "sgd"},
             "metric": "test/acc", "tolerance": 0.5}
    (record,) = evaluate([claim], ranked)
    assert {k: v for k, v in record.items() if k not in ("outcome", "evidence")} == {**claim, "epoch": "best"}
    above = {"text": "t", "kind": "above", "setting": {"optim": "adam"}, "metric": "test/acc", "value": 0.9}
    (record,) = evaluate([{**above, "epoch": "best", "floor": 0.5}], ranked)
    assert {k: v for k, v in record.items() if k not in ("outcome", "evidence")} == {**above, "epoch": "best",
                                                                                     "floor": 0.5}
    (record,) = evaluate([{"text": "t", "kind": "turn", "setting": {"optim": "adam"}}], ranked)
    assert set(record) == {"text", "kind", "setting", "epoch", "outcome", "evidence"}


@pytest.mark.parametrize(("claim", "says"), [
    ({"kind": "better", "setting": {"optim": "adam"}, "than": {"optimizer": "sgd"}, "metric": "test/acc"},
     "claims.0..than.optimizer: this sweep does not vary 'optimizer' \\(it varies activation, optim\\)"),
])
def test_claims_may_name_only_swept_keys_on_either_side(tmp_path, claim, says):
    runs = replicated(tmp_path, ["optim=adam", "activation=relu"], 0.95) + replicated(tmp_path, SGD, 0.9)
    with pytest.raises(ConfigError, match=says):
        evaluate([{"text": "bad", **claim}], settings(runs))


def test_a_sweep_that_varies_nothing_says_so(tmp_path):
    with pytest.raises(ConfigError, match=r"it varies nothing\); name a swept key"):
        evaluate([{"text": "x", "kind": "turn", "setting": {"optim": "adam"}}],
                 settings([fake_run(tmp_path, [], 1, 0.9)]))


def test_claims_are_judged_on_test_where_val_and_test_disagree(tmp_path):
    # val (which chose the checkpoints) prefers adam; the test split, which judges, prefers sgd.
    runs = ([fake_run(tmp_path, ADAM, s, 0.95 + j, test_acc=0.90 + j) for s, j in zip(SEEDS, JITTER, strict=True)]
            + [fake_run(tmp_path, SGD, s, 0.90 + j, test_acc=0.95 + j) for s, j in zip(SEEDS, JITTER, strict=True)])
    record = outcome(runs, kind="better", setting={"optim": "adam"}, than={"optim": "sgd"}, metric="test/acc")
    assert record["outcome"] == "contradicted"
    assert [s.name for s in settings(runs)] == ["optim=sgd", "optim=adam"]  # ranked on test too


def ending(best_loss: float, last_loss: float) -> list[dict]:
    return [{"epoch": 0, "val/loss": 0.5, "train/loss": 0.5, "val/acc": 0.9, "train/acc": 0.9},
            {"epoch": 1, "val/loss": best_loss, "train/loss": 0.3, "val/acc": 0.95, "train/acc": 0.95},
            {"epoch": 2, "val/loss": last_loss, "train/loss": 0.2, "val/acc": 0.94, "train/acc": 0.97}]


def test_a_claim_about_the_end_reads_the_last_epoch(tmp_path):
    # lr 1.0 reaches the lower val loss at its best epoch but ends far above lr 0.1.
    runs = []
    for s, j in zip(SEEDS, JITTER, strict=True):
        low, high = fake_run(tmp_path, ["optim.lr=0.1"], s, 0.95, history=ending(0.20 + j, 0.21 + j)), \
            fake_run(tmp_path, ["optim.lr=1.0"], s, 0.95, history=ending(0.15 + j, 0.60 + j))
        low["metrics"]["val/loss"], high["metrics"]["val/loss"] = 0.20 + j, 0.15 + j  # at the tested checkpoint
        runs += [low, high]
    claim = {"kind": "better", "setting": {"optim.lr": "0.1"}, "than": {"optim.lr": "1.0"}, "metric": "val/loss"}
    record = outcome(runs, epoch="last", **claim)
    assert record["outcome"] == "reproduced" and record["evidence"].startswith("val/loss at the last epoch 0.210")


def confusion(correct: int, total: int = 100) -> list[list[int]]:
    """A 10-class test confusion matrix, 10 samples a class, with `correct` on the diagonal."""
    matrix = [[0] * 10 for _ in range(10)]
    for c in range(10):
        right = correct // 10 + (c < correct % 10)
        matrix[c][c], matrix[c][(c + 1) % 10] = right, total // 10 - right
    return matrix


@pytest.mark.parametrize(("accuracy", "floor", "expected", "says"), [
    (0.10, None, "compared failures", "not above chance (0.100, the commonest class)"),
    (0.19, 0.5, "compared failures", "below the claim's floor 0.5"),
    (0.60, 0.5, "reproduced", None),
])
def test_a_claim_whose_better_arm_fails_compares_failures(tmp_path, accuracy, floor, expected, says):
    # The notes' "zero init is worse than the default init" against a default init that does not learn either.
    runs = []
    for s, j in zip(SEEDS, JITTER, strict=True):
        default = fake_run(tmp_path, ["init=default"], s, accuracy + j, test_acc=accuracy + j)
        default["summary"]["evaluated"]["test_confusion"] = confusion(round(100 * (accuracy + j)))
        runs += [default, fake_run(tmp_path, ["init=zeros"], s, 0.05 + j, test_acc=0.05 + j)]
    claim = {"kind": "better", "setting": {"init": "default"}, "than": {"init": "zeros"}, "metric": "test/acc"}
    record = outcome(runs, **claim, **({"floor": floor} if floor is not None else {}))
    assert record["outcome"] == expected
    assert says is None or says in record["evidence"]


@pytest.mark.parametrize("name", sorted(p.stem for p in (CONF / "experiment").glob("*.yaml")))
def test_every_shipped_claim_is_well_formed(name):
    claims = OmegaConf.load(CONF / "experiment" / f"{name}.yaml").get("claims")
    check(OmegaConf.to_container(claims) if claims else [])


def test_a_claim_with_an_unknown_epoch_is_refused_before_the_sweep(tmp_path):
    result = run_cli("experiment=scaling", "+claims.0.epoch=final", f"hydra.sweep.dir={tmp_path}")
    assert result.returncode == 2
    assert "error: claims[0].epoch: unknown epoch 'final' for a 'better' claim; use best or last" in result.stderr
    assert not tmp_path.exists() or not list(tmp_path.iterdir())


def test_an_arm_whose_every_run_failed_says_so_with_the_error(tmp_path):
    failed = fake_run(tmp_path, ["optim=momentum"], 1, 0.1)
    failed["failed"], failed["summary"]["error"] = True, "loss became nan at epoch 0, step 3"
    runs = [*replicated(tmp_path, ADAM, 0.95), *replicated(tmp_path, SGD, 0.9), failed]
    record = outcome(runs, kind="better", setting={"optim": "adam"}, than={"optim": "momentum"}, metric="test/acc")
    assert record["outcome"] == "all runs failed"
    assert record["evidence"] == "every run of optim=momentum failed (1): loss became nan at epoch 0, step 3"


def test_a_curve_still_falling_at_the_end_is_no_turn_only_beyond_the_noise(tmp_path):
    falling = [fake_run(tmp_path, ADAM, s, 0.9, history=curve(False)) for s in SEEDS]
    record = outcome(falling, kind="turn", setting={})
    assert record["outcome"] == "contradicted" and record["evidence"] == (
        "mean val loss is lowest at the last epoch (3): no turn; from epoch 2 val loss -20.0% [-20.0%, -20.0%] (n=5)")
    # Flat and noisy after epoch 1: the last epoch is lowest on average, by less than the noise.
    noise = zip(SEEDS, (0.01, -0.02, 0.015, -0.01, 0.005), (-0.02, 0.01, -0.01, 0.015, -0.005), strict=True)
    flat = [fake_run(tmp_path, SGD, s, 0.9, history=[{"epoch": 0, "val/loss": 0.5, "train/loss": 0.4},
                                                    {"epoch": 1, "val/loss": 0.3 + a, "train/loss": 0.2},
                                                    {"epoch": 2, "val/loss": 0.3 + b, "train/loss": 0.1}])
            for s, a, b in noise]
    record = outcome(flat, kind="turn", setting={})
    assert record["outcome"] == "not significant" and "lowest at the last epoch (2)" in record["evidence"]
