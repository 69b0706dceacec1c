"""The shipped experiments and sweep machinery, as subprocess sweeps like a user runs them."""
from __future__ import annotations

import json
import math
import os

import optuna
import pytest
import yaml

from trainlab.run.search import open_storage

from conftest import ROOT, run_cli

pytestmark = pytest.mark.full  # the slow tier: `make test-full`


def summaries(sweep_dir) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sweep_dir.glob("*/summary.json")}


def by_override(runs: dict[str, dict], *wanted: str) -> dict:
    (summary,) = [s for s in runs.values() if all(w in s["overrides"] for w in wanted)]
    return summary


def test_act_optim_reproduces_the_notes(tmp_path):
    # The shipped settings (batch 32, 10 epochs) on the four corners of the grid, two jobs at a time.
    result = run_cli("experiment=act_optim", "activation=sigmoid,relu", "optim=sgd,adam", "replicates=1", "logger=none",
                     "hydra/launcher=joblib", f"hydra.sweep.dir={tmp_path}", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = summaries(tmp_path)
    assert len(runs) == 4
    final = {(a, o): by_override(runs, f"activation={a}", f"optim={o}")["final"]
             for a in ("sigmoid", "relu") for o in ("sgd", "adam")}
    sigmoid_sgd, relu_sgd, relu_adam = final["sigmoid", "sgd"], final["relu", "sgd"], final["relu", "adam"]
    assert sigmoid_sgd["val/acc"] < 0.2 and sigmoid_sgd["val/loss"] == pytest.approx(math.log(10), abs=0.05)
    assert relu_sgd["val/acc"] > sigmoid_sgd["val/acc"] + 0.5  # relu + sgd clearly learns
    assert relu_adam["val/acc"] > 0.92
    assert relu_adam["val/acc"] >= max(f["val/acc"] for f in final.values()) - 0.01  # best, or within noise
    assert all(s["threads"] == 1 for s in runs.values())  # one torch thread per joblib job
    assert "activation=sigmoid, optim=sgd" in (tmp_path / "report.md").read_text()
    # The experiment's claims, checked by the sweep's report; tanh and rmsprop were not run in this narrowed sweep.
    # Only outcomes that hold with margin: one run a setting puts relu+adam vs relu+sgd near the 5% line (McNemar
    # p 0.03-0.06 across machines), so that one is asserted not to be contradicted, not to be reproduced.
    claims = {c["text"]: c for c in json.loads((tmp_path / "claims.json").read_text())}
    assert claims["sigmoid+sgd stays at chance: test acc about 0.1"]["outcome"] == "reproduced"
    assert claims["relu+adam beats relu+sgd"]["outcome"] in ("reproduced", "not significant")
    assert "McNemar" in claims["relu+adam beats relu+sgd"]["evidence"]
    assert {c["outcome"] for c in claims.values()} <= {"reproduced", "not significant", "contradicted"}


def test_submitit_local_launcher(tmp_path):
    result = run_cli("-m", "hydra/launcher=submitit_local", "activation=relu,tanh", "data=digits",
                     "trainer.max_epochs=1", "logger=none", f"hydra.sweep.dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert [s["status"] for s in summaries(tmp_path).values()] == ["completed", "completed"]


SEARCH = ("hparams_search=optuna", "data=digits", "trainer.max_epochs=1", "logger=none")


def trials_of(storage, name="trainlab"):
    return optuna.load_study(study_name=name, storage=open_storage(storage)).trials


def test_a_requeued_submitit_job_continues_from_its_last_checkpoint(tmp_path, monkeypatch):
    # SIGUSR2 is submitit's warning before a time limit (or of preemption): its handler saves the launcher's state and
    # requeues the job, which here reruns the same command in the same folder.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]))
    run = ("data=digits", "trainer.max_epochs=4", "callbacks.early_stopping=null", "logger=none")
    warned = (f"+callbacks.signal={{_target_: killer.SignalAt, epoch: 2, batch: 1, marker: '{tmp_path / 'warned'}', "
              "signal_name: SIGUSR2}")
    result = run_cli("-m", "hydra/launcher=submitit_local", *run, warned, f"hydra.sweep.dir={tmp_path / 'requeued'}")
    assert result.returncode == 0, result.stderr[-3000:]
    whole = run_cli("-m", *run, "threads=1", f"hydra.sweep.dir={tmp_path / 'whole'}")  # the same sums, in order
    assert whole.returncode == 0, whole.stderr[-3000:]
    (requeued,) = [json.loads(p.read_text()) for p in (tmp_path / "requeued").rglob("summary.json")]
    (expected,) = summaries(tmp_path / "whole").values()
    assert (tmp_path / "warned").exists() and requeued["status"] == "completed" and requeued["requeued"] == 1
    assert requeued["final"] == expected["final"] and requeued["test"] == expected["test"]
    assert [h["epoch"] for h in requeued["history"]] == list(range(4))
    assert requeued["threads"] == 1  # one per CPU the job was given (hydra.launcher.cpus_per_task, unset: one)
    (log,) = (tmp_path / "requeued").rglob("train.log")
    assert "resuming from" in log.read_text() and "| requeued 1 time" in log.read_text()


def test_optuna_search_in_memory_reports_its_best_trial(tmp_path):
    result = run_cli(*SEARCH, "hydra.sweeper.n_trials=2", f"hydra.sweep.dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    runs = summaries(tmp_path)
    assert sorted(name.split("_")[0] for name in runs) == ["0", "1"]  # folders numbered as the trials
    best = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())["best_value"]
    assert best == max(s["best"]["val/acc"] for s in runs.values())


def test_a_search_with_a_diverging_trial_completes_and_reports_the_failure(tmp_path):
    # The brute-force sampler tries both values in two trials, in an order of its own.
    result = run_cli("-m", "hydra/sweeper=optuna", "hydra.sweeper.sampler._target_=optuna.samplers.BruteForceSampler",
                     "hydra.sweeper.n_trials=2", "hydra.sweeper.max_failure_rate=0.5", "optim=sgd",
                     "optim.lr=choice(0.05,1e6)", "data=digits", "trainer.max_epochs=1", "logger=none",
                     f"hydra.sweep.dir={tmp_path}")
    assert result.returncode == 1, result.stderr[-3000:]  # as in a -m sweep: a failed job makes the exit code
    failed = by_override(summaries(tmp_path), "optim.lr=1000000.0")
    assert failed["status"] == "failed" and failed["error"].startswith("loss became nan")
    results = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    assert results["trials"] == {"complete": 1, "fail": 1} and results["best_params"] == {"optim.lr": 0.05}
    assert list(results["failures"].values()) == [failed["error"]]
    assert "failed: loss became nan" in (tmp_path / "report.md").read_text()


def test_a_pruned_search_stops_a_hopeless_trial_run_in_a_process_of_its_own(tmp_path):
    # joblib runs each trial in a worker process, which reaches the study through the journal file.
    storage = f"journal://{tmp_path / 'study.log'}"
    result = run_cli("-m", "hydra/sweeper=optuna", "hydra/launcher=joblib", f"hydra.sweeper.storage={storage}",
                     "hydra.sweeper.sampler._target_=optuna.samplers.BruteForceSampler", "hydra.sweeper.n_trials=2",
                     "+hydra.sweeper.pruner={_target_: optuna.pruners.ThresholdPruner, lower: 0.5}", "optim=sgd",
                     "optim.lr=choice(1e-6,0.1)", "data=digits", "trainer.max_epochs=3", "callbacks.early_stopping=null",
                     "logger=none", f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert result.returncode == 0, result.stderr[-3000:]
    trials = {t.params["optim.lr"]: t for t in trials_of(storage)}
    assert trials[1e-6].state.name == "PRUNED" and list(trials[1e-6].intermediate_values) == [0]
    assert trials[0.1].state.name == "COMPLETE" and list(trials[0.1].intermediate_values) == [0, 1, 2]
    pruned = by_override(summaries(tmp_path / "sweep"), "optim.lr=1e-06")
    assert pruned["status"] == "completed" and pruned["pruned_at_epoch"] == 0 and len(pruned["history"]) == 1
    results = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    assert results["pruned"] == {trials[1e-6].number: 0} and results["best_params"] == {"optim.lr": 0.1}
    assert "pruned after epoch 0" in (tmp_path / "sweep" / "report.md").read_text()


def test_a_killed_search_resumes_its_study_without_repeats(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]))
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    search = (*SEARCH, "hydra.sweeper.n_trials=3", "hydra.sweeper.max_failure_rate=0.5",
              f"hydra.sweeper.storage={storage}", f"hydra.sweep.dir={tmp_path / 'sweep'}",
              f"+callbacks.signal={{_target_: killer.SignalAt, epoch: 0, batch: 2, marker: '{tmp_path / 'killed'}'}}")
    assert run_cli(*search).returncode == -9  # SIGKILL in trial 0: no handler runs, the trial stays RUNNING
    assert [t.state.name for t in trials_of(storage)] == ["RUNNING"]
    resumed = run_cli(*search)  # the same command, the same sweep folder
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    trials = trials_of(storage)
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE", "COMPLETE"]  # its worker gone, trial 0 failed
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 3
    folders = [p.relative_to(tmp_path / "sweep").parts[0] for p in (tmp_path / "sweep").rglob("summary.json")]
    assert sorted(folder.split("_")[0] for folder in folders) == ["1", "2"]  # the marker's path nests folders


def test_a_storage_from_the_environment_is_never_written(tmp_path, monkeypatch):
    monkeypatch.setenv("OPTUNA_STORAGE", f"sqlite:///{tmp_path / 'private_store.db'}")
    result = run_cli(*SEARCH, "hydra.sweeper.n_trials=1", f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(trials_of(os.environ["OPTUNA_STORAGE"])) == 1
    written = [p for p in (tmp_path / "sweep").rglob("*") if p.is_file() and b"private_store" in p.read_bytes()]
    assert written == []


def test_failed_job_does_not_stop_the_sweep(tmp_path):
    result = run_cli("-m", "optim=sgd", "optim.lr=0.01,1e6", "data=digits", "trainer.max_epochs=2", "logger=none",
                     f"hydra.sweep.dir={tmp_path}")
    assert result.returncode == 1  # the sweep says something failed
    runs = summaries(tmp_path)
    assert len(runs) == 2 and by_override(runs, "optim.lr=0.01")["status"] == "completed"
    failed = by_override(runs, "optim.lr=1000000.0")  # Hydra writes the swept value as a float
    assert failed["status"] == "failed" and failed["error"].startswith("loss became nan")
    assert "failed: loss became nan" in (tmp_path / "report.md").read_text()
