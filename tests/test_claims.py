"""Settings, ties and claims on constructed runs: each claim kind reaches each of its outcomes."""
from __future__ import annotations

import numpy as np
import pytest

from trainlab.claims import evaluate
from trainlab.compare import group_settings, rank
from trainlab.errors import ConfigError
from trainlab.report import add_combinations

SEEDS = (1, 2, 3, 4, 5)
JITTER = (-0.004, 0.002, 0.0, 0.003, -0.001)  # seed-to-seed noise shared by paired replicates


def fake_run(tmp_path, overrides: list[str], seed: int, val_acc: float, val_loss: float = 0.3,
             history: list[dict] | None = None, fingerprint: str = "same-samples") -> dict:
    """A completed run as trainlab.report.load_runs returns it."""
    epoch = {"epoch": 0, "val/acc": val_acc, "val/loss": val_loss, "train/acc": min(1.0, val_acc + 0.02),
             "train/loss": val_loss / 2}
    history = history or [epoch]
    summary = {"status": "completed", "history": history, "best_epoch": history[-1]["epoch"],
               "evaluated": {"epoch": history[-1]["epoch"], "val_samples": 500, "test_samples": 500,
                             "fingerprint": fingerprint},
               "test": {"test/acc": val_acc - 0.01}, "num_parameters": 100}
    folder = tmp_path / f"{'_'.join(overrides)}_{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    return {"name": folder.name, "dir": folder, "summary": summary, "overrides": [*overrides, f"seed={seed}"],
            "failed": False, "config": {"seed": seed, "data": {"split_seed": 0}}, "replicate": (seed, 0),
            "metrics": {**{k: v for k, v in history[-1].items() if k != "epoch"}, "test/acc": val_acc - 0.01},
            "history": history}


def replicated(tmp_path, overrides: list[str], mean: float, spread: float = 1.0, **kwargs) -> list[dict]:
    return [fake_run(tmp_path, overrides, s, mean + spread * j, **kwargs) for s, j in zip(SEEDS, JITTER, strict=True)]


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
    record = outcome(runs, kind="better", setting={"optim": "adam"}, than={"optim": "sgd"}, metric="val/acc")
    assert record["outcome"] == expected and "paired t" in record["evidence"]


def test_better_inside_the_noise_is_not_significant_and_says_what_was_needed(tmp_path):
    sgd = [fake_run(tmp_path, SGD, s, 0.95 - 3 * j) for s, j in zip(SEEDS, JITTER, strict=True)]
    runs = replicated(tmp_path, ADAM, 0.951) + sgd
    record = outcome(runs, kind="better", setting={"optim": "adam"}, than={"optim": "sgd"}, metric="val/acc")
    assert record["outcome"] == "not significant" and "or narrower was needed" in record["evidence"]


def test_lower_loss_is_better(tmp_path):
    runs = replicated(tmp_path, ADAM, 0.95, val_loss=0.2) + replicated(tmp_path, SGD, 0.95, val_loss=0.2)
    for run in runs[:5]:
        run["metrics"]["val/loss"] = 0.1 + 0.01 * run["replicate"][0]
    for run in runs[5:]:
        run["metrics"]["val/loss"] = 0.4 + 0.012 * run["replicate"][0]
    record = outcome(runs, kind="better", setting={"optim": "adam"}, than={"optim": "sgd"}, metric="val/loss")
    assert record["outcome"] == "reproduced"


@pytest.mark.parametrize("kind, value, mean, expected", [
    ("above", 0.9, 0.95, "reproduced"), ("above", 0.9, 0.85, "contradicted"), ("above", 0.9, 0.9, "not significant"),
    ("below", 0.9, 0.85, "reproduced"), ("below", 0.9, 0.95, "contradicted"), ("below", 0.9, 0.9, "not significant"),
    ("near", 0.1, 0.1, "reproduced"), ("near", 0.1, 0.3, "contradicted"), ("near", 0.1, 0.147, "not significant")])
def test_claims_against_a_value_use_the_interval(tmp_path, kind, value, mean, expected):
    runs = replicated(tmp_path, ADAM, mean) + replicated(tmp_path, SGD, 0.5)
    claim = {"kind": kind, "setting": {"optim": "adam"}, "metric": "val/acc", "value": value, "tolerance": 0.05}
    assert outcome(runs, **claim)["outcome"] == expected


def test_single_run_is_judged_on_its_wilson_interval(tmp_path):
    runs = [fake_run(tmp_path, ADAM, 1, 0.944), fake_run(tmp_path, SGD, 1, 0.5)]
    record = outcome(runs, kind="above", setting={"optim": "adam"}, metric="val/acc", value=0.93)
    assert record["outcome"] == "not significant" and "0.944 [0.920, 0.961] (n=1, Wilson interval)" in record["evidence"]


@pytest.mark.parametrize("bf16, expected", [(0.9502, "reproduced"), (0.90, "contradicted"), (0.942, "not significant")])
def test_same_is_an_equivalence_claim(tmp_path, bf16, expected):
    runs = replicated(tmp_path, ["precision=32-true"], 0.95) + replicated(tmp_path, ["precision=bf16-mixed"], bf16, spread=3)
    record = outcome(runs, kind="same", setting={"precision": "bf16-mixed"}, than={"precision": "32-true"},
                     metric="val/acc", tolerance=0.01)
    assert record["outcome"] == expected


@pytest.mark.parametrize("relu, expected", [(0.96, "reproduced"), (0.9505, "not significant"), (0.90, "contradicted")])
def test_best_admits_ties(tmp_path, relu, expected):
    runs = (replicated(tmp_path, ["activation=relu"], relu) + replicated(tmp_path, ["activation=tanh"], 0.95, spread=-1)
            + replicated(tmp_path, ["activation=sigmoid"], 0.80))
    record = outcome(runs, kind="best", setting={"activation": "relu"}, metric="val/acc")
    assert record["outcome"] == expected


def curve(turns: bool) -> list[dict]:
    val = [0.5, 0.3, 0.35, 0.45] if turns else [0.5, 0.3, 0.25, 0.2]
    return [{"epoch": i, "val/loss": v, "train/loss": 0.4 / (i + 1), "val/acc": 0.9, "train/acc": 0.95}
            for i, v in enumerate(val)]


@pytest.mark.parametrize("turning, expected", [(5, "reproduced"), (0, "contradicted"), (3, "not significant")])
def test_turn_counts_the_replicates_whose_val_loss_turned(tmp_path, turning, expected):
    runs = [fake_run(tmp_path, ADAM, s, 0.9, history=curve(i < turning)) for i, s in enumerate(SEEDS)]
    record = outcome(runs, kind="turn", setting={})
    assert record["outcome"] == expected and record["evidence"].startswith(f"{turning} of 5 replicates")


def test_claim_on_a_setting_the_sweep_did_not_run(tmp_path):
    runs = replicated(tmp_path, ADAM, 0.95) + replicated(tmp_path, SGD, 0.9)
    record = outcome(runs, kind="better", setting={"optim": "rmsprop"}, than={"optim": "sgd"}, metric="val/acc")
    assert record["outcome"] == "not run"


@pytest.mark.parametrize("claim, key", [
    ({"kind": "better", "setting": {"optim": "adam"}, "than": {"optim": "sgd"}, "metric": "val/accuracy"},
     "claims[0].metric"),
    ({"kind": "beats", "setting": {"optim": "adam"}}, "claims[0].kind"),
    ({"kind": "better", "setting": {"optimizer": "adam"}, "than": {"optim": "sgd"}, "metric": "val/acc"},
     "claims[0].setting.optimizer"),
    ({"kind": "above", "setting": {"optim": "adam"}, "metric": "val/acc"}, "claims[0].value"),
    ({"kind": "best", "setting": {"optim": "adam"}, "metric": "test/acc"}, "claims[0].metric")])
def test_bad_claims_name_the_key(tmp_path, claim, key):
    runs = replicated(tmp_path, ADAM, 0.95) + replicated(tmp_path, SGD, 0.9)
    with pytest.raises(ConfigError, match=rf"^{key.replace('[', '.').replace(']', '.')}: "):
        evaluate([{"text": "bad", **claim}], settings(runs))


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
