"""Bias-variance measurement, diagnostics callbacks and W&B, each checked by real short runs."""
from __future__ import annotations

import json
import re

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trainlab.errors import NonFiniteLoss
from trainlab.nn.diagnostics import NaNGuard
from trainlab.nn.models import MLP, estimate_memory
from trainlab.nn.verdict import fit_verdict
from trainlab.run.build import build_run
from trainlab.run.pipeline import train_and_test

from conftest import QUIET, make_cfg, run_cli
from wandb_records import run_contents


@pytest.fixture(scope="module")
def sigmoid_sgd(tmp_path_factory):
    path = tmp_path_factory.mktemp("sigmoid_sgd")
    return train_and_test(make_cfg(path, "activation=sigmoid", "optim=sgd", "trainer.max_epochs=2", *QUIET))


@pytest.fixture(scope="module")
def relu_adam(tmp_path_factory):
    path = tmp_path_factory.mktemp("relu_adam")
    return train_and_test(make_cfg(path, "activation=relu", "optim=adam", "trainer.max_epochs=2", *QUIET))


def test_train_metrics_are_measured_like_val(tmp_path):
    # Dropout 0.5: measured in train mode, the training sample's loss and accuracy would come out otherwise.
    run = build_run(make_cfg(tmp_path, "data=digits", "model.dropout=0.5", "trainer.max_epochs=1", *QUIET,
                             "callbacks=none"))
    run.trainer.fit(run.module, datamodule=run.datamodule)
    epoch = run.module.history[-1]
    train_x, _ = run.datamodule.splits["train"]
    val_x, _ = run.datamodule.splits["val"]
    sample = run.datamodule.val_dataloader()[1]
    xs, ys = (torch.cat(parts) for parts in zip(*sample, strict=True))
    assert len(ys) == len(val_x)  # as large as the val split
    train_rows = {row.numpy().tobytes() for row in train_x}
    assert all(row.numpy().tobytes() in train_rows for row in xs)  # rows of the training split
    run.module.eval()
    with torch.no_grad():
        logits = run.module(xs)
    assert epoch["train/loss"] == pytest.approx(F.cross_entropy(logits, ys).item(), rel=1e-5)
    assert epoch["train/acc"] == pytest.approx((logits.argmax(1) == ys).float().mean().item(), abs=1e-6)
    assert run.module.samples["train"] == run.module.samples["val"] == len(val_x)
    assert epoch["gap/loss"] == pytest.approx(epoch["val/loss"] - epoch["train/loss"], abs=1e-9)
    assert epoch["gap/acc"] == pytest.approx(epoch["train/acc"] - epoch["val/acc"], abs=1e-9)


def test_gradient_flow_flags_sigmoid_sgd_not_relu_adam(sigmoid_sgd, relu_adam):
    warnings = sigmoid_sgd["diagnostics"]["gradient_flow"]["warnings"]
    assert any(w.startswith("vanishing gradients") for w in warnings)
    assert relu_adam["diagnostics"]["gradient_flow"]["warnings"] == []


def test_verdicts_from_real_runs(sigmoid_sgd, relu_adam):
    assert sigmoid_sgd["verdict"]["fit"] == "underfitting"
    assert relu_adam["verdict"]["fit"] != "underfitting"
    for summary in (sigmoid_sgd, relu_adam):
        # The verdict judges the run's own last epoch, with the val split's size for the noise test (MNIST: 500).
        last = summary["history"][-1]
        assert summary["verdict"] == fit_verdict(summary["history"], samples=(500, 500))
        assert (summary["verdict"]["train_acc"], summary["verdict"]["val_acc"]) == (last["train/acc"], last["val/acc"])
        assert f"train acc {last['train/acc']:.3f}" in summary["verdict"]["reason"]


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


def test_fit_verdict_numbers_and_thresholds_at_their_edges():
    def epoch(i, train_acc, val_acc, train_loss, val_loss):
        return {"epoch": i, "train/acc": train_acc, "val/acc": val_acc, "train/loss": train_loss, "val/loss": val_loss}

    verdict = fit_verdict([epoch(0, 0.8, 0.79, 0.5, 0.45), epoch(1, 0.8, 0.79, 0.4, 0.455)])
    assert verdict["fit"] == "good fit"  # train acc exactly underfit_acc is not underfitting
    assert {k: verdict[k] for k in ("train_acc", "val_acc", "train_loss", "val_loss", "best_val_loss", "best_epoch")} \
        == {"train_acc": 0.8, "val_acc": 0.79, "train_loss": 0.4, "val_loss": 0.455, "best_val_loss": 0.45, "best_epoch": 0}
    # A gap exactly at overfit_gap is not over it; a rise exactly at turn_tolerance is not above it (exact binary values).
    assert fit_verdict([epoch(0, 0.75, 0.5, 0.2, 0.25)], underfit_acc=0.5, overfit_gap=0.25)["fit"] == "good fit"
    at_tolerance = fit_verdict([epoch(0, 0.95, 0.94, 0.3, 0.5), epoch(1, 0.96, 0.95, 0.2, 0.625)], turn_tolerance=0.25)
    assert at_tolerance["fit"] == "good fit"
    # Overfitting by the gap alone, with val loss a little (within tolerance) above an earlier minimum: no stop epoch.
    gap = fit_verdict([epoch(0, 0.95, 0.80, 0.3, 0.60), epoch(1, 0.99, 0.85, 0.1, 0.605)])
    assert gap["fit"] == "overfitting" and gap["stop_epoch"] is None and "early stopping" not in gap["reason"]


def test_fit_verdict_reads_only_epochs_with_both_train_and_val_metrics():
    unknown = {"fit": "unknown", "reason": "no epoch with both train and val metrics", "stop_epoch": None}
    assert fit_verdict([]) == unknown
    assert fit_verdict([{"epoch": 0, "train/loss": 2.0, "train/acc": 0.3}, {"epoch": 1, "val/loss": 2.0}]) == unknown
    # A last record with val metrics only (a resumed run's first validation, say) is not the last epoch.
    first = {"epoch": 0, "train/acc": 0.95, "val/acc": 0.94, "train/loss": 0.2, "val/loss": 0.21}
    assert fit_verdict([first, {"epoch": 1, "val/loss": 5.0, "val/acc": 0.1}])["fit"] == "good fit"


def test_fit_verdict_reasons_in_full():
    def epoch(i, train_acc, val_acc, val_loss):
        return {"epoch": i, "train/acc": train_acc, "val/acc": val_acc, "train/loss": 0.1, "val/loss": val_loss}

    turned = fit_verdict([epoch(0, 0.95, 0.94, 0.2), epoch(1, 0.96, 0.94, 0.4)])
    assert turned["reason"] == ("train acc 0.960 vs val acc 0.940 (gap 0.020); val loss 0.4000 is 100% above its "
                                "minimum 0.2000 at epoch 0: early stopping should have stopped there; regularise or "
                                "get more data")
    good = fit_verdict([epoch(0, 0.95, 0.94, 0.2)])
    assert good["reason"] == "train acc 0.950, val acc 0.940 (gap 0.010), val loss near its minimum"
    noisy = fit_verdict([epoch(0, 0.96, 0.90, 0.2)], samples=(50, 50))
    assert noisy["reason"] == (f"train acc 0.960, val acc 0.900 (gap 0.060, p={noisy['gap_p']:.2g} on 50 val samples; "
                               "within the sampling noise), val loss near its minimum")
    half = fit_verdict([epoch(0, 0.95, 0.94, 0.2), epoch(1, 0.96, 0.94, 0.3)])
    assert "val loss 0.3000 is 50% above its minimum 0.2000" in half["reason"]
    small_gap = fit_verdict([epoch(0, 0.95, 0.94, 0.2)], samples=(50, 50))  # noise, but no gap worth explaining
    assert "within" not in small_gap["reason"]
    at_gap = fit_verdict([epoch(0, 0.75, 0.5, 0.2)], underfit_acc=0.5, overfit_gap=0.25, samples=(4, 4))
    assert at_gap["fit"] == "good fit" and "within" not in at_gap["reason"]
    # Overfitting by the gap, val loss exactly turn_tolerance above its minimum (exact binary values): no stop epoch.
    gap = fit_verdict([epoch(0, 0.95, 0.80, 0.5), epoch(1, 0.99, 0.85, 0.625)], turn_tolerance=0.25)
    assert gap["fit"] == "overfitting" and gap["stop_epoch"] is None


@pytest.mark.parametrize(("last_val_loss", "tolerance", "fit"), [
    (0.2039, 0.02, "good fit"),      # 1.95% above the minimum 0.2: within the tolerance
    (0.2041, 0.02, "overfitting"),   # 2.05% above: the turn counts
    (0.2041, 0.03, "good fit"),      # a wider tolerance forgives it
    (0.2100, 0.03, "overfitting"),   # 5% above
])
def test_turn_tolerance_is_relative_to_the_minimum_val_loss(last_val_loss, tolerance, fit):
    history = [{"epoch": 0, "train/acc": 0.95, "val/acc": 0.94, "train/loss": 0.25, "val/loss": 0.2},
               {"epoch": 1, "train/acc": 0.96, "val/acc": 0.94, "train/loss": 0.2, "val/loss": last_val_loss}]
    verdict = fit_verdict(history, turn_tolerance=tolerance)
    assert verdict["fit"] == fit
    assert verdict["stop_epoch"] == (0 if fit == "overfitting" else None)
    assert verdict["best_epoch"] == 0 and verdict["best_val_loss"] == 0.2


@pytest.mark.parametrize(("train_acc", "val_acc", "fit"), [
    (0.7999, 0.79, "underfitting"), (0.8001, 0.79, "good fit"),   # underfit_acc 0.8 on train acc, not val
    (0.95, 0.9001, "good fit"), (0.95, 0.8990, "overfitting"),     # the gap must exceed 0.05
])
def test_underfit_and_gap_thresholds(train_acc, val_acc, fit):
    history = [{"epoch": 0, "train/acc": train_acc, "val/acc": val_acc, "train/loss": 0.3, "val/loss": 0.3}]
    verdict = fit_verdict(history)
    assert verdict["fit"] == fit
    assert (verdict["train_acc"], verdict["val_acc"]) == (train_acc, val_acc)


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

    from trainlab.nn.diagnostics import DeadUnits
    from trainlab.nn.module import Classifier

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


@pytest.mark.parametrize(("optimizer", "states"), [
    (lambda p: torch.optim.SGD(p, lr=0.1), 0), (lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), 1),
    (lambda p: torch.optim.RMSprop(p), 1), (lambda p: torch.optim.Adam(p), 2), (lambda p: torch.optim.AdamW(p), 2)])
@pytest.mark.parametrize(("precision", "weight_bytes", "activation_bytes"), [
    ("64-true", 8, 8), ("32-true", 4, 4), ("bf16-mixed", 4, 2), ("16-mixed", 4, 2), ("bf16-true", 2, 2),
    ("16-true", 2, 2)])
def test_memory_estimate_for_each_optimizer_and_precision(optimizer, states, precision, weight_bytes,
                                                          activation_bytes):
    net = MLP(1000, 10, [512, 256], nn.ReLU)
    params = (1000 * 512 + 512) + (512 * 256 + 256) + (256 * 10 + 10)
    memory = estimate_memory(net, torch.zeros(1, 1000), optimizer(net.parameters()), precision, batch_size=100)
    mb, rounding = 1024**2, 6e-4  # summary.json keeps 3 decimals
    assert memory["parameters_mb"] == memory["gradients_mb"] == pytest.approx(params * weight_bytes / mb, abs=rounding)
    assert memory["optimizer_state_mb"] == pytest.approx(states * params * weight_bytes / mb, abs=rounding)
    # per sample: 512 + 512 (Linear, ReLU) + 256 + 256 + 10 outputs, times the batch
    assert memory["activations_mb"] == pytest.approx(100 * 1546 * activation_bytes / mb, abs=rounding)
    assert memory["total_mb"] == pytest.approx(sum(v for k, v in memory.items() if k != "total_mb"), abs=2 * rounding)


def test_exploding_gradients_are_flagged_once_with_the_clipping_advice(tmp_path):
    summary = train_and_test(make_cfg(tmp_path, "data=digits", "trainer.max_epochs=1", *QUIET,
                                      "callbacks.gradient_flow.exploding_norm=1e-3",
                                      "callbacks.gradient_flow.every_n_steps=1"))
    warnings = summary["diagnostics"]["gradient_flow"]["warnings"]
    exploding = [w for w in warnings if w.startswith("exploding gradients")]
    assert len(exploding) == 1 and "trainer.gradient_clip_val=1.0" in exploding[0]
    calm = train_and_test(make_cfg(tmp_path / "calm", "data=digits", "trainer.max_epochs=1", *QUIET))
    assert not any(w.startswith("exploding") for w in calm["diagnostics"].get("gradient_flow", {}).get("warnings", []))


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
    # No checkpoint written after the NaN: last.ckpt is epoch 0's, and no interrupted.ckpt of non-finite weights.
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["best-epoch000.ckpt", "last.ckpt"]
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["epoch"] == 0 and all(torch.isfinite(v).all() for v in last["state_dict"].values())


def test_own_callbacks_are_one_lightning_callback_that_calls_each_members_hooks_once(tmp_path):
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping

    from trainlab.nn.diagnostics import Diagnostic
    from trainlab.nn.folding import OwnCallbacks, fold_own, unfolded

    class Counting(Diagnostic):
        name = "counting"

        def on_train_batch_end(self, *args):
            self.report["steps"] = self.report.get("steps", 0) + 1

        def on_train_epoch_end(self, *args):
            self.report["epochs"] = self.report.get("epochs", 0) + 1

    counting, guard, stopping = Counting(), NaNGuard(), EarlyStopping("val/loss")
    run = build_run(make_cfg(tmp_path, "data=digits", *QUIET))
    callbacks = fold_own([counting, stopping, guard])  # folded where the first of trainlab's own stood
    assert [type(c) for c in callbacks] == [OwnCallbacks, EarlyStopping] and unfolded(callbacks) == [counting, guard,
                                                                                                     stopping]
    trainer = L.Trainer(max_epochs=2, limit_train_batches=3, limit_val_batches=1, logger=False, callbacks=callbacks,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(run.module, datamodule=run.datamodule)
    assert counting.report == {"steps": 6, "epochs": 2}  # each hook once, not once per member or per callback


def test_lightning_skips_the_hooks_a_callback_leaves_idle(tmp_path):
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping

    from trainlab.nn.checkpoints import BestAndLastCheckpoint
    from trainlab.nn.folding import fold_own

    class Counting(L.Callback):
        def __init__(self):
            self.steps = 0

        def on_train_batch_end(self, *args):
            self.steps += 1

    counting, stopping = Counting(), EarlyStopping("val/loss")
    callbacks = fold_own([counting, stopping, NaNGuard()])
    assert counting.on_train_batch_start is None and counting.on_train_batch_end is not None
    assert stopping.on_train_batch_end is None and stopping.on_validation_end is not None
    assert callbacks[-1].on_before_backward is None and callbacks[-1].on_train_batch_end is not None
    assert callbacks[-1].on_save_checkpoint is not None  # called on every callback, callable or not
    assert BestAndLastCheckpoint().on_train_batch_end is None  # saves at epoch ends only: no hook per step
    assert BestAndLastCheckpoint(every_n_train_steps=5).on_train_batch_end is not None
    run = build_run(make_cfg(tmp_path, "data=digits", *QUIET))
    # Were Lightning to call a None hook, this fit would fail with "'NoneType' object is not callable".
    trainer = L.Trainer(max_epochs=2, limit_train_batches=3, limit_val_batches=1, logger=False, callbacks=callbacks,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(run.module, datamodule=run.datamodule)
    trainer.save_checkpoint(tmp_path / "after.ckpt")
    assert counting.steps == 6 and torch.isfinite(stopping.best_score)  # the hooks they define still ran
    assert (tmp_path / "after.ckpt").exists()


def test_a_non_finite_val_loss_fails_the_run_before_that_epochs_checkpoints(tmp_path, monkeypatch):
    # Weights that overflow in an epoch's last steps leave its training losses finite and its val loss inf.
    from trainlab.nn.module import Classifier

    step = Classifier._step

    def overflowing_in_epoch_1(self, batch, stage):
        loss = step(self, batch, stage)
        if stage == "val" and self.current_epoch == 1:
            self.sums["val"].loss.fill_(float("inf"))
        return loss

    monkeypatch.setattr(Classifier, "_step", overflowing_in_epoch_1)
    with pytest.raises(NonFiniteLoss, match="val loss became inf at epoch 1"):
        train_and_test(make_cfg(tmp_path, "data=digits", "trainer.max_epochs=3", *QUIET))
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["best-epoch000.ckpt", "last.ckpt"]
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "failed"


def test_nan_in_the_first_epoch_leaves_no_checkpoint(tmp_path):
    with pytest.raises(NonFiniteLoss):
        train_and_test(make_cfg(tmp_path, "data=digits", "optim=sgd", "optim.lr=1e9", *QUIET))
    assert not list(tmp_path.glob("checkpoints/*.ckpt"))


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
    result = run_cli("logger=wandb", "logger.wandb.mode=online", f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode == 2 and "logger.wandb.mode: W&B online needs an API key" in result.stderr


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


def test_nan_guard_read_every_few_steps_stops_before_the_epochs_checkpoints(tmp_path):
    # How it runs on a GPU (no host sync per step), forced on the CPU: the first bad step is kept on the
    # device, read every 7 steps; the NaN comes in epoch 1, so only epoch 0's checkpoints exist.
    cfg = make_cfg(tmp_path, "data=digits", "optim=sgd", "scheduler=step", "scheduler.step_size=1",
                   "scheduler.gamma=1e6", "trainer.max_epochs=4", "callbacks.nan_guard.every_n_steps=7", *QUIET)
    with pytest.raises(NonFiniteLoss) as error:
        train_and_test(cfg)
    first_line = str(error.value).splitlines()[0]
    bad, seen = (int(s) for s in re.findall(r"step (\d+)", first_line))
    assert first_line.startswith("loss became non-finite at epoch 1") and bad <= seen
    assert seen - bad < 7
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["best-epoch000.ckpt", "last.ckpt"]


def test_training_steps_read_no_value_back_between_logging_steps(tmp_path, monkeypatch):
    # Each read of a tensor's value (.item()) stalls a GPU's queue. With the guard read every 10 steps (as on
    # a GPU) only the steps the logger writes, the guard and gradient flow read, every 10 steps; Lightning
    # would read a prog_bar value back at every step after it is first logged.
    reads, steps_reading = [0], []
    item = torch.Tensor.item

    def counted_item(tensor):
        reads[0] += 1
        return item(tensor)

    class ReadsPerStep(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            steps_reading.append(reads[0] > 0)  # the previous step, from its start to this one's
            reads[0] = 0

    run = build_run(make_cfg(tmp_path, "data=digits", "data.batch_size=16", "trainer.max_epochs=1", "logger=csv",
                             "callbacks.progress_bar.refresh_rate=0", "callbacks.nan_guard.every_n_steps=10",
                             "callbacks.gradient_flow.every_n_steps=10", "trainer.log_every_n_steps=10"))
    run.trainer.callbacks.append(ReadsPerStep())
    monkeypatch.setattr(torch.Tensor, "item", counted_item)
    run.trainer.fit(run.module, datamodule=run.datamodule)
    assert len(steps_reading) > 60
    assert 0 < sum(steps_reading[1:]) <= 0.25 * len(steps_reading)
