"""Loggers and callbacks do real work only outside fast_dev_run, so these runs are short but real."""
from __future__ import annotations

import csv
import inspect
import logging
import sys
from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from trainlab.nn.checkpoints import BestAndLastCheckpoint
from trainlab.nn.module import Classifier
from trainlab.run import cli
from trainlab.run.evaluate import evaluate
from trainlab.run.pipeline import train_and_test
from trainlab.run.tracking import masked

from conftest import make_cfg, run_cli
from wandb_records import run_contents

SHORT = ("data=digits", "trainer.max_epochs=2")


def test_csv_logger_writes_epoch_metrics(tmp_path):
    train_and_test(make_cfg(tmp_path, *SHORT, "logger=csv"))
    rows = list(csv.DictReader((tmp_path / "csv" / "metrics.csv").open()))
    val_losses = [r["val/loss"] for r in rows if r.get("val/loss")]
    assert len(val_losses) == 2
    assert any(r.get("lr-Adam") for r in rows), "the learning-rate monitor logs the lr"


def test_tensorboard_logger_writes_events(tmp_path):
    train_and_test(make_cfg(tmp_path, *SHORT, "logger=tensorboard"))
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_wandb_logger_runs_offline(tmp_path):
    train_and_test(make_cfg(tmp_path, *SHORT, "logger=wandb"))
    assert list((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))


def test_several_loggers_each_write_their_own_record(tmp_path):
    train_and_test(make_cfg(tmp_path, *SHORT, "logger=[csv,tensorboard]"))
    rows = list(csv.DictReader((tmp_path / "csv" / "metrics.csv").open()))
    assert len([r for r in rows if r.get("val/loss")]) == 2
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_wandb_as_one_of_several_loggers_is_named_and_finished(tmp_path):
    summary = train_and_test(make_cfg(tmp_path, *SHORT, "logger=[csv,wandb]"))
    (run,) = (tmp_path / "wandb").glob("offline-run-*")
    contents = run_contents(run)
    assert contents["exit_code"] == 0  # finished by trainlab, and its epoch metrics plotted against the epoch
    assert contents["metrics"]["val/*"] == "epoch"
    wandb_losses = [row["val/loss"] for row in contents["history"] if "val/loss" in row]
    csv_losses = [float(r["val/loss"]) for r in csv.DictReader((tmp_path / "csv" / "metrics.csv").open())
                  if r.get("val/loss")]
    assert wandb_losses == pytest.approx(csv_losses) == [h["val/loss"] for h in summary["history"] if "val/loss" in h]


def mlflow_run(store: str):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=store)
    (run,) = client.search_runs([client.get_experiment_by_name("trainlab").experiment_id])
    return client, run


def test_mlflow_keeps_the_runs_params_and_metrics_in_a_sqlite_store_in_the_run_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    summary = train_and_test(make_cfg(tmp_path, *SHORT, "logger=mlflow", "optim.lr=0.002"))
    client, run = mlflow_run(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert run.data.params["optim/lr"] == "0.002" and run.data.params["data/_target_"].endswith("ArrayDataModule")
    val_losses = [m.value for m in client.get_metric_history(run.info.run_id, "val/loss")]
    assert val_losses == pytest.approx([h["val/loss"] for h in summary["history"] if "val/loss" in h])
    assert run.data.metrics["test/acc"] == pytest.approx(summary["test"]["test/acc"])


def test_an_mlflow_store_from_the_environment_is_used_and_never_saved(tmp_path, monkeypatch):
    store = f"sqlite:///{tmp_path / 'lab' / 'tracking.db'}"
    (tmp_path / "lab").mkdir()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    train_and_test(make_cfg(tmp_path / "run", *SHORT, "logger=mlflow"))
    _, run = mlflow_run(store)
    assert run.info.status == "FINISHED" and not (tmp_path / "run" / "mlflow.db").exists()
    for path in (tmp_path / "run").rglob("*"):
        assert not path.is_file() or b"tracking.db" not in path.read_bytes(), path


@pytest.mark.full  # a subprocess: the run is named by Hydra's overrides
def test_an_mlflow_run_is_named_after_its_overrides(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = run_cli("logger=[csv,mlflow]", "data=digits", "trainer.max_epochs=1", "optim.lr=0.002",
                     f"hydra.run.dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-2000:]
    _, run = mlflow_run(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert run.info.run_name == "data=digits,logger=[csv,mlflow],optim.lr=0.002,trainer.max_epochs=1"
    assert (tmp_path / "csv" / "metrics.csv").exists()


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://lab:s3cret@db.lab:5432/optuna", "postgresql://lab:***@db.lab:5432/optuna"),
    ("https://user:pa:ss@mlflow.lab", "https://user:***@mlflow.lab"),
    ("sqlite:////shared/study.db", "sqlite:////shared/study.db"),
    ("http://mlflow.lab:5000", "http://mlflow.lab:5000"),
])
def test_a_password_in_a_store_url_is_masked(url, shown):
    assert masked(url) == shown


def test_a_logger_option_of_a_users_config_folder_is_known(tmp_path, monkeypatch):
    (tmp_path / "logger").mkdir()
    (tmp_path / "logger" / "lab.yaml").write_text("lab:\n  _target_: lightning.pytorch.loggers.CSVLogger\n")
    monkeypatch.setattr(sys, "argv", ["train.py", "--config-dir", str(tmp_path), "logger=[csv,lab]"])
    monkeypatch.setattr(cli, "hydra_main", lambda: "hydra ran")
    assert cli.main() == "hydra ran"


def test_checkpoints_best_and_last_and_test_on_best(tmp_path):
    # Trained on past its best epoch, so the last weights and the best ones differ.
    summary = train_and_test(make_cfg(tmp_path, "data=digits", "trainer.max_epochs=8", "callbacks.early_stopping=null",
                                      "logger=none"))
    assert summary["best_epoch"] < 7, "the case to test: the best epoch is not the last"
    checkpoints = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert checkpoints == [f"best-epoch{summary['best_epoch']:03d}.ckpt", "last.ckpt"]
    assert summary["best_checkpoint"] == str(tmp_path / "checkpoints" / checkpoints[0])
    assert summary["test"] == evaluate(Path(summary["best_checkpoint"]), "test")  # tested: the best weights
    assert summary["test"] != evaluate(tmp_path / "checkpoints" / "last.ckpt", "test")


def test_last_checkpoint_holds_the_last_epoch_after_val_loss_stopped_improving(tmp_path):
    # Lightning 2.6 rewrites last.ckpt only with a new best: here it would keep the best epoch, not epoch 7 of 0-7.
    summary = train_and_test(make_cfg(tmp_path, "data=digits", "trainer.max_epochs=8", "callbacks.early_stopping=null",
                             "logger=none"))
    assert summary["best_epoch"] < 7, "the case to test: val loss stopped improving before the end"
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    best = torch.load(summary["best_checkpoint"], weights_only=True)
    assert last["epoch"] == 7 and best["epoch"] == summary["best_epoch"]
    assert last["history"][-1]["epoch"] == 7


def test_lightning_still_has_the_private_members_best_and_last_uses():
    """BestAndLastCheckpoint calls ModelCheckpoint's private members: a Lightning upgrade that renames one, or
    changes what it takes, must fail here rather than silently stop writing last.ckpt."""
    checkpoint = ModelCheckpoint(dirpath="unused")
    for name in BestAndLastCheckpoint.PRIVATE_API:
        assert hasattr(checkpoint, name), f"ModelCheckpoint.{name} is gone: see trainlab.nn.checkpoints"
    takes = {name: list(inspect.signature(getattr(checkpoint, name)).parameters) for name in
             ("_should_save_on_train_epoch_end", "_should_skip_saving_checkpoint", "_save_last_checkpoint",
              "_monitor_candidates")}
    assert takes == {"_should_save_on_train_epoch_end": ["trainer"], "_should_skip_saving_checkpoint": ["trainer"],
                     "_save_last_checkpoint": ["trainer", "monitor_candidates"], "_monitor_candidates": ["trainer"]}


def test_early_stopping_can_trigger(tmp_path):
    # Only a drop of 10 in val loss counts as progress: after the first epoch none does.
    summary = train_and_test(make_cfg(tmp_path, "data=digits", "trainer.max_epochs=30", "logger=none",
                             "callbacks.early_stopping.min_delta=10", "callbacks.early_stopping.patience=2"))
    assert len(summary["history"]) == 3


def test_no_callbacks_tests_final_weights(tmp_path):
    summary = train_and_test(make_cfg(tmp_path, *SHORT, "callbacks=none", "logger=none"))
    assert summary["best_checkpoint"] is None and not (tmp_path / "checkpoints").exists()


def test_without_model_checkpoint_the_interrupt_checkpoint_still_works(tmp_path):
    summary = train_and_test(make_cfg(tmp_path, *SHORT, "logger=none", "callbacks.model_checkpoint=null"))
    assert summary["status"] == "completed" and summary["best_checkpoint"] is None
    assert not (tmp_path / "checkpoints").exists()  # nothing saved: no ModelCheckpoint, no interruption
    crash = f"+callbacks.crash={{_target_: killer.CrashAt, epoch: 1, batch: 3, marker: '{tmp_path / 'crashed'}.once'}}"
    with pytest.raises(RuntimeError, match="crash at epoch 1"):
        train_and_test(make_cfg(tmp_path / "crashed", *SHORT, "logger=none", "callbacks.model_checkpoint=null", crash))
    assert [p.name for p in (tmp_path / "crashed" / "checkpoints").iterdir()] == ["interrupted.ckpt"]
    saved = torch.load(tmp_path / "crashed" / "checkpoints" / "interrupted.ckpt", weights_only=True)
    assert saved["epoch"] == 1 and saved["global_step"] == 20 + 3  # digits: 20 batches an epoch, then 3 of epoch 1


def test_step_loss_and_dead_units_reach_the_logger_and_self_log_runs_at_epoch_ends_only(tmp_path, monkeypatch):
    # self.log is costly per call (a sizeable share of a small step; docs/performance.md): the step loss and the
    # dead-unit fractions go to the loggers directly; self.log keeps the epoch metrics, which callbacks monitor.
    hooks = []
    log = Classifier.log

    def recorded_log(self, name, *args, **kwargs):
        hooks.append(self._current_fx_name)
        return log(self, name, *args, **kwargs)

    monkeypatch.setattr(Classifier, "log", recorded_log)
    train_and_test(make_cfg(tmp_path, *SHORT, "logger=csv", "trainer.log_every_n_steps=5",
                            "callbacks.progress_bar.refresh_rate=0"))
    assert set(hooks) == {"on_train_epoch_end", "on_validation_epoch_end", "on_test_epoch_end"}
    rows = list(csv.DictReader((tmp_path / "csv" / "metrics.csv").open()))
    step_rows = [r for r in rows if r.get("train/loss_step")]
    steps = [int(r["step"]) for r in step_rows]
    assert steps and all((step + 1) % 5 == 0 for step in steps)
    assert len(steps) == 40 // 5  # 2 epochs of 20 batches (1,257 training digits at batch 64)
    assert all(r["epoch"] in ("0", "1") for r in step_rows)
    dead = [r for r in rows if r.get("dead/layer0")]
    assert [r["epoch"] for r in dead] == ["0", "1"] and all(0 <= float(r["dead/layer2"]) <= 1 for r in dead)


def test_fast_dev_run_writes_no_checkpoint_logger_or_verdict(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="trainlab"):
        summary = train_and_test(make_cfg(tmp_path, "data=digits", "debug=fast_dev_run", "logger=wandb"))
    assert summary["status"] == "completed" and summary["verdict"] is None
    assert not list(tmp_path.rglob("*.ckpt")) and not (tmp_path / "wandb").exists()
    assert "no checkpoint, logger, W&B run or verdict is written" in caplog.text
