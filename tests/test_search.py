"""trainlab's Optuna sweeper (trainlab.run.search): real Optuna studies on real storages; the jobs are a toy
objective behind the launcher's seam, so each behaviour takes milliseconds. Searches through train.py are in
test_experiments (slow tier)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import optuna
import pytest
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from trainlab.errors import ConfigError
from trainlab.run.build import compose_config
from trainlab.run.search import Search, build_pruner, counted, open_storage, search_space, trial_seed, worker_name

from conftest import run_cli

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = {"optim.lr": "tag(log, interval(0.0001, 1.0))", "model.width": "choice(64, 128)"}


def toy_launcher(folder, diverge_above=0.3, crash_width=None, seconds=0.0, pruned_width=None):
    """Runs 'jobs' as a sweeper's launcher does: one JobReturn per override list, a folder per job number, and a
    failed job's summary.json saying why, or a pruned one's after which epoch, as trainlab's own jobs write them."""
    launched = []

    def launch(overrides, first):
        results = []
        for number, job in enumerate(overrides, start=first):
            time.sleep(seconds)
            values = dict(item.split("=", 1) for item in job)
            output = folder / str(number)
            output.mkdir(parents=True)  # a folder used twice would fail here
            result = JobReturn(overrides=job, hydra_cfg=OmegaConf.create({"hydra": {"runtime": {"output_dir":
                                                                                                 str(output)}}}))
            lr = float(values["optim.lr"])
            if crash_width is not None and values["model.width"] == str(crash_width):
                result.status, result._return_value = JobStatus.FAILED, RuntimeError("bug in the job")
            elif pruned_width is not None and values["model.width"] == str(pruned_width):
                (output / "summary.json").write_text(json.dumps({"status": "completed", "pruned_at_epoch": 1}))
                result.status, result.return_value = JobStatus.COMPLETED, 0.5
            elif lr > diverge_above:
                (output / "summary.json").write_text(json.dumps({"status": "failed", "error": "loss became nan"}))
                result.status, result.return_value = JobStatus.COMPLETED, float("nan")
            else:
                result.status, result.return_value = JobStatus.COMPLETED, 1 - abs(lr - 0.01)
            launched.append(values)
            results.append(result)
        return results

    launch.launched = launched
    return launch


def search(storage=None, n_trials=6, **options) -> Search:
    settings = dict(sampler={"_target_": "optuna.samplers.TPESampler", "seed": 42}, direction="maximize",
                    storage=storage, study_name="toy", n_trials=n_trials, n_jobs=1, max_failure_rate=0.5,
                    params=SPACE, metric="val/acc")
    return Search(**settings | options)


def load(storage_url, name="toy"):
    return optuna.load_study(study_name=name, storage=open_storage(storage_url))


def params_of(study):
    return [tuple(sorted(t.params.items())) for t in study.trials]


@pytest.mark.parametrize(("override", "expected"), [
    ("a=choice(64, 128)", CategoricalDistribution([64, 128])),
    ("a=choice(relu, tanh)", CategoricalDistribution(["relu", "tanh"])),
    ("a=range(1, 5)", IntDistribution(1, 4)),  # Hydra's range stops before its end
    ("a=range(0, 10, 3)", IntDistribution(0, 9, step=3)),
    ("a=interval(0.0, 0.5)", FloatDistribution(0.0, 0.5)),
    ("a=interval(1, 8)", FloatDistribution(1.0, 8.0)),  # Hydra's interval is of floats, even between integers
    ("a=tag(log, interval(0.0001, 0.1))", FloatDistribution(0.0001, 0.1, log=True)),
])
def test_hydra_sweep_syntax_becomes_optuna_distributions(override, expected):
    space, fixed = search_space([override])
    assert space == {"a": expected} and fixed == {}


def test_plain_overrides_pass_as_given_and_the_later_of_two_counts():
    space, fixed = search_space(["model.width=choice(64, 128)", "+trainer.deterministic=true", "optim=sgd",
                                 "model.width=256", "optim.lr=0.1", "optim.lr=interval(0.01, 0.1)"])
    assert fixed == {"+trainer.deterministic": "+trainer.deterministic=true", "optim": "optim=sgd",
                     "model.width": "model.width=256"}
    assert space == {"optim.lr": FloatDistribution(0.01, 0.1)}


def test_a_search_over_seeds_is_refused():
    with pytest.raises(ConfigError, match="^seed: a search draws settings, not seeds"):
        search_space(["seed=range(42,45)"])


def test_a_failed_trial_is_told_as_failed_with_its_reason_and_the_search_goes_on(tmp_path):
    launch = toy_launcher(tmp_path, diverge_above=0.05, crash_width=None)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    search(storage, n_trials=8, max_failure_rate=1.0).run(launch, [], tmp_path)
    study = load(storage)
    failed = [t for t in study.trials if t.state == TrialState.FAIL]
    assert len(study.trials) == 8 and failed  # it went on past its failures
    assert all(t.user_attrs["failure"] == "loss became nan" and t.params["optim.lr"] > 0.05 for t in failed)
    assert all(t.params["optim.lr"] <= 0.05 for t in study.trials if t.state == TrialState.COMPLETE)
    results = OmegaConf.load(tmp_path / "optimization_results.yaml")
    assert results.failures == {t.number: "loss became nan" for t in failed}
    assert results.best_value == study.best_value and results.trials.fail == len(failed)


def test_a_job_that_raised_is_failed_with_its_exception(tmp_path):
    launch = toy_launcher(tmp_path, diverge_above=2, crash_width=128)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    search(storage, n_trials=6, max_failure_rate=1.0).run(launch, [], tmp_path)
    crashed = [t for t in load(storage).trials if t.params["model.width"] == 128]
    assert crashed and all(t.state == TrialState.FAIL for t in crashed)
    assert {t.user_attrs["failure"] for t in crashed} == {"RuntimeError: bug in the job"}


def test_a_pruned_trial_is_told_as_pruned_and_listed_with_its_last_epoch(tmp_path):
    launch = toy_launcher(tmp_path, diverge_above=2, pruned_width=64)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    search(storage, n_trials=6).run(launch, [], tmp_path)
    trials = load(storage).trials
    pruned = [t.number for t in trials if t.params["model.width"] == 64]
    assert pruned and [t.number for t in trials if t.state == TrialState.PRUNED] == pruned
    assert all(t.state == TrialState.COMPLETE for t in trials if t.number not in pruned)
    results = OmegaConf.load(tmp_path / "optimization_results.yaml")
    assert results.pruned == dict.fromkeys(pruned, 1) and results.trials.pruned == len(pruned)


def test_too_many_failures_stop_the_search(tmp_path):
    launch = toy_launcher(tmp_path, diverge_above=0.0)  # every trial fails
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    search(storage, n_trials=10, max_failure_rate=0.2).run(launch, [], tmp_path)
    assert len(load(storage).trials) == 3  # 3 > 0.2 x 10: no fourth trial
    assert "best_value" not in OmegaConf.load(tmp_path / "optimization_results.yaml")


def test_the_command_line_narrows_the_space_and_fixes_keys(tmp_path):
    launch = toy_launcher(tmp_path)
    search(n_trials=3).run(launch, ["model.width=256", "optim=sgd"], tmp_path)
    assert [(job["model.width"], job["optim"]) for job in launch.launched] == [("256", "sgd")] * 3


def test_a_resumed_search_adds_only_the_missing_trials_none_repeated_in_new_folders(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    search(storage, n_trials=3).run(toy_launcher(tmp_path / "first"), [], tmp_path / "first")
    resumed = toy_launcher(tmp_path / "resumed")
    search(storage, n_trials=7).run(resumed, [], tmp_path / "resumed")
    study = load(storage)
    assert len(study.trials) == 7 and len(resumed.launched) == 4
    assert len(set(params_of(study))) == 7  # the same sampler seed, yet no setting drawn twice
    assert sorted(p.name for p in (tmp_path / "resumed").iterdir() if p.is_dir()) == ["3", "4", "5", "6"]


def test_one_search_is_reproducible_and_each_trial_number_has_its_own_seed(tmp_path):
    first, second = toy_launcher(tmp_path / "a"), toy_launcher(tmp_path / "b")
    search(n_trials=4).run(first, [], tmp_path / "a")
    search(n_trials=4).run(second, [], tmp_path / "b")
    assert first.launched == second.launched
    assert len({trial_seed(42, n) for n in range(100)}) == 100 and trial_seed(42, 0) != trial_seed(43, 0)


def test_two_workers_on_one_journal_file_draw_distinct_trials(tmp_path):
    storage = f"journal://{tmp_path / 'study.log'}"
    code = ("import sys, pathlib; sys.path.insert(0, 'tests'); from test_search import search, toy_launcher; "
            "folder = pathlib.Path(sys.argv[1]); "
            "search(sys.argv[2], n_trials=12).run(toy_launcher(folder, diverge_above=2, seconds=0.3), [], folder)")
    workers = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / name), storage]) for name in "ab"]
    assert [worker.wait(timeout=120) for worker in workers] == [0, 0]
    study = load(storage)
    assert len(study.trials) == 12 and {t.state for t in study.trials} == {TrialState.COMPLETE}
    assert len(set(params_of(study))) == 12
    folders = {name: [int(p.name) for p in (tmp_path / name).iterdir() if p.is_dir()] for name in "ab"}
    assert min(map(len, folders.values())) >= 3  # both worked, at the same time
    assert sorted(folders["a"] + folders["b"]) == list(range(12))  # each trial ran once, in its number's folder


def test_a_trial_left_running_by_a_worker_gone_is_failed_when_the_search_resumes(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="toy", storage=storage, direction="maximize")
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    study.ask().set_user_attr("worker", f"{worker_name().rpartition(':')[0]}:{gone.stdout.strip()}")
    study.ask().set_user_attr("worker", "another-host:1")  # cannot be checked from here: left running
    search(storage, n_trials=4).run(toy_launcher(tmp_path), [], tmp_path)
    states = [t.state for t in load(storage).trials]
    assert states == [TrialState.FAIL, TrialState.RUNNING, TrialState.COMPLETE, TrialState.COMPLETE]


@pytest.mark.parametrize(("options", "key"), [
    ({"direction": "minimize"}, "hydra.sweeper.study_name"),
    ({"metric": "val/loss"}, "hydra.sweeper.study_name"),
])
def test_a_study_of_another_direction_or_metric_is_refused_untouched(tmp_path, options, key):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    search(storage, n_trials=2).run(toy_launcher(tmp_path / "a"), [], tmp_path / "a")
    with pytest.raises(ConfigError, match=f"^{key}: study 'toy' in sqlite:.* maximizes val/acc, not"):
        search(storage, n_trials=4, **options).run(toy_launcher(tmp_path / "b"), [], tmp_path / "b")
    assert len(load(storage).trials) == 2 and not (tmp_path / "b").exists()


@pytest.mark.parametrize(("override", "message"), [
    ("a=tag(log, interval(0, 1))", "tag\\(log, interval\\(0, 1\\)\\) is no space Optuna samples"),
    ("a=interval(1.0, 0.5)", "interval\\(1.0, 0.5\\) is no space Optuna samples \\(`low <= high` must hold"),
    ("a=range(5, 1)", "range\\(5, 1\\) is no space Optuna samples \\(it holds no value\\)"),
])
def test_a_space_optuna_cannot_sample_is_refused_naming_its_key(override, message):
    with pytest.raises(ConfigError, match=f"^hydra.sweeper.params.a: {message}"):
        search_space([override])


def test_a_resumed_study_keeps_each_keys_space(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    search(storage, n_trials=2).run(toy_launcher(tmp_path / "a"), [], tmp_path / "a")
    widened = search(storage, n_trials=4, params={**SPACE, "model.width": "choice(256, 512)"})
    with pytest.raises(ConfigError, match="^hydra.sweeper.params: .*name a new study"):
        widened.run(toy_launcher(tmp_path / "b"), [], tmp_path / "b")
    assert [t.state for t in load(storage).trials][2:] == [TrialState.FAIL]  # not left RUNNING


def test_a_trial_numbered_past_n_trials_is_stood_down_and_left_out(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    first = search(storage, n_trials=2)
    first.run(toy_launcher(tmp_path / "a"), [], tmp_path / "a")
    study = first.open_study()
    assert first.ask(study, search_space([f"{k}={v}" for k, v in SPACE.items()])[0]) is None  # another worker's race
    assert [t.user_attrs.get("surplus", False) for t in load(storage).trials] == [False, False, True]
    assert len(counted(study)) == 2
    first.run(toy_launcher(tmp_path / "b"), [], tmp_path / "b")  # nothing left to do: no folder, no trial
    assert len(load(storage).trials) == 3 and not (tmp_path / "b" / "3").exists()
    assert OmegaConf.load(tmp_path / "b" / "optimization_results.yaml").trials == {"complete": 2}


@pytest.mark.parametrize(("options", "key", "message"), [
    ({"sampler": {"_target_": "optuna.samplers.NoSuchSampler"}}, "hydra.sweeper.sampler", "no sampler trainlab"),
    ({"sampler": {"_target_": "optuna.samplers.TPESampler", "n_startup": 3}}, "hydra.sweeper.sampler", "TypeError"),
    ({"max_failure_rate": 1.5}, "hydra.sweeper.max_failure_rate", "a fraction from 0 to 1"),
    ({"direction": "up"}, "hydra.sweeper.direction", "minimize or maximize"),
    ({"n_trials": 0}, "hydra.sweeper.n_trials", "1 or more"),
    ({"n_jobs": "2"}, "hydra.sweeper.n_jobs", "1 or more"),
    ({"pruner": {"_target_": "optuna.pruners.NoSuchPruner"}}, "hydra.sweeper.pruner", "no pruner trainlab"),
    ({"pruner": {"_target_": "optuna.pruners.MedianPruner", "warmup": 1}}, "hydra.sweeper.pruner", "TypeError"),
    ({"pruner": {"_target_": "optuna.pruners.MedianPruner"}, "metric": "test/acc"}, "hydra.sweeper.pruner",
     "optimized_metric=test/acc is not"),
    ({"pruner": {"_target_": "optuna.pruners.MedianPruner"}, "jobs_in_process": False}, "hydra.sweeper.storage",
     "reaches its study through a storage"),
])
def test_bad_sweeper_options_are_refused_before_any_study(options, key, message):
    with pytest.raises(ConfigError, match=f"^{key}: .*{message}"):
        search(**options)


@pytest.mark.parametrize(("preset", "pruner"), [
    ("median", optuna.pruners.MedianPruner), ("hyperband", optuna.pruners.HyperbandPruner), (None, type(None))])
def test_the_pruner_presets_build_optunas_pruners_and_none_is_the_default(tmp_path, preset, pruner):
    chosen = [f"hydra/sweeper/pruner={preset}"] if preset else []
    cfg = compose_config("hparams_search=optuna", *chosen, output_dir=tmp_path, return_hydra_config=True)
    chosen = cfg.hydra.sweeper.get("pruner")
    assert isinstance(build_pruner(chosen and OmegaConf.to_container(chosen)), pruner)


@pytest.mark.parametrize(("url", "message"), [
    ("redis://lab:s3cret@host/0", "redis://lab:\\*\\*\\*@host/0 is no storage Optuna opens"),
    ("optuna.db", "optuna.db is no storage"),
    ("postgresql://lab:s3cret@127.0.0.1:9/optuna", "postgresql://lab:\\*\\*\\*@127.0.0.1:9/optuna"),
])
def test_a_storage_that_cannot_be_opened_is_one_line_with_the_password_masked(url, message):
    with pytest.raises(ConfigError, match=f"^hydra.sweeper.storage: .*{message}") as refused:
        open_storage(url)
    assert "s3cret" not in str(refused.value)


def test_storages_sqlite_and_journal_file_hold_a_study(tmp_path):
    for url in (f"sqlite:///{tmp_path / 'a.db'}", f"journal://{tmp_path / 'deeper' / 'b.log'}"):
        study = optuna.create_study(study_name="s", storage=open_storage(url))
        study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
        assert len(load(url, "s").trials) == 2
    assert open_storage(None) is None
    assert os.path.isfile(tmp_path / "deeper" / "b.log")


@pytest.mark.full  # three subprocesses: the slow tier
@pytest.mark.parametrize(("override", "line"), [
    ("hydra.sweeper.storage=redis://lab:s3cret@host/0", "error: hydra.sweeper.storage: redis://lab:***@host/0 is no"),
    ("hydra.sweeper.sampler._target_=optuna.samplers.Nope", "error: hydra.sweeper.sampler: optuna.samplers.Nope is"),
    ("hydra.sweeper.max_failure_rate=2", "error: hydra.sweeper.max_failure_rate: must be a fraction"),
    ("+hydra.sweeper.pruner={_target_: optuna.pruners.Nope}", "error: hydra.sweeper.pruner: optuna.pruners.Nope is"),
])
def test_bad_search_input_is_one_line_and_exit_2_leaving_no_folder(tmp_path, override, line):
    result = run_cli("hparams_search=optuna", "data=digits", override, f"hydra.sweep.dir={tmp_path / 'sweep'}")
    (said,) = result.stderr.strip().splitlines()
    assert result.returncode == 2 and said.startswith(line)
    assert "s3cret" not in result.stderr + result.stdout and not (tmp_path / "sweep").exists()
