"""Results that cannot go stale: the Results page is what results/ holds, and every setting it reports as completed
still runs today."""
from __future__ import annotations

import itertools
import json

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from scripts.results import END, EXPERIMENTS, PAGE, START, render, stale
from trainlab import CONF

from conftest import ROOT


def marked(text: str) -> str:
    return text.split(START, 1)[1].split(END, 1)[0].strip()


def test_the_results_page_and_readme_pointer_are_what_results_holds():
    # What `python scripts/results.py --page` would write: nothing on the page is edited by hand.
    page, pointer = render([name for name in EXPERIMENTS if (ROOT / "results" / name / "run.json").exists()])
    assert marked(PAGE.read_text()) == page.strip()
    assert marked((ROOT / "README.md").read_text()) == pointer.strip()
    assert page.count("Mean and 95% interval of the tested model") == 1  # said once, not under every experiment


def declared_settings(name: str) -> list[tuple[str, ...]]:
    """Every combination of the experiment's sweeper params, as Hydra expands them."""
    params = OmegaConf.load(CONF / "experiment" / f"{name}.yaml").hydra.get("sweeper", {}).get("params", {})
    parsed = OverridesParser.create().parse_overrides([f"{key}={value}" for key, value in params.items()])
    choices = [[f"{o.key_or_group}={v}" for v in o.sweep_string_iterator()] for o in parsed]
    return sorted(tuple(sorted(combination)) for combination in itertools.product(*choices))


@pytest.mark.full
def test_results_cover_every_experiment_and_the_grid_it_declares():
    assert sorted(EXPERIMENTS) == sorted(p.stem for p in CONF.glob("experiment/*.yaml"))
    for name in EXPERIMENTS:
        record = json.loads((ROOT / "results" / name / "run.json").read_text())
        assert sorted(tuple(s["overrides"]) for s in record["settings"]) == declared_settings(name), name
        report, experiment = (ROOT / "results" / name / "report.md").read_text(), OmegaConf.load(
            CONF / "experiment" / f"{name}.yaml")
        assert ("Claims of the notes" in report) == bool(experiment.get("claims")), name
        assert ("Tuning (chosen on val)" in report) == bool(experiment.get("tuned")), name


@pytest.mark.full  # one short sweep per experiment: the slow tier
def test_every_setting_results_report_as_completed_still_runs(tmp_path):
    # One short sweep per experiment, as it is declared today: a refused, crashing or diverging setting fails.
    assert stale(list(EXPERIMENTS), work=tmp_path) == []


@pytest.mark.full
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
