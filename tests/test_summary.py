"""What a run records beyond its metrics: the tested weights' predictions for paired tests, and the value a sweeper
optimises. Whole summaries are checked in test_train."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from omegaconf import OmegaConf

from trainlab.run.summary import optimized_value, record_failure


def test_the_tested_weights_predictions_are_saved_with_their_accuracy_confusion_and_fingerprint(digits_run):
    folder, summary = digits_run
    saved, evaluated = np.load(folder / "predictions.npz"), summary["evaluated"]
    assert sorted(saved.files) == ["test_label", "test_predicted", "val_label", "val_predicted"]
    for split in ("val", "test"):
        predicted, label = saved[f"{split}_predicted"], saved[f"{split}_label"]
        assert predicted.dtype == label.dtype == np.int32 and len(predicted) == evaluated[f"{split}_samples"] > 100
        assert evaluated[f"{split}/acc"] == (predicted == label).mean()
    assert evaluated["test/acc"] == pytest.approx(summary["test"]["test/acc"])
    confusion = np.array(evaluated["test_confusion"])  # rows: the true class
    assert confusion.shape == (10, 10) and confusion.trace() / confusion.sum() == evaluated["test/acc"]
    assert confusion.sum(axis=1).tolist() == np.bincount(saved["test_label"], minlength=10).tolist()
    labels = saved["val_label"].tobytes() + saved["test_label"].tobytes()
    assert evaluated["fingerprint"] == hashlib.sha1(labels).hexdigest()[:16]
    assert evaluated["epoch"] == summary["best_epoch"]


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
