"""The command line before Hydra: lightning-hydra-template's commands that mean something in trainlab work, the
others name trainlab's way; an option no config group holds is refused in one line."""
from __future__ import annotations

import sys

import pytest

from trainlab.config.habits import adapted
from trainlab.config.schema import check
from trainlab.errors import ConfigError
from trainlab.run import cli
from trainlab.run.build import compose_config

from conftest import run_cli

# Commands from lightning-hydra-template's README, the script name aside.
WORK_AS_TYPED = [
    ["trainer=cpu"],
    ["trainer=gpu"],
    ["trainer=ddp"],
    ["experiment=act_optim.yaml"],
    ["trainer.max_epochs=20", "data.batch_size=64"],
    ["logger=wandb"],
    ["+trainer.gradient_clip_val=0.5"],
    ["+trainer.val_check_interval=0.25"],
    ["+trainer.accumulate_grad_batches=10"],
    ["+trainer.max_time=00:12:00:00"],
    ["seed=1", "trainer.deterministic=True", "logger=csv"],
    ["ckpt_path=/path/to/ckpt/name.ckpt"],
]


@pytest.mark.parametrize("command", WORK_AS_TYPED, ids=" ".join)
def test_template_commands_that_mean_something_here_compose_and_pass_the_schema(tmp_path, command):
    cfg = compose_config(*adapted(command), output_dir=tmp_path)
    check(cfg)
    for argument in command:
        key, value = argument.lstrip("+").split("=", 1)
        if "." in key:
            assert str(cfg[key.split(".")[0]][key.split(".", 1)[1]]) == value


def test_a_plus_on_a_key_trainlab_has_sets_it():
    assert adapted(["+trainer.gradient_clip_val=0.5"]) == ["++trainer.gradient_clip_val=0.5"]


@pytest.mark.parametrize("argument", ["-m", "--cfg", "job", "+experiment=act_optim", "+hydra/launcher=joblib",
                                      "++trainer.max_time=1", "+optim@extra.opt=sgd", "seed=range(5)",
                                      "~callbacks.dead_units", "data.path=a=b.csv"])
def test_other_arguments_pass_unchanged(argument):
    assert adapted([argument]) == [argument]


@pytest.mark.parametrize(("argument", "key", "way"), [
    ("model.optimizer.lr=1e-4", "model.optimizer.lr", "optim.lr"),
    ("model.lr=0.001,0.0005", "model.lr", "optim.lr"),
    ("model.net.lin1_size=128", "model.net.lin1_size", "model.width"),
    ("model.scheduler=null", "model.scheduler", "scheduler=step"),
    ("data.num_workers=4", "data.num_workers", "in memory"),
    ("tags=[mnist]", "tags", "+logger.wandb.tags"),
    ("train=False", "train", "trainlab-eval"),
    ("extras.print_config=false", "extras.print_config", "print_config=false"),
    ("debug=fdr", "debug", "debug=fast_dev_run"),
    ("trainer=mps", "trainer", "trainer.accelerator=mps"),
    ("hparams_search=mnist_optuna", "hparams_search", "hparams_search=optuna"),
])
def test_template_habits_named_otherwise_here_are_refused_with_trainlab_way(argument, key, way):
    with pytest.raises(ConfigError) as refused:
        adapted(["data=digits", argument])
    assert refused.value.key == key and way in refused.value.line()


def test_a_refused_habit_is_one_line_and_exit_2_before_anything_runs(tmp_path):
    done = run_cli("model.optimizer.lr=1e-4", f"hydra.run.dir={tmp_path / 'run'}")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: model.optimizer.lr: is a lightning-hydra-template key; in trainlab, the optimizer is the optim group: "
        "optim=adam optim.lr=1e-4 (or optim=sgd, momentum, rmsprop, adamw)"]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("argv", "key", "says"), [
    (["model=nope"], "model", "no model option 'nope'; the options are bnnet, custom, hourglass, pyramid, text_bow, "
                              "text_embed, uniform\n"),
    (["seed=1", "model@model=nope"], "model", "no model option 'nope'"),  # after a key, and with a package
    (["-m", "activation=relu,tahn"], "activation", "no activation option 'tahn'"),
    (["-m", "optim=choice(sgd,adamw2)"], "optim", "no optim option 'adamw2'"),
    (["+experiment=nope.yaml"], "experiment", "no experiment option 'nope'"),
    (["hparams_search=optuna", "hydra/sweeper/pruner=nope"], "hydra/sweeper/pruner",
     "no hydra/sweeper/pruner option 'nope'; the options are hyperband, median"),
    (["logger=[csv,bogus]"], "logger", "no logger option 'bogus'; the options are csv, many, mlflow, none, tensorboard, "
                                       "wandb, several at once as a list: logger=[csv,wandb]\n"),
    (["-m", "logger=csv,nope"], "logger", "no logger option 'nope'"),
    (["logger.mode=online"], "logger.mode", "logger.wandb.mode=..."),  # the key before logger took a list
    (["+logger.tags=[a]"], "logger.tags", "logger.wandb.tags=..."),
    (["logger.settings.mode=x"], "logger.settings.mode",
     "a logger key names its logger: logger.wandb.settings.mode=... for W&B (logger.<option>.<key>)\n"),
    (["--config-dir"], "--config-dir", "no folder given: it is not a folder; give the folder that holds your own config "
                                       "groups (e.g. my_conf, holding my_conf/model/my_net.yaml)\n"),
    (["--config-dir=nowhere", "model=pyramid"], "--config-dir", "nowhere is not a folder; give the folder"),
])
def test_an_unknown_option_or_logger_key_is_one_line_and_exit_2_before_hydra(argv, key, says, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["train.py", *argv])
    monkeypatch.setattr(cli, "hydra_main", lambda: pytest.fail("Hydra was reached"))
    with pytest.raises(SystemExit) as exited:
        cli.main()
    err = capsys.readouterr().err
    assert exited.value.code == 2 and err.startswith(f"error: {key}: ") and says in err and err.count("\n") == 1


@pytest.mark.parametrize("argv", [
    ["experiment=act_optim.yaml"], ["-m", "activation=glob(*)"], ["norm=null"], ["~scheduler"],
    ["precision=bf16-mixed"], ["hydra/launcher=joblib"], ["hydra/sweeper=basic"], ["seed=range(3)"],
    ["hparams_search=optuna", "hydra/sweeper/pruner=median"], ["hydra.searchpath=[file:///lab]", "model=mine"],
    ["+hydra.searchpath=[file:///my=lab]", "model=mine"], ["--config-path=/elsewhere", "model=mine"],
    ["-cp", "/elsewhere", "model=mine"], ["logger.csv.flush_logs_every_n_steps=10"],
])
def test_options_hydra_takes_pass_to_hydra(argv, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["train.py", *argv])
    monkeypatch.setattr(cli, "hydra_main", lambda: "hydra ran")
    assert cli.main() == "hydra ran"
