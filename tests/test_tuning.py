"""Fair arms: each arm at its own best tuned value, chosen on val and judged on test."""
from __future__ import annotations

import pytest

from trainlab.errors import ConfigError
from trainlab.study.claims import evaluate
from trainlab.study.compare import group_settings, rank
from trainlab.study.report import add_combinations
from trainlab.study.tuning import check_tuned, choose_arms

from conftest import fake_run, run_cli

SEEDS = (1, 2, 3)
JITTER = (-0.003, 0.0, 0.004)


def arm(tmp_path, scaler: str, lr: str, val: float, test: float) -> list[dict]:
    return [fake_run(tmp_path, [f"data.scaler={scaler}", f"optim.lr={lr}"], s, val + j, test_acc=test + j)
            for s, j in zip(SEEDS, JITTER, strict=True)]


def chosen(runs: list[dict]):
    add_combinations(runs)
    return choose_arms(group_settings(runs), ["optim.lr"])


def test_each_arm_takes_its_value_on_val_even_where_test_prefers_another(tmp_path):
    runs = (arm(tmp_path, "global", "0.1", val=0.95, test=0.90) + arm(tmp_path, "global", "0.01", val=0.90, test=0.95)
            + arm(tmp_path, "none", "0.01", val=0.93, test=0.93) + arm(tmp_path, "none", "0.1", val=0.80, test=0.80))
    arms, table = chosen(runs)
    assert sorted(s.overrides["optim.lr"] for s in arms) == ["0.01", "0.1"]
    assert {s.overrides["data.scaler"]: s.overrides["optim.lr"] for s in arms} == {"global": "0.1", "none": "0.01"}
    assert [row[0] for row in table] == ["data.scaler=global"] * 2 + ["data.scaler=none"] * 2
    assert [row[3] for row in table if row[3]] == ["chosen", "chosen"]
    # Judged on test: global at its val-chosen lr (0.90) is behind none (0.93).
    claim = {"text": "c", "kind": "better", "setting": {"data.scaler": "global"}, "than": {"data.scaler": "none"},
             "metric": "test/acc"}
    (record,) = evaluate([claim], rank(arms), ["optim.lr"])
    assert record["outcome"] == "contradicted"


def test_a_value_whose_runs_failed_is_never_chosen(tmp_path):
    diverged = arm(tmp_path, "none", "1.0", val=0.99, test=0.99)
    diverged[0]["failed"] = True
    runs = diverged + arm(tmp_path, "none", "0.01", val=0.93, test=0.93)
    arms, table = chosen(runs)
    assert [s.overrides["optim.lr"] for s in arms] == ["0.01"]
    assert "1 of 3 runs failed" in [row[3] for row in table]


def test_without_tuned_keys_every_setting_is_an_arm(tmp_path):
    runs = arm(tmp_path, "none", "0.1", 0.9, 0.9) + arm(tmp_path, "none", "0.01", 0.8, 0.8)
    add_combinations(runs)
    settings = group_settings(runs)
    assert choose_arms(settings, []) == (settings, [])


def test_a_claim_may_not_name_a_tuned_key(tmp_path):
    arms, _ = chosen(arm(tmp_path, "global", "0.1", 0.95, 0.95) + arm(tmp_path, "none", "0.1", 0.9, 0.9))
    claim = {"text": "c", "kind": "better", "setting": {"data.scaler": "global", "optim.lr": "0.1"},
             "than": {"data.scaler": "none"}, "metric": "test/acc"}
    with pytest.raises(ConfigError, match=r"^claims.0..setting.optim.lr: optim.lr is tuned per arm on val"):
        evaluate([claim], rank(arms), ["optim.lr"])


@pytest.mark.parametrize(("tuned", "sweep", "says"), [
    (["optim.momentum"], {"optim.lr": "0.01,0.1"}, "tunes optim.momentum, which this sweep does not vary"),
    (["optim.lr"], {"optim.lr": "0.1"}, "tunes optim.lr over one value (0.1); give a grid of two or more"),
    (["optim.lr"], {"optim.lr": "0.1,-1"}, "optim.lr must be a number > 0, got -1"),
    (["optim.lrr"], {"optim.lrr": "0.1,1"}, "optim.lrr is not a key trainlab knows"),
])
def test_bad_tuning_grids_name_the_key(tuned, sweep, says):
    with pytest.raises(ConfigError) as error:
        check_tuned(tuned, sweep)
    assert error.value.key == "tuned" and says in str(error.value)


def test_a_grid_on_a_key_the_sweep_does_not_vary_is_refused_before_any_job(tmp_path):
    result = run_cli("experiment=scaling", "tuned=[optim.momentum]", f"hydra.sweep.dir={tmp_path}")
    assert result.returncode == 2 and "error: tuned: tunes optim.momentum, which this sweep does not vary" in result.stderr
    assert not tmp_path.exists() or not list(tmp_path.iterdir())
