"""Bias-variance measurement, diagnostics callbacks and W&B, each checked by real short runs."""
from __future__ import annotations

import json

import pytest
import torch

from trainlab.callbacks import fit_verdict
from trainlab.errors import NonFiniteLoss
from trainlab.pipeline import train_and_test

from conftest import make_cfg, run_cli
from wandb_records import run_contents

QUIET = ("logger=none", "callbacks.progress_bar.refresh_rate=0")


@pytest.fixture(scope="module")
def sigmoid_sgd(tmp_path_factory):
    path = tmp_path_factory.mktemp("sigmoid_sgd")
    return train_and_test(make_cfg(path, "activation=sigmoid", "optim=sgd", "trainer.max_epochs=2", *QUIET))


@pytest.fixture(scope="module")
def relu_adam(tmp_path_factory):
    path = tmp_path_factory.mktemp("relu_adam")
    return train_and_test(make_cfg(path, "activation=relu", "optim=adam", "trainer.max_epochs=2", *QUIET))


def test_train_metrics_are_measured_like_val(relu_adam):
    epoch = relu_adam["history"][-1]
    for key in ("train/loss", "train/acc", "val/loss", "val/acc", "train/loss_running", "gap/loss", "gap/acc"):
        assert key in epoch
    assert epoch["gap/loss"] == pytest.approx(epoch["val/loss"] - epoch["train/loss"])
    # Eval-mode accuracy on the fixed sample differs from the running average under training.
    assert epoch["train/acc"] != epoch["train/acc_running"]


def test_gradient_flow_flags_sigmoid_sgd_not_relu_adam(sigmoid_sgd, relu_adam):
    warnings = sigmoid_sgd["diagnostics"]["gradient_flow"]["warnings"]
    assert any(w.startswith("vanishing gradients") for w in warnings)
    assert relu_adam["diagnostics"]["gradient_flow"]["warnings"] == []


def test_verdicts_from_real_runs(sigmoid_sgd, relu_adam):
    assert sigmoid_sgd["verdict"]["fit"] == "underfitting"
    assert "train acc" in sigmoid_sgd["verdict"]["reason"]
    assert relu_adam["verdict"]["fit"] in ("good fit", "overfitting")


def test_overfitting_verdict_names_the_stop_epoch(tmp_path):
    summary = train_and_test(make_cfg(tmp_path, "trainer.max_epochs=12", "callbacks.early_stopping=null", *QUIET))
    verdict = summary["verdict"]
    assert verdict["fit"] == "overfitting"
    assert verdict["stop_epoch"] == summary["best_epoch"] < 11
    # Testing the best checkpoint does not cut the record back to the best epoch.
    assert [h["epoch"] for h in summary["history"]] == list(range(12)) and summary["final"]["epoch"] == 11
    assert json.loads((tmp_path / "summary.json").read_text())["verdict"] == verdict


def test_fit_verdict_rules():
    def epoch(i, train_acc, val_acc, train_loss, val_loss):
        return {"epoch": i, "train/acc": train_acc, "val/acc": val_acc, "train/loss": train_loss, "val/loss": val_loss}

    assert fit_verdict([epoch(0, 0.3, 0.3, 2.0, 2.0)])["fit"] == "underfitting"
    good = fit_verdict([epoch(0, 0.90, 0.89, 0.4, 0.41), epoch(1, 0.95, 0.94, 0.2, 0.21)])
    assert good["fit"] == "good fit" and good["stop_epoch"] is None
    turned = fit_verdict([epoch(0, 0.95, 0.94, 0.3, 0.2), epoch(1, 0.96, 0.94, 0.1, 0.3)])
    assert turned["fit"] == "overfitting" and turned["stop_epoch"] == 0
    assert "early stopping should have stopped there" in turned["reason"]
    gap_only = fit_verdict([epoch(0, 0.95, 0.80, 0.3, 0.6), epoch(1, 0.99, 0.85, 0.1, 0.5)])
    assert gap_only["fit"] == "overfitting" and gap_only["stop_epoch"] is None  # val loss still falling
    assert "still near its minimum" in gap_only["reason"] and "early stopping" not in gap_only["reason"]


@pytest.mark.parametrize("samples, fit", [((50, 50), "good fit"), ((500, 500), "overfitting"), (None, "overfitting")])
def test_overfitting_gap_must_exceed_the_sampling_noise(samples, fit):
    # train 0.96 vs val 0.90: on 50 samples each that is 48 vs 45 right (Fisher p ~0.24), on 500 it is p < 0.001.
    history = [{"epoch": 0, "train/acc": 0.96, "val/acc": 0.90, "train/loss": 0.2, "val/loss": 0.3}]
    verdict = fit_verdict(history, samples=samples)
    assert verdict["fit"] == fit
    if samples == (50, 50):
        assert "within the sampling noise" in verdict["reason"] and verdict["gap_p"] > 0.05
    if samples == (500, 500):
        assert "on 500 val samples" in verdict["reason"] and verdict["gap_p"] < 0.001


def test_verdict_of_a_real_run_tests_the_gap_on_its_sample_sizes(relu_adam):
    verdict = relu_adam["verdict"]
    assert "val samples" in verdict["reason"] and 0 <= verdict["gap_p"] <= 1


def test_dead_units_per_relu_layer(relu_adam, sigmoid_sgd):
    dead = relu_adam["diagnostics"]["dead_units"]
    assert sorted(dead) == ["dead/layer0", "dead/layer1", "dead/layer2"]
    assert all(0.0 <= v <= 1.0 for v in dead.values())
    assert "dead_units" not in sigmoid_sgd.get("diagnostics", {})  # no ReLU, nothing to count


def test_dead_units_counts_units_that_never_fire(tmp_path):
    # Biases of -100 keep every hidden ReLU at zero: all units dead.
    summary = train_and_test(make_cfg(tmp_path, "data=digits", "trainer.max_epochs=1", "init=zeros", "init.bias=-100",
                                      *QUIET))
    assert all(v == 1.0 for v in summary["diagnostics"]["dead_units"].values())


def test_dead_units_read_validations_own_forward_pass(tmp_path):
    import lightning as L
    from hydra.utils import instantiate

    from trainlab.callbacks import DeadUnits
    from trainlab.module import Classifier

    datamodule = instantiate(make_cfg(tmp_path, "data=digits").data, shuffle_seed=0)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(datamodule.num_features, 32), torch.nn.ReLU(), torch.nn.Linear(32, 16),
                              torch.nn.ReLU(), torch.nn.Linear(16, datamodule.num_classes))
    forwards = []
    net.register_forward_hook(lambda _m, inputs, _out: forwards.append(len(inputs[0])))
    dead_units = DeadUnits()
    trainer = L.Trainer(max_epochs=1, limit_train_batches=2, num_sanity_val_steps=0, callbacks=[dead_units],
                        logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(Classifier(net, datamodule.num_classes, lambda params: torch.optim.Adam(params)), datamodule=datamodule)
    val_batches = sum(len(loader) for loader in datamodule.val_dataloader())
    assert len(forwards) == 2 + val_batches  # no forward pass of its own

    hidden, expected = next(iter(datamodule.val_dataloader()[0]))[0], {}
    with torch.no_grad():
        for layer in net.eval():
            hidden = layer(hidden)
            if isinstance(layer, torch.nn.ReLU):
                expected[f"dead/layer{len(expected)}"] = (hidden <= 0).all(dim=0).float().mean().item()
    assert dead_units.report == pytest.approx(expected) and len(expected) == 2


def test_memory_estimate_follows_the_notes_formula(relu_adam):
    memory = relu_adam["memory"]
    params_mb = 669_962 * 4 / 1024**2
    assert memory["parameters_mb"] == pytest.approx(params_mb, abs=1e-3)
    assert memory["optimizer_state_mb"] == pytest.approx(2 * params_mb, abs=1e-3)  # Adam: two moments
    # batch 128 x (512+512 + 256+256 + 512+512 + 10) values of 4 bytes
    assert memory["activations_mb"] == pytest.approx(128 * 2570 * 4 / 1024**2, abs=1e-3)


def test_nan_guard_stops_keeps_last_finite_checkpoint_and_explains(tmp_path):
    # Epoch 0 trains normally (and is checkpointed); the scheduler then multiplies the lr by 1e6.
    cfg = make_cfg(tmp_path, "data=digits", "optim=sgd", "scheduler=step", "scheduler.step_size=1",
                   "scheduler.gamma=1e6", "trainer.max_epochs=4", *QUIET)
    with pytest.raises(NonFiniteLoss) as error:
        train_and_test(cfg)
    message = str(error.value)
    for item in ("loss became", "epoch 1", "learning rate: 10000", "NaN/inf in the inputs", "feature scaling",
                 "output size vs labels: 10 outputs for 10 classes", "precision"):
        assert item in message
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["error"].startswith("loss became")
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert all(torch.isfinite(v).all() for v in state.values())


@pytest.mark.full
def test_nan_guard_cli_exit_code(tmp_path):
    result = run_cli("data=digits", "optim=sgd", "optim.lr=1e6", "logger=none", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 3
    assert "Checklist" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.full
def test_wandb_offline_run_records_history_config_group_and_epoch_axis(tmp_path):
    result = run_cli("-m", "logger=wandb", "data=digits", "trainer.max_epochs=2", "activation=relu,tanh", "replicates=2",
                     f"hydra.sweep.dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-2000:]
    runs = sorted(tmp_path.glob("*/wandb/offline-run-*"))
    assert len(runs) == 4
    names, job_types = set(), []
    for run in runs:
        contents = run_contents(run)
        names.add(contents["name"])
        job_types.append(contents["job_type"])
        assert contents["group"] == tmp_path.name
        assert contents["exit_code"] == 0
        keys = {k for row in contents["history"] for k in row}
        assert {"train/loss", "val/loss", "train/acc", "val/acc", "gap/loss", "epoch"} <= keys
        assert contents["metrics"]["train/*"] == "epoch" and contents["metrics"]["val/*"] == "epoch"
        assert contents["config"]["optim"]["lr"] == 0.001
        assert "${" not in json.dumps(contents["config"])
    assert names == {f"activation={a},data=digits,logger=wandb,replicates=2,seed={s},trainer.max_epochs=2"
                     for a in ("relu", "tanh") for s in (42, 43)}
    # Replicates share a job type (the setting, without seed and tooling), so W&B's grouped charts band them.
    assert sorted(job_types) == ["activation=relu,data=digits,trainer.max_epochs=2"] * 2 + [
        "activation=tanh,data=digits,trainer.max_epochs=2"] * 2


@pytest.mark.full
def test_wandb_crash_marks_run_failed(tmp_path):
    # In a subprocess: W&B writes its log asynchronously, complete once the process has ended.
    result = run_cli("logger=wandb", "data=digits", "optim=sgd", "optim.lr=1e6", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 3
    (run,) = tmp_path.glob("wandb/offline-run-*")
    assert run_contents(run)["exit_code"] == 1


@pytest.mark.full
def test_wandb_online_without_key_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    result = run_cli("logger=wandb", "logger.mode=online", f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode == 2 and "logger.mode: W&B online needs an API key" in result.stderr


@pytest.mark.full
def test_bias_variance_experiment_sweeps_capacity_and_reports(tmp_path):
    result = run_cli("experiment=bias_variance", "replicates=1", "data=digits", "trainer.max_epochs=1", "logger=none",
                     f"hydra.sweep.dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-2000:]
    sizes = sorted(json.loads(p.read_text())["num_parameters"] for p in tmp_path.glob("*/summary.json"))
    assert len(sizes) == 5 and len(set(sizes)) == 5
    report = (tmp_path / "report.md").read_text()  # written by the after-sweep callback
    assert all(f"model.width={w}" in report for w in (4, 16, 64, 256, 1024))
    assert (tmp_path / "bias_variance.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
