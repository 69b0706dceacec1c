"""What a run records beyond its metrics: the tested weights' predictions for paired tests, and the value a sweeper
optimises. Whole summaries are checked in test_train."""
from __future__ import annotations

import hashlib
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from trainlab.nn.diagnostics import DeadUnits, EpochTime, FitVerdict, GradientFlow
from trainlab.nn.folding import OwnCallbacks
from trainlab.run.summary import (
    _fmt,
    build_summary,
    diagnostics,
    optimized_value,
    record_failure,
    record_labels,
    record_notes,
    run_record,
    save_predictions,
    write,
)


def test_the_tested_weights_predictions_are_saved_with_their_accuracy_confusion_and_fingerprint(digits_run):
    folder, summary = digits_run
    saved, evaluated = np.load(folder / "predictions.npz"), summary["evaluated"]
    assert sorted(saved.files) == ["test_label", "test_predicted", "val_label", "val_predicted"]
    for split in ("val", "test"):
        predicted, label = saved[f"{split}_predicted"], saved[f"{split}_label"]
        assert predicted.dtype == label.dtype == np.int32 and len(predicted) == evaluated[f"{split}_samples"] > 100
        assert evaluated[f"{split}/acc"] == (predicted == label).mean()
    assert evaluated["test/acc"] == pytest.approx(summary["test"]["test/acc"])
    assert evaluated["val/acc"] == pytest.approx(summary["best"]["val/acc"])  # the val split, not train
    confusion = np.array(evaluated["test_confusion"])  # rows: the true class
    assert confusion.shape == (10, 10) and confusion.trace() / confusion.sum() == evaluated["test/acc"]
    assert confusion.sum(axis=1).tolist() == np.bincount(saved["test_label"], minlength=10).tolist()
    labels = saved["val_label"].tobytes() + saved["test_label"].tobytes()
    assert evaluated["fingerprint"] == hashlib.sha1(labels).hexdigest()[:16]
    assert evaluated["epoch"] == summary["best_epoch"]
    assert summary["best_checkpoint"] == str(folder / "checkpoints" / f"best-epoch{summary['best_epoch']:03d}.ckpt")
    assert 0 < summary["wall_time_s"] < 600 and summary["verdict"]["fit"] in ("underfitting", "overfitting", "good fit")
    assert "verdict" not in summary["diagnostics"] and "epoch_time" in summary["diagnostics"]


SECTIONS = {"best": {"val/acc": 0.75, "epoch": 3}, "test": {"test/acc": 0.5}}


@pytest.mark.parametrize(("metric", "summary", "value"), [
    ("val/acc", SECTIONS, 0.75),  # at the best epoch
    ("test/acc", SECTIONS, 0.5),  # from the test run
    ("val/loss", SECTIONS, None),
    ("val/acc", {}, None),  # an lr_find run has neither section
])
def test_the_optimised_metric_is_taken_at_the_best_epoch_or_from_the_test_run(metric, summary, value):
    assert optimized_value(OmegaConf.create({"optimized_metric": metric}), summary) == value


def test_a_failed_sweep_job_leaves_a_summary_in_its_folder_made_for_it(tmp_path):
    cfg = OmegaConf.create({"paths": {"output_dir": str(tmp_path / "sweep" / "3")}})
    record_failure(cfg, ValueError("data.batch_size: must be positive\nmore"), ["data.batch_size=0"])
    assert json.loads((tmp_path / "sweep" / "3" / "summary.json").read_text()) == {
        "status": "failed", "error": "data.batch_size: must be positive", "overrides": ["data.batch_size=0"]}


def test_a_failed_sweep_job_keeps_the_summary_its_training_wrote(tmp_path):
    (tmp_path / "summary.json").write_text('{"status": "failed", "error": "loss became nan"}')
    record_failure(OmegaConf.create({"paths": {"output_dir": str(tmp_path)}}), ValueError("later"), [])
    assert json.loads((tmp_path / "summary.json").read_text())["error"] == "loss became nan"


MODULE = SimpleNamespace(num_classes=3, history=[{"epoch": 0}, {"epoch": 4}], loaded_epoch=None)


def predicting_trainer(world_size=1, fast_dev_run=False, module=MODULE):
    """A trainer whose predict, of `module`, gives each loader's batches of (predicted, label, probabilities)."""
    def batch(predicted, label):
        return torch.tensor(predicted), torch.tensor(label), torch.full((len(label), 3), 1 / 3)

    batches = {"val": [batch([0, 1], [0, 2]), batch([2], [2])], "test": [batch([1, 1, 0], [1, 0, 0])]}

    def predict(predicted_module, dataloaders):
        assert predicted_module is module
        return [batches[loader] for loader in dataloaders]

    return SimpleNamespace(world_size=world_size, fast_dev_run=fast_dev_run, predict=predict)


DATA = SimpleNamespace(val_dataloader=lambda: ["val", "train measured like val"], test_dataloader=lambda: "test")


def test_predictions_of_val_and_test_are_saved_with_what_they_give(tmp_path):
    evaluated = save_predictions(predicting_trainer(), MODULE, DATA, tmp_path)
    assert evaluated == {"epoch": 4, "val/acc": 2 / 3, "val_samples": 3, "test/acc": 2 / 3, "test_samples": 3,
                         "test_confusion": [[1, 1, 0], [0, 1, 0], [0, 0, 0]],
                         "fingerprint": hashlib.sha1(np.array([0, 2, 2, 1, 0, 0], np.int32).tobytes()).hexdigest()[:16]}
    saved = np.load(tmp_path / "predictions.npz")
    assert saved["val_predicted"].tolist() == [0, 1, 2] and saved["test_label"].tolist() == [1, 0, 0]


@pytest.mark.parametrize(("loaded_epoch", "history", "epoch"), [(2, [{"epoch": 4}], 2), (None, [], None)])
def test_the_predictions_epoch_is_the_loaded_checkpoints_else_the_last_trained(tmp_path, loaded_epoch, history, epoch):
    module = SimpleNamespace(**{**vars(MODULE), "loaded_epoch": loaded_epoch, "history": history})
    assert save_predictions(predicting_trainer(module=module), module, DATA, tmp_path)["epoch"] == epoch


@pytest.mark.parametrize(("world_size", "fast_dev_run"), [(2, False), (1, 1)])
def test_no_predictions_from_a_shard_or_a_single_batch(tmp_path, world_size, fast_dev_run):
    assert save_predictions(predicting_trainer(world_size, fast_dev_run), MODULE, DATA, tmp_path) == {}
    assert not (tmp_path / "predictions.npz").exists()


@pytest.mark.parametrize(("record", "notes"), [
    ({}, ""), ({"requeued": 1}, " | requeued 1 time"), ({"requeued": 2}, " | requeued 2 times"),
    ({"pruned_at_epoch": 0}, " | pruned after epoch 0"),
    ({"requeued": 3, "pruned_at_epoch": 5}, " | requeued 3 times | pruned after epoch 5"),
])
def test_the_last_log_line_notes_requeues_and_pruning(record, notes):
    assert record_notes(record) == notes


def test_the_last_log_line_gives_metrics_without_the_epoch():
    assert _fmt({"epoch": 3, "val/acc": 0.5, "val/loss": 0.25}) == "val/acc=0.5000 val/loss=0.2500"


@pytest.mark.parametrize(("names", "written"), [(["bad", "good"], {"0": "bad", "1": "good"}), (None, None), ([], None)])
def test_labels_json_names_each_output_id_when_the_data_has_names(tmp_path, names, written):
    record_labels(tmp_path, SimpleNamespace(label_names=names))
    labels = tmp_path / "labels.json"
    assert (json.loads(labels.read_text()) if labels.exists() else None) == written
    if written:
        assert labels.read_text() == '{\n  "0": "bad",\n  "1": "good"\n}'  # indented, for a person to read


def test_the_run_record_gives_the_nets_make_up_and_the_runs_settings():
    net = torch.nn.Linear(3, 2)
    net.widths = [3, 2]
    run = SimpleNamespace(module=SimpleNamespace(net=net), trainer=SimpleNamespace(precision="bf16-mixed"),
                          memory={"total_mib": 1.5})
    assert run_record(run, ["seed=1"]) == {"overrides": ["seed=1"], "threads": torch.get_num_threads(),
                                           "num_parameters": 8, "layer_widths": [3, 2], "precision": "bf16-mixed",
                                           "memory": {"total_mib": 1.5}}
    run.module.net = torch.nn.Linear(3, 2)  # a user's own net need not list its widths
    assert run_record(run, [])["layer_widths"] is None


HISTORY = [{"epoch": 0, "train/loss": 0.9, "val/loss": 0.5}, {"epoch": 1, "train/loss": 0.4, "val/loss": 0.3},
           {"epoch": 2, "train/loss": 0.2, "val/loss": 0.4}, {"epoch": 3, "train/loss": 0.1}]


def test_the_summary_takes_the_best_epoch_by_val_loss_and_the_final_one_as_trained():
    module = SimpleNamespace(history=HISTORY, net=torch.nn.Linear(3, 2))
    module.net.widths = [3, 2]
    summary = build_summary(module, SimpleNamespace(current_epoch=4, precision=16), {"test/acc": 0.5}, 12.34567)
    assert summary == {"status": "completed", "final": HISTORY[3], "best": HISTORY[1], "best_epoch": 1,
                       "test": {"test/acc": 0.5}, "epochs_run": 4, "num_parameters": 8, "layer_widths": [3, 2],
                       "precision": "16", "wall_time_s": 12.346, "history": HISTORY}
    assert summary["final"] is not HISTORY[3]  # a copy: the history row stays as logged


def test_a_summary_without_epochs_has_no_best_or_final():
    module = SimpleNamespace(history=[], net=torch.nn.Linear(3, 2))
    summary = build_summary(module, SimpleNamespace(current_epoch=0, precision="32-true"), {}, 0.0)
    assert (summary["final"], summary["best"], summary["best_epoch"]) == ({}, {}, None)


def test_the_diagnostics_found_are_reported_by_name_the_verdict_apart():
    verdict, flow, time_, dead = FitVerdict(), GradientFlow(), EpochTime(), DeadUnits()
    verdict.report, time_.report = {"fit": "good fit"}, {"median_s": 0.5}
    flow.report = {"warnings": ["vanishing"]}
    callbacks = [OwnCallbacks([flow, dead]), verdict, time_, SimpleNamespace(report={"not": "a diagnostic"})]
    assert diagnostics(SimpleNamespace(callbacks=callbacks)) == (
        {"fit": "good fit"}, {"gradient_flow": {"warnings": ["vanishing"]}, "epoch_time": {"median_s": 0.5}})
    assert diagnostics(SimpleNamespace(callbacks=[dead])) == (None, {})


@pytest.mark.parametrize("rank_zero", [True, False])
def test_only_rank_zero_writes_the_summary(tmp_path, rank_zero):
    write(tmp_path, {"status": "completed"}, SimpleNamespace(is_global_zero=rank_zero))
    path = tmp_path / "summary.json"
    assert (path.read_text() if path.exists() else None) == ('{\n  "status": "completed"\n}' if rank_zero else None)
