"""An Optuna search as a Hydra sweeper: Optuna proposes a setting (ask), a trainlab job trains it, Optuna learns the
result (tell). Optuna does the searching, the storage and the sampling; this module only joins it to Hydra's launchers.

A failed trial (NaN loss, crash, refused config) is told as FAIL with its reason and the search goes on, until more
than `max_failure_rate` of `n_trials` have failed. `n_trials` counts the whole study, so a resumed search or a second
worker on the same storage only adds what is missing. Trial n is sampled with a seed made of `seed` and n, and runs
in the folder numbered n: workers and resumed searches draw distinct settings, and never meet a folder in use.
With a pruner, each trial reports its val metric per epoch and may stop early (trainlab.run.pruning); it is told
as PRUNED.
"""
from __future__ import annotations

import logging
import math
import os
import socket
from collections import Counter
from pathlib import Path

import numpy as np
import optuna
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Transformer
from hydra.utils import instantiate
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from trainlab.errors import ConfigError, first_line
from trainlab.run.tracking import masked

log = logging.getLogger("trainlab")

DATABASES = ("sqlite", "postgresql", "mysql")  # SQLAlchemy's URL schemes Optuna's RDBStorage is tested on
DRIVERS = {"postgresql": "psycopg2-binary", "mysql": "pymysql"}
ASKED: dict[tuple[str, int], optuna.Trial] = {}  # trials asked in this process: its jobs reach them without a storage


def open_storage(url: str | None):
    """None: in memory. journal://<file>: a JournalStorage file, the choice on a cluster's shared file system.
    sqlite:///<file>, postgresql://..., mysql://...: a database through SQLAlchemy."""
    if url is None:
        return None
    scheme = url.partition("://")[0].split("+")[0] if "://" in url else ""
    if scheme == "journal":
        from optuna.storages.journal import JournalFileBackend

        path = Path(url.removeprefix("journal://"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    if scheme not in DATABASES:
        raise ConfigError("hydra.sweeper.storage", f"{masked(url)} is no storage Optuna opens; give sqlite:///<file>, "
                          "journal://<file> (a shared file system) or a database URL (postgresql://user@host/db)")
    try:
        return optuna.storages.RDBStorage(url)
    except ModuleNotFoundError as error:
        raise ConfigError("hydra.sweeper.storage", f"{masked(url)} needs the database driver {error.name}; install "
                          f"it: pip install {DRIVERS.get(scheme, error.name)}") from None
    except Exception as error:  # SQLAlchemy's connection errors carry the URL: show it masked
        raise ConfigError("hydra.sweeper.storage", f"cannot open {masked(url)}: "
                          f"{type(error).__name__}; check the server, user and database name") from None


def search_space(overrides: list[str]) -> tuple[dict[str, BaseDistribution], dict[str, str]]:
    """Hydra's sweep syntax as Optuna distributions: choice(a,b) is categorical, range(a,b[,step]) the integers
    Hydra's range holds, interval(a,b) a uniform float, tag(log, interval(a,b)) a log-uniform one.
    A plain override is passed to every trial as given. Of two overrides of one key, the later counts."""
    space, fixed = {}, {}
    for override in OverridesParser.create().parse_overrides(overrides):
        key = override.get_key_element()
        space.pop(key, None)
        fixed.pop(key, None)
        if not override.is_sweep_override():
            fixed[key] = override.input_line
            continue
        if key == "seed":
            raise ConfigError("seed", "a search draws settings, not seeds: give one seed (and no replicates); repeat "
                              "the best setting over seeds afterwards with -m seed=range(5)")
        try:
            space[key] = _distribution(override)
        except ValueError as error:  # Optuna's own checks: low above high, log of 0
            raise ConfigError(f"hydra.sweeper.params.{key}", f"{override.input_line.split('=', 1)[1]} is no space "
                              f"Optuna samples ({error})") from None
    return space, fixed


def _distribution(override) -> BaseDistribution:
    if override.is_interval_sweep():
        interval = override.value()  # Hydra's interval is always of floats: range() gives integers
        return FloatDistribution(interval.start, interval.end, log="log" in interval.tags)
    values = list(override.sweep_iterator(transformer=Transformer.encode))
    if not values:
        raise ValueError("it holds no value")
    if override.is_range_sweep() and all(isinstance(v, int) for v in values):
        return IntDistribution(values[0], values[-1], step=values[1] - values[0] if len(values) > 1 else 1)
    return CategoricalDistribution(values)


def suggest(trial: optuna.Trial, name: str, distribution: BaseDistribution):
    if isinstance(distribution, FloatDistribution):
        return trial.suggest_float(name, distribution.low, distribution.high, step=distribution.step,
                                   log=distribution.log)
    if isinstance(distribution, IntDistribution):
        return trial.suggest_int(name, distribution.low, distribution.high, step=distribution.step,
                                 log=distribution.log)
    return trial.suggest_categorical(name, distribution.choices)


def build_pruner(config: dict | None) -> optuna.pruners.BasePruner | None:
    if not config:
        return None
    try:
        return instantiate(config)
    except Exception as error:
        cause = error.__cause__ or error  # Hydra's InstantiationException wraps the ImportError or TypeError
        raise ConfigError("hydra.sweeper.pruner", f"{config.get('_target_')} is no pruner trainlab can build "
                          f"({type(cause).__name__}: {first_line(cause)}); pick one of hydra/sweeper/pruner=median, "
                          "hyperband, or one of optuna.pruners with its own keys") from None


def open_trial(study_name: str, storage_url: str | None, pruner: dict | None, number: int) -> optuna.Trial:
    """Trial `number` of a running search, for its job to report to: the very one asked when the job runs in the
    sweeper's process, else reopened from the shared storage with the study's pruner."""
    if (study_name, number) in ASKED:
        return ASKED[study_name, number]
    if storage_url is None:
        raise ConfigError("hydra.sweeper.storage", "a pruned trial run in a process of its own reaches its study "
                          "through a storage: give sqlite:///<file> or journal://<file>")
    storage = open_storage(storage_url)
    study = optuna.load_study(study_name=study_name, storage=storage, pruner=build_pruner(pruner))
    trial_id = storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(study_name), number)
    return optuna.Trial(study, trial_id)


def trial_seed(seed: int, number: int) -> int:
    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0])


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def fail_orphans(study: optuna.Study) -> None:
    """Trials left RUNNING by a worker on this machine that is gone (killed, preempted) fail: they count toward
    n_trials as failed trials. A worker elsewhere cannot be checked from here, and its trials stay RUNNING."""
    host = socket.gethostname()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker_host, _, pid = str(trial.user_attrs.get("worker", "")).rpartition(":")
        if worker_host == host and pid.isdigit() and not _alive(int(pid)):
            study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)  # another worker may be first
            log.warning(f"trial {trial.number}: its worker (pid {pid}) is gone; told as failed")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Search:
    """One worker of a search: asks for trials until the study holds `n_trials`, `n_jobs` at a time."""

    def __init__(self, *, sampler: dict, direction: str, storage: str | None, study_name: str, n_trials: int,
                 n_jobs: int, max_failure_rate: float, params: dict, metric: str | None, pruner: dict | None = None,
                 jobs_in_process: bool = True):
        if not 0 <= max_failure_rate <= 1:
            raise ConfigError("hydra.sweeper.max_failure_rate", f"must be a fraction from 0 to 1, got {max_failure_rate}")
        if direction not in ("minimize", "maximize"):
            raise ConfigError("hydra.sweeper.direction", f"must be minimize or maximize, got {direction!r}")
        for key, value in (("n_trials", n_trials), ("n_jobs", n_jobs)):
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"hydra.sweeper.{key}", f"must be a whole number of 1 or more, got {value!r}")
        self.sampler_config = dict(sampler)
        self.seed = self.sampler_config.pop("seed", None)
        self.sampler_for(0)  # a sampler or pruner Optuna lacks is refused before any study is touched
        self.pruner = build_pruner(pruner)
        if self.pruner and not str(metric).startswith("val/"):
            raise ConfigError("hydra.sweeper.pruner", f"prunes on a metric measured each epoch; optimized_metric={metric} "
                              "is not: optimise a val/ metric (val/acc, val/loss) or drop the pruner")
        if self.pruner and storage is None and not jobs_in_process:
            raise ConfigError("hydra.sweeper.storage", "a pruned trial that runs in a process of its own (this "
                              "launcher) reaches its study through a storage: give sqlite:///<file> or journal://<file>")
        self.direction, self.n_trials, self.n_jobs, self.metric = direction, n_trials, n_jobs, metric
        self.max_failures = max_failure_rate * n_trials
        self.storage_url, self.study_name, self.params = storage, study_name, params

    def sampler_for(self, number: int) -> optuna.samplers.BaseSampler:
        seed = {} if self.seed is None else {"seed": trial_seed(int(self.seed), number)}
        try:
            return instantiate({**self.sampler_config, **seed})
        except Exception as error:
            cause = error.__cause__ or error  # Hydra's InstantiationException wraps the ImportError or TypeError
            raise ConfigError("hydra.sweeper.sampler", f"{self.sampler_config.get('_target_')} is no sampler trainlab "
                              f"can build ({type(cause).__name__}: {str(cause).splitlines()[0]}); use one of "
                              "optuna.samplers with its own keys, e.g. optuna.samplers.TPESampler") from None

    def open_study(self) -> optuna.Study:
        """The study, created or resumed; one run for another direction or metric is refused untouched."""
        study = optuna.create_study(study_name=self.study_name, storage=open_storage(self.storage_url),
                                    direction=self.direction, load_if_exists=True, sampler=self.sampler_for(0),
                                    pruner=self.pruner)
        direction = study.direction.name.lower()
        metric = study.user_attrs.get("optimized_metric", self.metric)
        if direction != self.direction or metric != self.metric:
            raise ConfigError("hydra.sweeper.study_name", f"study {self.study_name!r} in {masked(self.storage_url)} "
                              f"{direction}s {metric}, not {self.direction}s {self.metric}; name a new study "
                              "(hydra.sweeper.study_name=...) or match its direction and optimized_metric")
        study.set_user_attr("optimized_metric", self.metric)
        fail_orphans(study)
        return study

    def ask(self, study: optuna.Study, space: dict[str, BaseDistribution]) -> optuna.Trial | None:
        """The next trial with its setting drawn; None when another worker took the study's last one meanwhile."""
        trial = study.ask()
        if trial.number >= self.n_trials:  # two workers counted the same trials left: the later one stands down
            trial.set_user_attr("surplus", True)
            study.tell(trial, state=TrialState.FAIL)
            return None
        trial.set_user_attr("worker", worker_name())
        study.sampler = self.sampler_for(trial.number)  # trial n draws from its own seed, whoever asks for it
        try:
            for name, distribution in space.items():
                suggest(trial, name, distribution)
        except ValueError as error:  # a resumed study drew this key from another space
            study.tell(trial, state=TrialState.FAIL)
            raise ConfigError("hydra.sweeper.params", f"{error}; a study keeps each key's space: name a new study "
                              "(hydra.sweeper.study_name=...) to search another") from None
        ASKED[self.study_name, trial.number] = trial
        return trial

    def run(self, launch, arguments: list[str], sweep_dir: Path) -> None:
        """`launch(overrides, first_number)` runs jobs numbered from first_number and returns their JobReturns."""
        space, fixed = search_space([*(f"{k}={v}" for k, v in self.params.items()), *arguments])
        study = self.open_study()
        log.info(f"Optuna study {self.study_name!r} in {masked(self.storage_url or 'memory')}: "
                 f"{self.direction} {self.metric}, {self.n_trials} trials")
        self.exhausted = False
        while not self.exhausted and (left := self.n_trials - len(counted(study))) > 0:
            trials = [trial for _ in range(min(left, self.n_jobs)) if (trial := self.ask(study, space))]
            if not trials:
                break
            for batch in _consecutive(trials):
                overrides = [[*(f"{k}={v}" for k, v in trial.params.items()), *fixed.values()]
                             for trial in batch]
                for trial, result in zip(batch, launch(overrides, batch[0].number), strict=True):
                    self.tell(study, trial, result)
            failed = sum(t.state == TrialState.FAIL for t in counted(study))
            if failed > self.max_failures:
                log.error(f"search stopped: {failed} of {self.n_trials} trials failed, more than "
                          f"max_failure_rate={self.max_failures / self.n_trials:g} allows; the report lists why")
                break
        write_results(study, sweep_dir)

    def tell(self, study: optuna.Study, trial: optuna.Trial, result) -> None:
        try:
            value = result.return_value
        except Exception as error:  # the job raised past trainlab's own handling: a bug, told with its message
            value, summary = None, {"error": f"{type(error).__name__}: {first_line(error)}"}
        else:
            summary = job_summary(result)
        ASKED.pop((self.study_name, trial.number), None)
        try:
            if summary.get("status") == "completed" and summary.get("pruned_at_epoch") is not None:
                trial.set_user_attr("pruned_at_epoch", summary["pruned_at_epoch"])
                study.tell(trial, state=TrialState.PRUNED)  # valued by the last epoch it reported
            elif value is None or not math.isfinite(value):
                trial.set_user_attr("failure", summary.get("error") or f"no {self.metric} to optimise")
                study.tell(trial, state=TrialState.FAIL)
            else:
                study.tell(trial, float(value))
        except RuntimeError as error:  # a grid or brute-force sampler calls study.stop() once its space is covered,
            if "Study.stop" not in str(error):  # which raises outside study.optimize (the trial is stored first)
                raise
            self.exhausted = True


def counted(study: optuna.Study) -> list:
    """The study's trials, but those a worker stood down (see Search.ask)."""
    return [t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get("surplus")]


def job_summary(result) -> dict:
    """The job's summary.json: a failed one says why, a pruned one after which epoch."""
    summary = Path(result.hydra_cfg.hydra.runtime.output_dir) / "summary.json"
    return yaml.safe_load(summary.read_text()) if summary.exists() else {}


def _consecutive(trials: list[optuna.Trial]) -> list[list[optuna.Trial]]:
    """Runs of consecutive trial numbers: each launches at once, its folders numbered as its trials."""
    runs: list[list[optuna.Trial]] = []
    for trial in trials:
        if runs and runs[-1][-1].number + 1 == trial.number:
            runs[-1].append(trial)
        else:
            runs.append([trial])
    return runs


def write_results(study: optuna.Study, sweep_dir: Path) -> None:
    """optimization_results.yaml in the sweep folder: the best setting so far, the count of each trial state, why each
    failed trial failed and after which epoch each pruned one stopped."""
    trials = counted(study)
    results = {"name": "optuna", "study_name": study.study_name,
               "trials": dict(Counter(t.state.name.lower() for t in trials)),
               "failures": {t.number: t.user_attrs.get("failure", "its worker stopped") for t in trials
                            if t.state == TrialState.FAIL},
               "pruned": {t.number: t.user_attrs.get("pruned_at_epoch") for t in trials if t.state == TrialState.PRUNED}}
    if any(t.state == TrialState.COMPLETE for t in trials):
        results |= {"best_trial": study.best_trial.number, "best_params": study.best_params,
                    "best_value": study.best_value}
    sweep_dir.mkdir(parents=True, exist_ok=True)
    (sweep_dir / "optimization_results.yaml").write_text(yaml.safe_dump(results, sort_keys=False))
