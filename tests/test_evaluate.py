"""Using a trained model: evaluate a run or checkpoint on a split or a file, predict new rows, load a checkpoint."""
from __future__ import annotations

import json

import pandas
import pytest
import torch
from sklearn.datasets import load_digits

from trainlab.errors import ConfigError
from trainlab.nn.module import Classifier
from trainlab.run.build import load_module
from trainlab.run.evaluate import checkpoint_of, evaluate, main_eval, predict, prepared
from trainlab.run.pipeline import train_and_test

from conftest import make_cfg, review_texts

QUIET = ("logger=none", "callbacks.progress_bar.refresh_rate=0")


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("digits_run")
    summary = train_and_test(make_cfg(folder, "data=digits", "model=uniform", "model.width=32", "model.depth=1",
                                      "trainer.max_epochs=3", *QUIET))
    return folder, summary


def digits_table(path, rows: slice, label: bool):
    x, y = load_digits(return_X_y=True)
    frame = pandas.DataFrame(x[rows])
    if label:
        frame["label"] = y[rows]
    frame.to_csv(path, index=False)
    return path


def test_evaluate_reproduces_the_runs_test_and_best_val_metrics_exactly(digits_run):
    folder, summary = digits_run
    assert evaluate(folder) == summary["test"]
    val = evaluate(folder, split="val")
    assert val == {"val/acc": summary["best"]["val/acc"], "val/loss": summary["best"]["val/loss"]}


def test_a_run_folder_means_its_best_checkpoint(digits_run):
    folder, summary = digits_run
    assert checkpoint_of(folder) == folder / "checkpoints" / f"best-epoch{summary['best_epoch']:03d}.ckpt"


def test_load_module_rebuilds_the_trained_module(digits_run):
    folder, _ = digits_run
    with pytest.raises(TypeError, match=r"use trainlab.run.build.load_module\("):  # Lightning's own cannot: it names ours
        Classifier.load_from_checkpoint(folder / "checkpoints" / "last.ckpt")
    module = load_module(folder / "checkpoints" / "last.ckpt")
    saved = torch.load(folder / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert module.hparams["num_classes"] == 10 and not module.training
    for name, tensor in module.state_dict().items():
        assert torch.equal(tensor, saved[name])


def test_a_checkpoint_saved_before_the_wings_names_the_old_modules_and_one_logger_and_still_loads(digits_run, tmp_path):
    folder, _ = digits_run
    state = torch.load(folder / "checkpoints" / "last.ckpt", weights_only=True)
    config = state["hyper_parameters"]["config"]
    config["data"]["_target_"] = "trainlab.data.ArrayDataModule"  # where these lived before trainlab.nn / trainlab.run
    config["callbacks"]["progress_bar"]["_target_"] = "trainlab.console.progress_bar"
    config["callbacks"]["dead_units"]["_target_"] = "trainlab.callbacks.DeadUnits"
    config["logger"] = {"_target_": "lightning.pytorch.loggers.CSVLogger", "name": "csv"}  # before logger took a list
    torch.save(state, tmp_path / "old.ckpt")
    module = load_module(tmp_path / "old.ckpt")
    assert module.hparams["config"]["data"]["_target_"] == "trainlab.nn.data.ArrayDataModule"
    assert module.hparams["config"]["callbacks"]["progress_bar"]["_target_"] == "trainlab.run.console.progress_bar"
    assert module.hparams["config"]["callbacks"]["dead_units"]["_target_"] == "trainlab.nn.diagnostics.DeadUnits"
    assert module.hparams["config"]["logger"] == {"csv": {"_target_": "lightning.pytorch.loggers.CSVLogger",
                                                          "name": "csv"}}
    assert evaluate(tmp_path / "old.ckpt", "test") == evaluate(folder / "checkpoints" / "last.ckpt", "test")


def test_predicted_labels_are_the_modules_argmax_on_the_same_rows(digits_run, tmp_path):
    folder, _ = digits_run
    path = predict(folder, digits_table(tmp_path / "new.csv", slice(0, 40), label=False))
    assert path == tmp_path / "new.predictions.csv"
    written = pandas.read_csv(path)
    module, datamodule = prepared(folder)
    inputs, _ = datamodule.encode(pandas.read_csv(tmp_path / "new.csv"), label_column=None)
    with torch.no_grad():
        logits = module(inputs)
    assert written["predicted"].tolist() == logits.argmax(1).tolist()
    probabilities = written[[f"p_{i}" for i in range(10)]].to_numpy()
    assert probabilities.sum(axis=1) == pytest.approx(1.0, abs=1e-5)


def test_evaluate_on_a_labelled_file_equals_the_accuracy_of_its_predictions(digits_run, tmp_path):
    folder, _ = digits_run
    labelled = digits_table(tmp_path / "labelled.csv", slice(100, 300), label=True)
    metrics = evaluate(folder, file=labelled)
    predicted = pandas.read_csv(predict(folder, digits_table(tmp_path / "same.csv", slice(100, 300), label=False)))
    expected = (predicted["predicted"].to_numpy() == pandas.read_csv(labelled)["label"].to_numpy()).mean()
    assert metrics["labelled.csv/acc"] == pytest.approx(expected)


@pytest.mark.parametrize(("make", "says"), [
    (lambda p: (p / "narrow.csv").write_text("a,b\n1,2\n") and p / "narrow.csv", "feature columns"),
    (lambda p: p / "missing.csv", "no such file"),
    (lambda p: (p / "rows.txt").write_text("1,2") and p / "rows.txt", "unsupported file type"),
])
def test_bad_files_are_refused(digits_run, tmp_path, make, says):
    with pytest.raises(ConfigError, match=says):
        predict(digits_run[0], make(tmp_path))


def test_a_checkpoint_of_another_shape_is_refused(digits_run, tmp_path):
    state = torch.load(digits_run[0] / "checkpoints" / "last.ckpt", weights_only=True)
    state["hyper_parameters"]["config"]["model"]["width"] = 64  # the saved weights are 32 wide
    torch.save(state, tmp_path / "other.ckpt")
    with pytest.raises(ConfigError, match="another model shape"):
        evaluate(tmp_path / "other.ckpt")


def test_the_command_prints_metrics_and_refuses_with_exit_2(digits_run, tmp_path, capsys):
    assert main_eval([str(digits_run[0]), "--split", "val"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"val/acc", "val/loss"}
    with pytest.raises(SystemExit) as stopped:
        main_eval([str(tmp_path)])
    assert stopped.value.code == 2 and "neither a checkpoint file nor a trainlab run folder" in capsys.readouterr().err


def test_text_runs_predict_class_names_and_evaluate_named_labels(tmp_path, reviews_csv):
    run = tmp_path / "run"
    train_and_test(make_cfg(run, "data=text_files", f"data.path={reviews_csv}", "data.text_column=review",
                            "data.label_column=stars", "model=text_bow", "trainer.max_epochs=10", "data.batch_size=16",
                            *QUIET))
    texts, labels = review_texts(60, seed=9)
    table = tmp_path / "new.csv"
    pandas.DataFrame({"review": texts, "stars": ["good" if y else "bad" for y in labels]}).to_csv(table, index=False)
    written = pandas.read_csv(predict(run, table))
    assert set(written["predicted"]) <= {"bad", "good"} and list(written.columns) == ["predicted", "p_bad", "p_good"]
    metrics = evaluate(run, file=table)
    assert metrics["new.csv/acc"] == pytest.approx((written["predicted"] == pandas.read_csv(table)["stars"]).mean())
    assert metrics["new.csv/acc"] > 0.9
