"""The diagnostics' hooks called directly on stub trainers and small nets: what each reads, reports and logs."""
from __future__ import annotations

import math
import time
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from trainlab.errors import NonFiniteLoss
from trainlab.nn.diagnostics import DeadUnits, EpochTime, FitVerdict, GradientFlow, NaNGuard


class Logger:
    """Records what log_metrics is given, with its step."""

    def __init__(self):
        self.rows = []

    def log_metrics(self, metrics, step=None):
        self.rows.append((metrics, step))


def net_with_grads(*norms) -> nn.Sequential:
    """Linear layers (with a ReLU between) whose weight gradients have the given norms (None: no gradient)."""
    layers = [nn.Linear(2, 2) for _ in norms]
    for layer, norm in zip(layers, norms, strict=True):
        layer.weight.grad = None if norm is None else torch.full((2, 2), norm / 2)
    return nn.Sequential(*[part for layer in layers for part in (layer, nn.ReLU())][:-1])


def flow_step(flow, net, step=0):
    logger = Logger()
    flow.on_before_optimizer_step(SimpleNamespace(global_step=step, current_epoch=3, loggers=[logger]),
                                  SimpleNamespace(net=net), None)
    return logger.rows


def test_gradient_flow_logs_each_layers_norm_and_the_ratio():
    flow = GradientFlow()
    rows = flow_step(flow, net_with_grads(0.5, 2.0, 4.0), step=50)
    assert rows == [({"grad_norm/layer0": 0.5, "grad_norm/layer1": 2.0, "grad_norm/layer2": 4.0, "epoch": 3}, 50)]
    assert flow.report == {"warnings": [], "last_norms": [0.5, 2.0, 4.0], "last_to_first_ratio": 8.0}


def test_gradient_flow_reads_only_every_n_steps_and_nets_of_two_layers_or_more():
    flow = GradientFlow(every_n_steps=10)
    assert flow_step(flow, net_with_grads(1.0, 1.0), step=15) == []
    assert flow_step(flow, net_with_grads(1.0), step=20) == []
    assert flow.report == {"warnings": []}
    assert len(flow_step(flow, net_with_grads(1.0, 1.0), step=20)) == 1


def test_a_layer_without_a_gradient_counts_as_zero():
    flow = GradientFlow()
    flow_step(flow, net_with_grads(None, 3.0))
    assert flow.report["last_norms"] == [0.0, 3.0] and flow.report["last_to_first_ratio"] == 3e30


@pytest.mark.parametrize(("norms", "kinds"), [
    ((0.125, 6.25), []),  # 50x: at the ratio, not above it
    ((0.125, 6.5), ["vanishing"]),
    ((1.0, 1000.0), ["vanishing"]),  # at the exploding norm, not above it
    ((100.0, 1001.0), ["exploding"]),
    ((1.0, 2000.0), ["vanishing", "exploding"]),
])
def test_gradient_flow_warns_above_its_ratio_and_norm(norms, kinds):
    flow = GradientFlow(vanishing_ratio=50.0, exploding_norm=1e3)
    flow_step(flow, net_with_grads(*norms))
    assert [w.split()[0] for w in flow.report["warnings"]] == kinds


def test_gradient_flow_warnings_say_where_and_what_to_try():
    flow = GradientFlow()
    flow_step(flow, net_with_grads(1.0, 5.0, 2000.0), step=75)
    assert flow.report["warnings"] == [
        "vanishing gradients at step 75: first layer 1.00e+00 is 2000x below the last layer 2.00e+03 (try relu, "
        "kaiming init, batch norm or an adaptive optimizer)",
        "exploding gradients at step 75: a layer's gradient norm is 2.00e+03 (lower the lr, clip gradients with "
        "trainer.gradient_clip_val=1.0, or normalise)"]


def test_gradient_flow_defaults():
    flow = GradientFlow()
    assert (flow.every_n_steps, flow.vanishing_ratio, flow.exploding_norm) == (25, 50.0, 1e3)


def relu_net() -> nn.Sequential:
    """Two ReLU layers: unit 0 of the first never fires on positive inputs, the second's units always pass 1."""
    first, second = nn.Linear(2, 2), nn.Linear(2, 3)
    with torch.no_grad():
        first.weight.copy_(torch.tensor([[-1.0, -1.0], [1.0, 1.0]]))
        first.bias.zero_()
        second.weight.zero_()
        second.bias.copy_(torch.tensor([1.0, -1.0, 1.0]))
    return nn.Sequential(first, nn.ReLU(), second, nn.ReLU(), nn.Linear(3, 2))


def validation_epoch(dead, net, batches, sanity=False):
    logger, module = Logger(), SimpleNamespace(net=net)
    trainer = SimpleNamespace(sanity_checking=sanity, current_epoch=1, global_step=9, loggers=[logger])
    for index, (batch, loader) in enumerate(batches):
        where = (index, loader) if loader else (index,)  # Lightning names the loader only when there are several
        dead.on_validation_batch_start(trainer, module, batch, *where)
        net(batch)
        dead.on_validation_batch_end(trainer, module, None, batch, *where)
    dead.on_validation_epoch_end(trainer, module)
    return logger.rows


def test_dead_units_are_read_on_the_first_validation_batch_per_relu_layer():
    dead, net = DeadUnits(), relu_net()
    rows = validation_epoch(dead, net, [(torch.rand(4, 2) + 0.1, 0), (-torch.rand(4, 2) - 0.1, 0)])
    assert dead.report == {"dead/layer0": 0.5, "dead/layer1": pytest.approx(1 / 3)}
    assert rows == [({**dead.report, "epoch": 1}, 9)]
    assert all(not relu._forward_hooks for relu in net if isinstance(relu, nn.ReLU))  # hooks removed after it


@pytest.mark.parametrize("batches", [[(torch.rand(4, 2), 1)], []])
def test_dead_units_skip_sanity_checks_other_loaders_and_epochs_without_a_first_batch(batches):
    dead = DeadUnits()
    assert validation_epoch(dead, relu_net(), [(torch.rand(4, 2), 0)], sanity=True) == []
    assert validation_epoch(dead, relu_net(), batches) == [] and dead.report == {}


def test_dead_units_count_only_plain_relus():
    net = nn.Sequential(nn.Linear(2, 2), nn.LeakyReLU(), nn.Linear(2, 2))
    dead = DeadUnits()
    assert validation_epoch(dead, net, [(torch.rand(4, 2), 0)]) == [] and dead.report == {}


def guard_trainer(step=0, epoch=0, every=50, net=None, **state):
    net = net if net is not None else nn.Linear(4, 10)
    return guarded_trainer(net, global_step=step, current_epoch=epoch, log_every_n_steps=every, **state), \
        SimpleNamespace(net=net)


BATCH = (torch.ones(2, 4), torch.tensor([1, 3]))


@pytest.mark.parametrize("outputs", [torch.tensor(float("nan")), {"loss": torch.tensor(float("inf"))}])
def test_on_the_cpu_a_non_finite_loss_stops_at_once_saying_where(outputs):
    trainer, module = guard_trainer(step=7, epoch=2)
    with pytest.raises(NonFiniteLoss) as error:
        NaNGuard().on_train_batch_end(trainer, module, outputs, BATCH, 0)
    assert str(error.value).splitlines()[0] in ("loss became nan at epoch 2, step 7", "loss became inf at epoch 2, step 7")
    assert "Checklist (x: evidence found):" in str(error.value)


def test_finite_losses_and_missing_ones_pass():
    trainer, module = guard_trainer()
    guard = NaNGuard()
    for outputs in (torch.tensor(0.3), {"loss": torch.tensor(1.0)}, None, {"loss": None}):
        guard.on_train_batch_end(trainer, module, outputs, BATCH, 0)
    assert guard.first_bad_step is None  # checked at once on the CPU: nothing kept


def test_every_n_steps_keeps_the_first_bad_step_and_reads_it_on_its_steps():
    guard = NaNGuard(every_n_steps=4)
    for step, loss in ((1, 0.5), (2, float("nan")), (3, float("inf"))):
        trainer, module = guard_trainer(step=step)
        guard.on_train_batch_end(trainer, module, torch.tensor(loss), (torch.ones(1, 4) * step, torch.tensor([0])), 0)
    assert int(guard.first_bad_step) == 2 and float(guard.last_batch[0][0, 0]) == 3  # the latest batch
    trainer, module = guard_trainer(step=4)
    with pytest.raises(NonFiniteLoss, match="loss became non-finite at epoch 0, step 2 \\(read back at step 4"):
        guard.on_train_batch_end(trainer, module, torch.tensor(0.1), BATCH, 0)


def test_the_first_bad_step_is_kept_even_when_it_is_step_zero():
    guard = NaNGuard(every_n_steps=4)
    guard.first_bad_step = torch.tensor(0)  # kept at step 0, not read back yet
    trainer, module = guard_trainer(step=1)
    guard.on_train_batch_end(trainer, module, torch.tensor(float("nan")), BATCH, 0)
    assert int(guard.first_bad_step) == 0


def test_a_bad_step_kept_between_reads_is_read_at_the_epochs_end():
    guard = NaNGuard(every_n_steps=100)
    trainer, module = guard_trainer(step=3)
    guard.on_train_epoch_end(trainer, module)  # nothing kept yet
    guard.on_train_batch_end(trainer, module, torch.tensor(float("nan")), BATCH, 0)
    with pytest.raises(NonFiniteLoss, match="step 3"):
        guard.on_train_epoch_end(trainer, module)


def val_guard(loss, *, sanity=False, fn="fit"):
    trainer, module = guard_trainer(epoch=4, sanity_checking=sanity, state=SimpleNamespace(fn=fn),
                                    callback_metrics={} if loss is None else {"val/loss": torch.tensor(loss)})
    guard = NaNGuard()
    guard.on_validation_batch_start(trainer, module, BATCH, 0)  # one loader: Lightning passes no dataloader_idx
    guard.on_validation_batch_start(trainer, module, (torch.zeros(1, 4), torch.tensor([0])), 1, 0)  # not kept
    guard.on_validation_batch_start(trainer, module, (torch.zeros(1, 4), torch.tensor([0])), 0, 1)  # not kept
    guard.on_validation_end(trainer, module)
    return guard


def test_a_non_finite_val_loss_stops_fitting_with_the_first_val_batch_checked():
    with pytest.raises(NonFiniteLoss) as error:
        val_guard(float("inf"))
    lines = str(error.value).splitlines()
    assert lines[0] == "val loss became inf at epoch 4"
    assert lines[-2] == "  [ ] output size vs labels: 10 outputs for 10 classes, largest label in this batch 3"


@pytest.mark.parametrize(("loss", "options"), [(0.3, {}), (None, {}), (float("nan"), {"sanity": True}),
                                               (float("nan"), {"fn": "validate"})])
def test_the_val_loss_is_judged_only_when_fitting_outside_the_sanity_check(loss, options):
    assert val_guard(loss, **options).last_val_batch is BATCH


def guarded_trainer(net, classes=10, largest=16.0, precision="32-true", **state):
    """The parts of a trainer NaNGuard reads: an SGD optimizer at lr 0.5, the data's classes and largest feature."""
    return SimpleNamespace(optimizers=[torch.optim.SGD(net.parameters(), lr=0.5)], precision=precision,
                           datamodule=SimpleNamespace(num_classes=classes, largest_feature=lambda: largest), **state)


def checklist_of(x, y, *, outputs=10, net=None, **data):
    """NaNGuard's checklist for one batch."""
    net = net if net is not None else nn.Linear(4, outputs)
    return NaNGuard.checklist(guarded_trainer(net, **data), SimpleNamespace(net=net), (x, y),
                              "loss became nan").splitlines()


def test_nan_guards_checklist_in_full_when_it_found_no_evidence():
    assert checklist_of(torch.ones(2, 4), torch.tensor([1, 3])) == [
        "loss became nan",
        "Checklist (x: evidence found):",
        "  [ ] NaN/inf in the inputs: none in this batch",
        "  [ ] input dtype: torch.float32 (float expected, or word ids)",
        "  [ ] learning rate: 0.5 (lower it, e.g. optim.lr=0.05)",
        "  [ ] optimizer: SGD (an adaptive one, optim=adam, is more forgiving)",
        "  [ ] feature scaling: largest |training feature| 16 (data.scaler=global, standard or minmax)",
        "  [ ] output size vs labels: 10 outputs for 10 classes, largest label in this batch 3",
        "  [ ] precision: 32-true (32-true is the safe choice)",
    ]


def test_nan_guards_checklist_marks_each_piece_of_evidence():
    x = torch.tensor([[1.0, float("inf"), 0.0, 0.0]])
    lines = checklist_of(x, torch.tensor([12]), outputs=3, largest=5e3, precision="bf16-mixed")
    assert lines[2] == "  [x] NaN/inf in the inputs: found in this batch"
    assert lines[3].startswith("  [ ] input dtype")
    assert lines[6] == "  [x] feature scaling: largest |training feature| 5e+03 (data.scaler=global, standard or minmax)"
    assert lines[7] == "  [x] output size vs labels: 3 outputs for 10 classes, largest label in this batch 12"
    assert lines[8] == "  [x] precision: bf16-mixed (32-true is the safe choice)"


@pytest.mark.parametrize(("x", "outputs", "classes", "y", "marked"), [
    (torch.ones(1, 4, dtype=torch.int32), 10, 10, 9, {3}),  # ints that are not word ids
    (torch.ones(1, 4, dtype=torch.long), 10, 10, 9, set()),  # word ids
    (torch.ones(1, 4), 1, 2, 1, set()),  # two classes: one logit
    (torch.ones(1, 4), 10, 10, 10, {7}),  # a label the outputs cannot reach
    (torch.tensor([[1.0, float("nan")]]).to_sparse_csr(), 10, 10, 0, {2}),  # a multi-hot text batch
])
def test_nan_guards_checklist_reads_the_batch_the_net_and_the_data(x, outputs, classes, y, marked):
    lines = checklist_of(x, torch.tensor([y]), outputs=outputs, classes=classes, largest=1e3)
    assert {i for i, line in enumerate(lines) if line.startswith("  [x]")} == marked


@pytest.mark.parametrize(("largest", "mark"), [(1000.0, " "), (1000.5, "x"), (math.nan, " ")])
def test_features_above_a_thousand_are_evidence_of_missing_scaling(largest, mark):
    assert checklist_of(torch.ones(1, 4), torch.tensor([1]), largest=largest)[6].startswith(f"  [{mark}] feature scaling")


def test_a_net_that_does_not_end_in_a_linear_layer_leaves_its_output_size_unknown():
    lines = checklist_of(torch.ones(1, 4), torch.tensor([2]), net=nn.Sequential(nn.Conv1d(1, 1, 1)))
    assert lines[7] == "  [ ] output size vs labels: None outputs for 10 classes, largest label in this batch 2"
    lines = checklist_of(torch.ones(1, 4), torch.tensor([10]), net=nn.Sequential(nn.Conv1d(1, 1, 1)))
    assert lines[7].startswith("  [x] output size vs labels: None outputs")


@pytest.mark.parametrize("step", [0, 5])
def test_a_bad_step_kept_on_the_device_is_reported_with_where_it_was_read(step):
    guard = NaNGuard(every_n_steps=10)
    guard.first_bad_step, guard.last_batch = torch.tensor(step), (torch.ones(2, 4), torch.tensor([1, 3]))
    net = nn.Linear(4, 10)
    trainer = guarded_trainer(net, current_epoch=1, global_step=7)
    with pytest.raises(NonFiniteLoss) as error:
        guard._raise_if_bad(trainer, SimpleNamespace(net=net))
    assert str(error.value).splitlines()[:2] == [
        f"loss became non-finite at epoch 1, step {step} (read back at step 7: on this device the guard reads it "
        "every few steps; the checks below look at the latest batch)", "Checklist (x: evidence found):"]
    guard.first_bad_step = torch.tensor(-1)
    guard._raise_if_bad(trainer, SimpleNamespace(net=net))  # every loss was finite


def test_gradient_flow_warns_once_per_kind():
    flow = GradientFlow()
    for message in ("vanishing gradients at step 0: a", "vanishing gradients at step 25: b",
                    "exploding gradients at step 50: c", "exploding gradients at step 75: d"):
        flow._warn(message)
    assert flow.report["warnings"] == ["vanishing gradients at step 0: a", "exploding gradients at step 50: c"]


@pytest.mark.parametrize(("samples", "thresholds", "fit"), [
    ({"train": 50, "val": 50}, {}, "good fit"),  # the gap within the noise of 50 samples
    ({"train": 500, "val": 500}, {}, "overfitting"),
    ({"train": 50}, {}, "overfitting"),  # no val count: the gap is not tested
    ({"train": 500, "val": 500}, {"overfit_gap": 0.1}, "good fit"),
    ({"train": 500, "val": 500}, {"underfit_acc": 0.97}, "underfitting"),
])
def test_the_verdict_callback_judges_on_its_thresholds_and_the_runs_sample_sizes(samples, thresholds, fit):
    history = [{"epoch": 0, "train/acc": 0.96, "val/acc": 0.90, "train/loss": 0.2, "val/loss": 0.3}]
    verdict, logged = FitVerdict(**thresholds), []
    logger = SimpleNamespace(log_metrics=logged.append)
    verdict.on_fit_end(SimpleNamespace(loggers=[logger, logger]), SimpleNamespace(history=history, samples=samples))
    assert verdict.report["fit"] == fit
    assert logged == 2 * [{"verdict/overfitting": float(fit == "overfitting"),
                           "verdict/underfitting": float(fit == "underfitting")}]


def test_epoch_time_records_each_epochs_seconds_and_their_median(monkeypatch):
    clock = iter([10.0, 12.34567, 20.0, 21.0, 30.0, 34.0])
    monkeypatch.setattr(time, "perf_counter", lambda: next(clock))
    timer = EpochTime()
    for _ in range(3):
        timer.on_train_epoch_start(None, None)
        timer.on_train_epoch_end(None, None)
    assert timer.report == {"seconds": [2.3457, 1.0, 4.0], "median_s": 2.3457}
