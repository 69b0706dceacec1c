"""Real short runs, reproducibility, precision handling, bad input, and the CLI as a user types it."""
from __future__ import annotations

import json
import logging
import math
import subprocess
import sys

import pytest

from trainlab import CONF
from trainlab.config.schema import check
from trainlab.errors import ConfigError
from trainlab.run.pipeline import train_and_test
from trainlab.run.summary import optimized_value

from conftest import QUIET, ROOT, make_cfg, run_cli


def test_relu_adam_learns_mnist(tmp_path):
    summary = train_and_test(make_cfg(tmp_path, "activation=relu", "optim=adam", "trainer.max_epochs=3", *QUIET))
    assert summary["best"]["val/acc"] > 0.85
    assert summary["history"][-1]["train/loss"] < summary["history"][0]["train/loss"]
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk["num_parameters"] == 784 * 512 + 512 + 512 * 256 + 256 + 256 * 512 + 512 + 512 * 10 + 10
    assert on_disk["layer_widths"] == [784, 512, 256, 512, 10]
    assert on_disk["best_epoch"] in range(3) and on_disk["wall_time_s"] > 0
    assert set(on_disk["test"]) == {"test/loss", "test/acc"}
    assert optimized_value(make_cfg(tmp_path), summary) == summary["best"]["val/acc"]
    assert "${" not in (tmp_path / "config.yaml").read_text()  # saved fully resolved


def short_run(tmp_path, *overrides):
    return train_and_test(make_cfg(tmp_path, "data=digits", "trainer.max_epochs=2", *QUIET, *overrides))


def test_same_seed_same_metrics_and_seed_zero_is_a_seed(tmp_path):
    first = short_run(tmp_path / "a", "seed=0", "model.dropout=0.2")
    second = short_run(tmp_path / "b", "seed=0", "model.dropout=0.2")
    other = short_run(tmp_path / "c", "seed=1", "model.dropout=0.2")
    assert first["history"] == second["history"] and first["test"] == second["test"]
    assert first["history"] != other["history"]


def logged_learning_rates(folder) -> list[float]:
    """The learning rate of each epoch, as LearningRateMonitor logged it to metrics.csv."""
    import pandas

    return pandas.read_csv(folder / "csv" / "metrics.csv")["lr-Adam"].dropna().tolist()  # a row per epoch start


@pytest.mark.parametrize(("scheduler", "expected"), [
    (("scheduler=step", "scheduler.step_size=1", "scheduler.gamma=0.1"), [1e-3, 1e-4, 1e-5]),
    (("scheduler=step", "scheduler.step_size=2", "scheduler.gamma=0.5"), [1e-3, 1e-3, 5e-4]),
    (("scheduler=cosine",), [1e-3, 1e-3 * (1 + math.cos(math.pi / 3)) / 2, 1e-3 * (1 + math.cos(2 * math.pi / 3)) / 2]),
    (("scheduler=none",), [1e-3, 1e-3, 1e-3]),
])
def test_scheduler_sets_each_epochs_learning_rate(tmp_path, scheduler, expected):
    short_run(tmp_path, *scheduler, "trainer.max_epochs=3", "logger=csv", "callbacks.early_stopping=null")
    assert logged_learning_rates(tmp_path) == pytest.approx(expected, rel=1e-6)


def test_fp16_true_with_adam_raises_eps_and_stays_finite(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        summary = short_run(tmp_path, "precision=16-true", "optim=adam")
    assert "optim.eps=1e-08 underflows" in caplog.text
    assert "eps: 0.0001" in (tmp_path / "config.yaml").read_text()
    assert all(h["train/loss"] == h["train/loss"] for h in summary["history"])  # no NaN
    assert summary["best"]["val/acc"] > 0.5


def test_fp16_mixed_on_cpu_says_it_runs_as_bf16(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        short_run(tmp_path, "precision=16-mixed", "trainer=cpu", "debug=fast_dev_run")
    assert "runs as bf16-mixed" in caplog.text


@pytest.mark.parametrize(("overrides", "key"), [
    (["optim.lr=0"], "optim.lr"),
    (["optim.lr=-0.1"], "optim.lr"),
    (["optim.lr=abc"], "optim.lr"),
    (["optim=momentum", "optim.momentum=1.5"], "optim.momentum"),
    (["optim.weight_decay=-1"], "optim.weight_decay"),
    (["trainer.precision=8-true"], "trainer.precision"),
    (["trainer.max_epochs=0"], "trainer.max_epochs"),
    (["model.dropout=1.0"], "model.dropout"),
    (["model.dropout=-0.1"], "model.dropout"),
    (["model.width=0"], "model.width"),
    (["model.depth=-1"], "model.depth"),
    (["model.bottleneck=1024"], "model.bottleneck"),
    (["seed=abc"], "seed"),
    (["data.scaler=robust"], "data.scaler"),
    (["data.batch_size=0"], "data.batch_size"),
    (["+model.colour=red"], "model.colour"),
    (["data=digits", "data.val_fraction=0.0001"], "data.val_fraction"),
    (["init=normal", "init.std=-1"], "init.std"),
    (["init=uniform", "init.a=1", "init.b=0"], "init.b"),
    (["init=normal", "+init.gain=2"], "init.gain"),
    (["activation=leaky_relu", "activation.negative_slope=-1"], "activation.negative_slope"),
    (["+optim.colour=red"], "optim.colour"),
    (["scheduler=step", "scheduler.gamma=0"], "scheduler.gamma"),
    (["norm=group", "norm.num_groups=0"], "norm.num_groups"),
    (["callbacks.early_stopping.patience=-1"], "callbacks.early_stopping.patience"),
    (["+trainer.gradient_clip_val=-1"], "trainer.gradient_clip_val"),
])
def test_impossible_values_fail_before_training(tmp_path, overrides, key):
    with pytest.raises(ConfigError, match=key):
        train_and_test(make_cfg(tmp_path, *overrides))
    assert not (tmp_path / "checkpoints").exists()


# Keys that trainlab's messages and README tell the user to set, exactly as printed.
ADVISED = ["trainer.gradient_clip_val=1.0", "trainer.gradient_clip_algorithm=value", "trainer.accumulate_grad_batches=4",
           "trainer.limit_train_batches=0.5", "optim.lr=0.0001", "optim=adam", "data.scaler=minmax", "precision=32-true",
           "model.allow_wide_bottleneck=true", "callbacks.dead_units=null", "callbacks.nan_guard=null",
           "optim.nesterov=false"]


@pytest.mark.parametrize("override", ADVISED)
def test_advised_keys_work_as_printed(tmp_path, override):
    check(make_cfg(tmp_path, "optim=momentum" if "nesterov" in override else "optim=adam", override))


def test_gradient_clipping_runs_without_a_plus(tmp_path):
    summary = short_run(tmp_path, "trainer.gradient_clip_val=1.0", "debug=fast_dev_run")
    assert summary["status"] == "completed"


def test_cli_bad_value_is_one_line_and_exit_2(tmp_path):
    result = run_cli("optim.lr=-1", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: optim.lr: must be a number > 0, got -1")
    assert "Traceback" not in result.stderr


def test_cli_unknown_option_lists_the_choices(tmp_path):
    result = run_cli("optim=adamax", f"hydra.run.dir={tmp_path}")
    assert result.returncode != 0
    assert "adam" in result.stderr and "rmsprop" in result.stderr and "Traceback" not in result.stderr


def test_cli_unknown_key_is_named(tmp_path):
    result = run_cli("model.colour=red", f"hydra.run.dir={tmp_path}")
    assert result.returncode != 0
    assert "Could not override 'model.colour'" in result.stderr and "Traceback" not in result.stderr


def test_cli_tab_completion_is_hydras():
    result = run_cli("-sc", "install=bash")
    assert result.returncode == 0 and "hydra_bash_completion" in result.stdout


@pytest.mark.parametrize("arguments", [["--help"], ["--cfg", "job"], ["data=digits", "--cfg", "job"]])
def test_help_and_cfg_job_never_import_torch(arguments):
    done = subprocess.run([sys.executable, "-X", "importtime", str(ROOT / "train.py"), *arguments], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "hydra" in imported and not {"torch", "lightning", "numpy"} & imported


@pytest.mark.parametrize("overrides", [[], ["model=pyramid", "data=digits"]])
def test_help_is_hydras_own_page_made_faster(overrides):
    ours = run_cli(*overrides, "--help")
    hydras = subprocess.run([sys.executable, "-c", "from trainlab.run.cli import hydra_main; hydra_main()", *overrides,
                             "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert ours.returncode == hydras.returncode == 0 and ours.stdout == hydras.stdout


def test_a_help_template_asking_for_hydras_flags_gets_hydras_page():
    result = run_cli("hydra.help.template='flags: $FLAGS_HELP'", "--help")
    assert result.returncode == 0 and result.stdout.startswith("flags: --help,-h : Application's help\n")


def test_help_with_a_bad_override_is_hydras_error():
    result = run_cli("model.bogus=1", "--help")
    assert result.returncode == 1 and "Could not override 'model.bogus'" in result.stderr


def test_help_with_an_option_no_group_holds_is_one_line():
    result = run_cli("model=bogus", "--help")
    assert result.returncode == 2 and result.stderr.startswith("error: model: no model option 'bogus'")


def test_cli_help_lists_groups_and_options():
    result = run_cli("--help")
    assert result.returncode == 0
    for line in ("model: bnnet, custom, hourglass, pyramid, text_bow, text_embed, uniform",
                 "precision: 16-mixed, 16-true, 32-true",
                 "norm: batch, group, layer, none"):
        assert line in result.stdout


@pytest.mark.full
def test_cli_multirun_one_folder_and_summary_per_job(tmp_path):
    result = run_cli("-m", "activation=sigmoid,relu", "optim=sgd,adam", "data=digits", "trainer.max_epochs=1",
                     "logger=none", f"hydra.sweep.dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = sorted(p.parent.name for p in tmp_path.glob("*/summary.json"))
    expected = [("0", "sigmoid", "sgd"), ("1", "sigmoid", "adam"), ("2", "relu", "sgd"), ("3", "relu", "adam")]
    assert len(jobs) == 4
    for name, (num, activation, optim) in zip(jobs, expected, strict=True):
        assert name.startswith(f"{num}_activation={activation},") and f"optim={optim}," in name
    for job in jobs:
        summary = json.loads((tmp_path / job / "summary.json").read_text())
        assert summary["status"] == "completed"
        assert (tmp_path / job / "config.yaml").exists()


def test_lr_find_suggests_a_finite_positive_lr_plots_it_and_trains_nothing(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="trainlab"):
        record = train_and_test(make_cfg(tmp_path, "tune=lr_find", "data=digits", "lr_find.num_training=40", *QUIET))
    assert math.isfinite(record["suggested_lr"]) and 1e-6 <= record["suggested_lr"] <= 1.0
    assert (tmp_path / "lr_find.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / "lr_find.json").read_text())["suggested_lr"] == record["suggested_lr"]
    assert f"optim.lr={record['suggested_lr']:.3g}" in caplog.text
    assert not (tmp_path / "summary.json").exists() and not list(tmp_path.rglob("*.ckpt"))


@pytest.mark.parametrize(("overrides", "key"), [
    (["lr_find.min_lr=1", "lr_find.max_lr=0.1"], "lr_find.max_lr"),
    (["debug=fast_dev_run"], "lr_find"),
])
def test_lr_find_refuses_what_gives_no_curve(tmp_path, overrides, key):
    with pytest.raises(ConfigError, match=key):
        train_and_test(make_cfg(tmp_path, "tune=lr_find", "data=digits", *overrides, *QUIET))


OPTIMIZERS = sorted(path.stem for path in (CONF / "optim").glob("*.yaml"))


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_fastest_optimizer_kernel_matches_the_default_one(tmp_path, optimizer):
    import torch
    from hydra.utils import instantiate

    from trainlab.nn.optim import accepts, build_optimizer

    factory = instantiate(make_cfg(tmp_path, f"optim={optimizer}").optim)
    nets = []
    for build in (build_optimizer, lambda make, params: make(params)):
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
        chosen = build(factory, net.parameters())
        for step in range(20):
            x = torch.randn(32, 8, generator=torch.Generator().manual_seed(step))
            loss = torch.nn.functional.cross_entropy(net(x), x[:, :3].argmax(1))
            chosen.zero_grad()
            loss.backward()
            chosen.step()
        nets.append((net, chosen))
    (fast, fast_optimizer), (reference, reference_optimizer) = nets
    fused = accepts(factory, "fused")
    assert fast_optimizer.defaults.get("fused") is (True if fused else None)
    assert fast_optimizer.defaults.get("foreach") is (None if fused else True)  # RMSprop: no fused kernel
    assert reference_optimizer.defaults.get("fused") in (None, False)
    assert reference_optimizer.defaults.get("foreach") is None
    for p, q in zip(fast.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)  # the same update, summed in another order


def test_a_configs_own_kernel_choice_is_kept(tmp_path):
    import torch
    from hydra.utils import instantiate

    from trainlab.nn.optim import build_optimizer

    factory = instantiate(make_cfg(tmp_path, "optim=adam", "+optim.fused=false").optim)
    assert build_optimizer(factory, [torch.nn.Parameter(torch.zeros(2))]).defaults["fused"] is False


@pytest.mark.parametrize(("optimizer", "torchs_loop"), [("adam", "+optim.fused=false"),
                                                       ("rmsprop", "+optim.foreach=false")])
def test_trainlabs_kernel_and_torchs_loop_train_to_the_same_metrics(tmp_path, optimizer, torchs_loop):
    fast = short_run(tmp_path / "fast", f"optim={optimizer}")
    loop = short_run(tmp_path / "loop", f"optim={optimizer}", torchs_loop)
    for epoch_fast, epoch_loop in zip(fast["history"], loop["history"], strict=True):
        for key in ("train/loss", "val/loss", "val/acc"):
            assert epoch_fast[key] == pytest.approx(epoch_loop[key], abs=1e-4), key


def test_half_precision_weights_keep_torchs_own_update(tmp_path):
    import torch
    from hydra.utils import instantiate

    from trainlab.nn.optim import build_optimizer

    factory = instantiate(make_cfg(tmp_path, "optim=sgd").optim)
    half = [torch.nn.Parameter(torch.zeros(2, dtype=torch.float16))]
    defaults = build_optimizer(factory, half).defaults
    assert defaults.get("fused") is None and defaults.get("foreach") is None
