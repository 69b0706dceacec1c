"""A user's own nn.Module as the `model` option, from a config folder of their own (docs/extend.md)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from torch import nn

from trainlab.config.schema import check
from trainlab.errors import ConfigError
from trainlab.run import cli
from trainlab.run.build import build_run
from trainlab.run.cli import config_dirs
from trainlab.run.pipeline import train_and_test

from conftest import ROOT, make_cfg, run_cli

NETS = '''
from torch import nn


class TwoLayer(nn.Module):
    """The docs' example: sizes as torch's layers name them, and the activation and norm factories."""

    def __init__(self, in_features, out_features, hidden=32, activation=nn.ReLU, norm=None):
        super().__init__()
        layers = [nn.Linear(in_features, hidden), *([norm(hidden)] if norm else []), activation()]
        self.layers = nn.Sequential(*layers, nn.Linear(hidden, out_features))

    def forward(self, x):
        return self.layers(x)


class Plain(nn.Module):
    """Takes the sizes only: no activation or norm factory."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, x):
        return self.linear(x)


class NoSizes(nn.Module):
    def __init__(self, width=8):
        super().__init__()
'''


@pytest.fixture
def own(tmp_path, monkeypatch):
    """A project folder: my_nets.py (importable) and my_conf/model/{two_layer,plain,no_sizes}.yaml."""
    project = tmp_path / "project"
    (project / "my_conf" / "model").mkdir(parents=True)
    (project / "my_nets.py").write_text(NETS)
    for option, settings in (("two_layer", "TwoLayer\nhidden: 32"), ("plain", "Plain"), ("no_sizes", "NoSizes")):
        (project / "my_conf" / "model" / f"{option}.yaml").write_text(f"_target_: my_nets.{settings}\n")
    monkeypatch.syspath_prepend(str(project))
    return project


def own_cfg(tmp_path, project, *overrides):
    return make_cfg(tmp_path, f"hydra.searchpath=[file://{project / 'my_conf'}]", "data=digits", *overrides)


def test_own_net_is_the_module_with_the_data_sizes_and_the_group_factories(tmp_path, own):
    # An interpolation in a key of the user's net is resolved before it reaches the net.
    cfg = own_cfg(tmp_path, own, "model=two_layer", "model.hidden=${trainer.max_epochs}", "trainer.max_epochs=12",
                  "norm=batch", "activation=tanh")
    check(cfg)
    net = build_run(cfg).module.net
    assert type(net).__name__ == "TwoLayer"
    first, norm, activation, last = net.layers
    assert (first.in_features, first.out_features, last.out_features) == (64, 12, 10)  # digits: 8x8 pixels, 10 classes
    assert isinstance(norm, nn.BatchNorm1d) and norm.num_features == 12
    assert isinstance(activation, nn.Tanh)


def test_init_group_reaches_the_linear_layers_of_an_own_net(tmp_path, own):
    net = build_run(own_cfg(tmp_path, own, "model=plain", "init=zeros", "init.bias=0.5")).module.net
    assert torch.count_nonzero(net.linear.weight) == 0
    assert torch.all(net.linear.bias == 0.5)


def test_own_net_trains_with_diagnostics_memory_estimate_and_summary(tmp_path, own):
    result = train_and_test(own_cfg(tmp_path, own, "model=two_layer", "debug=limit_batches"))
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "completed" and "test/acc" in result["test"]
    assert summary["num_parameters"] == 64 * 32 + 32 + 32 * 10 + 10
    assert summary["memory"]["total_mb"] > 0 and summary["verdict"]
    assert "gradient_flow" in summary["diagnostics"]


@pytest.mark.parametrize(("overrides", "key", "text"), [
    (["model=no_sizes"], "model._target_", "must take in_features and out_features"),
    (["model=plain", "norm=batch"], "norm", "takes no `norm` factory"),
    (["model=two_layer", "+model.width=3"], "model.width", "not a parameter of my_nets.TwoLayer"),
    (["model=two_layer", "model._target_=my_nets.Missing"], "model._target_", "cannot import"),
    (["model=two_layer", "model._target_=nowhere.Net"], "model._target_", "on PYTHONPATH"),
    (["model=two_layer", "+model.in_features=3"], "model.in_features", "is set by trainlab from the data"),
])
def test_bad_own_net_configs_are_refused_before_training(tmp_path, own, overrides, key, text):
    with pytest.raises(ConfigError) as raised:
        check(own_cfg(tmp_path, own, *overrides))
    assert raised.value.key == key and text in str(raised.value)


def test_a_setting_the_own_net_refuses_names_the_model_and_its_error(tmp_path, own):
    with pytest.raises(ConfigError, match=r"my_nets.TwoLayer\(hidden=\[3\]\) refused its settings: TypeError"):
        build_run(own_cfg(tmp_path, own, "model=two_layer", "model.hidden=[3]"))


@pytest.mark.parametrize("argv", [[], ["model=pyramid"], ["--config-dir", "."], ["-cd=."]])
def test_no_config_dir_or_a_real_folder_reaches_hydra(argv, monkeypatch):
    # `python train.py` with no arguments at all is what `make train`, the README's first command, runs.
    monkeypatch.setattr(sys, "argv", ["train.py", *argv])
    monkeypatch.setattr(cli, "hydra_main", lambda: "hydra ran")
    assert cli.main() == "hydra ran"


@pytest.mark.parametrize("argv", [["--config-dir", "nope"], ["--config-dir=nope"], ["-cd", "nope"], ["--config-dir"]])
def test_a_config_dir_that_is_not_a_folder_is_refused(argv):
    with pytest.raises(ConfigError, match="is not a folder") as raised:
        config_dirs([*argv, "model=two_layer"] if len(argv) > 1 else argv)
    assert raised.value.key == "--config-dir"


@pytest.mark.full  # subprocesses: the slow tier
def test_config_dir_and_own_net_from_the_command_line_without_pythonpath(tmp_path, own):
    """What docs/extend.md shows: the user's folder, their config folder, their class, no PYTHONPATH."""
    done = run_cli("--config-dir", "my_conf", "model=two_layer", "data=digits", "debug=limit_batches", cwd=own)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "TwoLayer: 2,410 parameters" in done.stderr + done.stdout
    (run,) = (own / "outputs" / "runs").iterdir()
    evaluated = subprocess.run([sys.executable, str(ROOT / "eval.py"), str(run)], cwd=own, capture_output=True, text=True,
                               timeout=300)  # the checkpoint rebuilds the net: my_nets imports from here too
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert 0 <= json.loads(evaluated.stdout)["test/acc"] <= 1  # the whole test split: the run read 2 batches of it
    missing = run_cli("--config-dir", "not_there", "model=two_layer", cwd=own)
    assert missing.returncode == 2 and missing.stderr.strip().splitlines() == [
        "error: --config-dir: not_there is not a folder; give the folder that holds your own config groups "
        "(e.g. my_conf, holding my_conf/model/my_net.yaml)"]
    assert len(list((own / "outputs" / "runs").iterdir())) == 1  # the refused command wrote nothing
