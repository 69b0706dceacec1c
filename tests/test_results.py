"""Results that cannot go stale: every setting README's Results report as completed still runs today."""
from __future__ import annotations

import json

import pytest

from scripts.results import EXPERIMENTS, stale

from conftest import ROOT

pytestmark = pytest.mark.full  # one short sweep per experiment: the slow tier


def test_every_setting_results_report_as_completed_still_runs(tmp_path):
    recorded = [name for name in EXPERIMENTS if (ROOT / "results" / name / "run.json").exists()]
    assert recorded == list(EXPERIMENTS)
    assert stale(recorded, work=tmp_path) == []


def test_a_planted_divergence_and_a_setting_no_longer_run_are_caught(tmp_path):
    record = {"command": ["experiment=batch_lr", "data=digits", "data.batch_size=128", "optim.lr=0.01,1e6"],
              "settings": [{"overrides": ["optim.lr=0.01"], "completed": 3, "failed": 0},
                           {"overrides": ["optim.lr=1000000.0"], "completed": 3, "failed": 0},
                           {"overrides": ["optim.lr=0.5"], "completed": 3, "failed": 0},
                           {"overrides": ["optim.lr=2.0"], "completed": 0, "failed": 3}]}  # failed then: not rechecked
    (tmp_path / "results" / "batch_lr").mkdir(parents=True)
    (tmp_path / "results" / "batch_lr" / "run.json").write_text(json.dumps(record))
    problems = stale(["batch_lr"], results=tmp_path / "results", work=tmp_path / "work")
    assert len(problems) == 2
    assert problems[0].startswith("batch_lr: optim.lr=1000000.0 completed in Results, now failed: loss became nan")
    assert problems[1] == "batch_lr: optim.lr=0.5 completed in Results, now not run: the experiment no longer runs it"
