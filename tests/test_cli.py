"""The command's own pieces, in-process: `--help` without Hydra, the seeds `replicates=N` sweeps, how a job's failure
ends a single run or is recorded in a sweep, and the run folder bad input leaves behind. The refusals before Hydra are
tabled in test_habits; whole commands run in test_train."""
from __future__ import annotations

import errno
import json
import math
import signal
import sys

import pytest

from trainlab.errors import CannotWrite, ConfigError, first_line
from trainlab.run import cli, job, pipeline

from conftest import make_cfg

SUMMARY = {"best": {"val/acc": 0.75}, "test": {"test/acc": 0.5}}


def one_job(monkeypatch, group: str | None, trains=lambda cfg: SUMMARY):
    """run_job's surroundings: a job of sweep `group` (None: a single run) whose training does `trains`."""
    monkeypatch.setattr(job, "job_identity", lambda: {"group": group, "overrides": ["model=pyramid"]})
    monkeypatch.setattr(pipeline, "train_and_test", trains)
    handlers = []
    monkeypatch.setattr(signal, "signal", lambda signum, handler: handlers.append((signum, handler)))
    return handlers


def raising(error: Exception):
    """A training that fails with `error`."""
    def train(cfg):
        raise error
    return train


@pytest.mark.parametrize("argv", [["model=pyramid", "--help"], ["-h", "model=pyramid"]])
def test_help_lists_the_groups_and_the_config_the_overrides_compose_without_starting_hydra(argv, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["train.py", *argv])
    monkeypatch.setattr(cli, "hydra_main", lambda: pytest.fail("Hydra was reached"))
    assert cli.main() is None
    out = capsys.readouterr().out
    groups = out.split("== Config ==")[0].splitlines()
    assert "model: bnnet, custom, hourglass, pyramid, text_bow, text_embed, uniform" in groups
    assert "precision: 16-mixed, 16-true, 32-true, 64-true, bf16-mixed, bf16-true" in groups
    assert not [line for line in groups if line.startswith("hydra")]  # Hydra's own groups are not trainlab's
    assert "\nmodel:\n  shape: pyramid\n" in out and "\nhydra:" not in out


@pytest.mark.parametrize("argv", [
    ["--help", "trainer.max_epochs=[1"],  # a bad override: Hydra's own report
    ["--help", "hydra.help.template=$FLAGS_HELP"],  # pages that need Hydra's flags or its groups
    ["--help", "hydra.help.template=$HYDRA_CONFIG_GROUPS"],
    ["--help", "-m"],
    ["--hydra-help"],
])
def test_help_that_hydra_must_write_goes_to_hydra(argv, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["train.py", *argv])
    monkeypatch.setattr(cli, "hydra_main", lambda: "hydra ran")
    assert cli.main() == "hydra ran"


@pytest.mark.parametrize(("replicates", "seed", "seeds"), [(1, 7, "7"), (3, 42, "range(42,45)"), (2, 0, "range(0,2)")])
def test_replicates_sweep_that_many_seeds_from_the_seed_on(replicates, seed, seeds):
    assert cli.replicate_seeds(replicates, seed) == seeds


def test_impossible_replicates_are_one_line_and_exit_2(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.replicate_seeds(0, 42)
    err = capsys.readouterr().err
    assert exited.value.code == 2 and err.startswith("error: replicates: ") and err.count("\n") == 1


def test_a_run_folder_holding_only_hydras_record_goes_with_the_parents_it_emptied(tmp_path):
    kept = tmp_path / "outputs" / "earlier_run.txt"
    run = tmp_path / "outputs" / "runs" / "2026-12-07_06-00-00"
    (run / ".hydra").mkdir(parents=True)
    (run / "train.log").write_text("")
    kept.write_text("an earlier run's file")
    cli.remove_if_only_hydras(run)
    assert not (tmp_path / "outputs" / "runs").exists() and kept.exists()


def test_the_folder_the_command_ran_in_stays_though_empty(tmp_path):
    run = tmp_path / "work" / "outputs" / "runs" / "2026-12-07_06-00-00"
    (run / ".hydra").mkdir(parents=True)
    cli.remove_if_only_hydras(run)
    assert list(tmp_path.rglob("*")) == [tmp_path / "work"]  # outputs/runs/ went, the working folder did not


def test_a_run_folder_holding_anything_else_stays(tmp_path):
    run = tmp_path / "runs" / "a"
    (run / ".hydra").mkdir(parents=True)
    (run / "summary.json").write_text("{}")
    cli.remove_if_only_hydras(run)
    assert (run / "summary.json").exists() and (run / ".hydra").is_dir()
    cli.remove_if_only_hydras(tmp_path / "never_made")  # nothing to remove: no error


def test_a_job_returns_the_metric_its_sweeper_optimises_and_stops_on_sigterm_as_on_ctrl_c(tmp_path, monkeypatch):
    handlers = one_job(monkeypatch, group=None)
    assert cli.run_job(make_cfg(tmp_path, "optimized_metric=val/acc")) == 0.75
    assert handlers == [(signal.SIGTERM, signal.default_int_handler)]


def test_under_a_scheduler_sigterm_is_left_to_it(tmp_path, monkeypatch):
    handlers = one_job(monkeypatch, group=None)
    monkeypatch.setattr(job, "scheduler_job", lambda: "4242")
    cli.run_job(make_cfg(tmp_path))
    assert handlers == []


def test_replicates_outside_a_sweep_are_refused_and_the_run_folder_goes(tmp_path, monkeypatch, capsys):
    one_job(monkeypatch, group=None, trains=lambda cfg: pytest.fail("trained"))
    (tmp_path / "run" / ".hydra").mkdir(parents=True)
    with pytest.raises(SystemExit) as exited:
        cli.run_job(make_cfg(tmp_path / "run", "replicates=2"))
    assert exited.value.code == 2 and not (tmp_path / "run").exists()
    assert capsys.readouterr().err == ("error: replicates: replicates=2 repeats each setting of a sweep with its own "
                                       "seed; add -m to run it as one (python train.py -m replicates=...)\n")


def test_a_sweeps_job_that_fails_on_bad_input_is_recorded_and_the_sweep_goes_on(tmp_path, monkeypatch, capsys):
    one_job(monkeypatch, group="sweep", trains=raising(ConfigError("model.width", "must be positive")))
    assert math.isnan(cli.run_job(make_cfg(tmp_path)))
    assert capsys.readouterr().err == "error: model.width: must be positive\n"
    assert json.loads((tmp_path / "summary.json").read_text()) == {
        "status": "failed", "error": "model.width: must be positive", "overrides": ["model=pyramid"]}


def test_a_sweeps_job_that_cannot_write_records_what_to_do_not_the_os_error(tmp_path, monkeypatch, capsys):
    full = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "last.ckpt"))
    one_job(monkeypatch, group="sweep", trains=raising(full))
    assert math.isnan(cli.run_job(make_cfg(tmp_path)))
    said = capsys.readouterr().err
    recorded = json.loads((tmp_path / "summary.json").read_text())["error"]
    assert said == CannotWrite.from_os_error(full).line() + "\n" and recorded == first_line(CannotWrite.from_os_error(full))
    assert recorded != first_line(full)


def test_a_sweeps_job_that_hits_a_bug_logs_its_traceback_and_the_sweep_goes_on(tmp_path, monkeypatch, caplog):
    one_job(monkeypatch, group="sweep", trains=raising(KeyError("a bug")))
    assert math.isnan(cli.run_job(make_cfg(tmp_path)))
    assert "job failed; the sweep goes on" in caplog.text and "KeyError: 'a bug'" in caplog.text
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "failed"


def test_a_single_run_that_hits_a_bug_raises_it_with_its_traceback(tmp_path, monkeypatch):
    one_job(monkeypatch, group=None, trains=raising(KeyError("a bug")))
    (tmp_path / ".hydra").mkdir()
    with pytest.raises(KeyError, match="a bug"):
        cli.run_job(make_cfg(tmp_path))
    assert (tmp_path / ".hydra").is_dir()  # not bad input: the folder and its record stay
