"""Using a trained model: evaluate a run or checkpoint on a split or a file, predict new rows, load a checkpoint."""
from __future__ import annotations

import json
import logging
import shutil

import pandas
import pytest
import torch
from omegaconf import OmegaConf
from sklearn.datasets import load_digits

from trainlab.errors import ConfigError
from trainlab.nn.module import Classifier
from trainlab.run.build import load_module
from trainlab.run.evaluate import _trainer, checkpoint_of, evaluate, main_eval, main_predict, predict, prepared
from trainlab.run.pipeline import train_and_test

from conftest import QUIET, make_cfg, review_texts


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


def test_evaluating_and_predicting_write_no_file_but_the_predictions(digits_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_files = sorted((p, p.stat().st_mtime_ns) for p in digits_run[0].rglob("*"))
    evaluate(digits_run[0])
    predict(digits_run[0], digits_table(tmp_path / "new.csv", slice(0, 5), label=False))
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["new.csv", "new.predictions.csv"]
    assert sorted((p, p.stat().st_mtime_ns) for p in digits_run[0].rglob("*")) == run_files


def test_a_model_is_evaluated_at_the_precision_it_was_trained_at(digits_run):
    module, _ = prepared(digits_run[0])
    module.hparams["config"]["trainer"]["precision"] = "bf16-mixed"
    assert _trainer(module).precision == "bf16-mixed"


def test_a_run_folder_means_its_best_checkpoint(digits_run):
    folder, summary = digits_run
    assert checkpoint_of(folder) == folder / "checkpoints" / f"best-epoch{summary['best_epoch']:03d}.ckpt"


def test_a_run_folder_without_a_best_checkpoint_means_its_last_and_one_without_either_is_refused(digits_run, tmp_path):
    (tmp_path / "checkpoints").mkdir()
    shutil.copy(digits_run[0] / "config.yaml", tmp_path)
    shutil.copy(digits_run[0] / "checkpoints" / "last.ckpt", tmp_path / "checkpoints")
    assert checkpoint_of(tmp_path) == tmp_path / "checkpoints" / "last.ckpt"  # no summary.json: stopped early
    (tmp_path / "summary.json").write_text(json.dumps({"status": "failed", "best_checkpoint": None}))
    assert checkpoint_of(tmp_path) == tmp_path / "checkpoints" / "last.ckpt"
    (tmp_path / "checkpoints" / "last.ckpt").unlink()
    with pytest.raises(ConfigError, match=r"^checkpoint: .* holds no checkpoint \(a debug=fast_dev_run"):
        checkpoint_of(tmp_path)


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
@pytest.mark.parametrize("use", [predict, lambda run, file: evaluate(run, file=file)], ids=["predict", "evaluate"])
def test_bad_files_are_refused_naming_the_file(digits_run, tmp_path, make, says, use):
    with pytest.raises(ConfigError, match=says) as refused:
        use(digits_run[0], make(tmp_path))
    assert refused.value.key == "file"


def test_a_file_to_evaluate_without_its_label_column_is_refused(digits_run, tmp_path):
    rows = digits_table(tmp_path / "unlabelled.csv", slice(0, 5), label=False)
    with pytest.raises(ConfigError, match=r"unlabelled.csv has no label column 'label' to evaluate against; name "
                                          r"it with --label-column, or use trainlab-predict$") as refused:
        evaluate(digits_run[0], file=rows)
    assert refused.value.key == "file"


def test_a_checkpoint_of_another_shape_is_refused(digits_run, tmp_path):
    state = torch.load(digits_run[0] / "checkpoints" / "last.ckpt", weights_only=True)
    state["hyper_parameters"]["config"]["model"]["width"] = 64  # the saved weights are 32 wide
    torch.save(state, tmp_path / "other.ckpt")
    with pytest.raises(ConfigError, match="another model shape"):
        evaluate(tmp_path / "other.ckpt")


def test_the_command_evaluates_a_file_by_its_named_label_column_and_prints_indented_json(digits_run, tmp_path, capsys):
    rows = digits_table(tmp_path / "rows.csv", slice(0, 50), label=True)
    pandas.read_csv(rows).rename(columns={"label": "digit"}).to_csv(rows, index=False)
    assert main_eval([str(digits_run[0]), "--file", str(rows), "--label-column", "digit"]) == 0
    expected = evaluate(digits_run[0], file=rows, label_column="digit")
    assert set(expected) == {"rows.csv/acc", "rows.csv/loss"}
    assert capsys.readouterr().out == json.dumps(expected, indent=2) + "\n"


def test_data_that_no_longer_fits_the_model_is_refused(digits_run, tmp_path, table_csv):
    state = torch.load(digits_run[0] / "checkpoints" / "last.ckpt", weights_only=True)
    table = make_cfg(tmp_path, "data=table", f"data.path={table_csv}").data
    state["hyper_parameters"]["config"]["data"] = OmegaConf.to_container(table, resolve=True)
    torch.save(state, tmp_path / "moved.ckpt")
    with pytest.raises(ConfigError, match=r"^checkpoint: the data now has 3 features and 3 classes, the model was "
                                          r"trained on 64 and 10$"):
        evaluate(tmp_path / "moved.ckpt")


def test_the_command_prints_metrics_and_refuses_with_exit_2(digits_run, tmp_path, capsys):
    assert main_eval([str(digits_run[0])]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"test/acc", "test/loss"}
    assert main_eval([str(digits_run[0]), "--split", "val"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"val/acc", "val/loss"}
    with pytest.raises(SystemExit) as stopped:
        main_eval([str(tmp_path)])
    assert stopped.value.code == 2
    said = capsys.readouterr().err
    assert said == f"error: checkpoint: {tmp_path} is neither a checkpoint file nor a trainlab run folder\n"


def test_the_predict_command_names_the_file_it_wrote_and_refuses_with_exit_2(digits_run, tmp_path, capsys):
    rows = digits_table(tmp_path / "new.csv", slice(0, 5), label=False)
    assert main_predict([f"ckpt_path={digits_run[0]}", str(rows)]) == 0
    assert capsys.readouterr().out == f"predictions: {tmp_path / 'new.predictions.csv'}\n"
    assert len(pandas.read_csv(tmp_path / "new.predictions.csv")) == 5
    with pytest.raises(SystemExit) as stopped:
        main_predict([str(digits_run[0]), str(tmp_path / "missing.csv")])
    assert stopped.value.code == 2 and "missing.csv" in capsys.readouterr().err


def test_the_commands_log_no_lightning_info_lines(digits_run, caplog):
    logging.getLogger("lightning.pytorch").setLevel(logging.INFO)  # as in a fresh process
    caplog.set_level(logging.INFO)
    assert main_eval([str(digits_run[0])]) == 0
    assert [r.getMessage() for r in caplog.records if r.name.startswith("lightning")] == []


@pytest.mark.parametrize(("main", "says"), [
    (main_eval, ["usage: trainlab-eval ", "a run folder (its best checkpoint)",
                 "--split {train,val,test}", "the split of the run's data to evaluate on (default: test)",
                 "a labelled csv, parquet or feather file", "the file's label column (default: the data's, or `label`)"]),
    (main_predict, ["usage: trainlab-predict ", "a run folder (its best checkpoint)",
                    "a csv, parquet or feather file with the training data's columns"]),
])
def test_each_commands_help_names_it_and_says_what_each_argument_is(main, says, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # argparse wraps help to the terminal's width
    with pytest.raises(SystemExit) as stopped:
        main(["--help"])
    out = capsys.readouterr().out
    assert stopped.value.code == 0 and [text for text in says if text not in out] == []
    assert out.split("\n\n")[1] == {main_eval: "Use a trained model: evaluate it on a split or a labelled file, or "
                                               "predict the labels of new rows.",
                                     main_predict: "Predict the labels of new rows."}[main]  # one line, below usage


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
