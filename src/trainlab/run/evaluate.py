"""Use a trained model: evaluate it on a split or a labelled file, or predict the labels of new rows.

    trainlab-eval outputs/runs/<run>                        # its best checkpoint on the test split
    trainlab-eval outputs/runs/<run> --split val            # or train, val
    trainlab-eval <run or .ckpt> --file labelled.csv        # a file with the training data's columns
    trainlab-predict <run or .ckpt> new.csv                 # writes new.predictions.csv beside it

A run folder means its best checkpoint (summary.json's `best_checkpoint`, else checkpoints/last.ckpt).
The model is rebuilt from the config saved in the checkpoint, and the data from the same config, so
splits, scaling and vocabulary are the training run's. Files: csv, csv.gz, parquet or feather.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import lightning as L
import numpy as np
import pandas
import torch
from omegaconf import OmegaConf

from trainlab import import_from_cwd
from trainlab.errors import ConfigError, TrainlabError, exit_with
from trainlab.nn.module import Classifier
from trainlab.nn.tables import read_table
from trainlab.run.build import build_datamodule, load_module


def checkpoint_of(target: Path) -> Path:
    """A checkpoint file as it is; a run folder's best checkpoint, else its last."""
    if target.is_file():
        return target
    if not (target / "config.yaml").exists():
        raise ConfigError("checkpoint", f"{target} is neither a checkpoint file nor a trainlab run folder")
    summary = target / "summary.json"
    best = json.loads(summary.read_text()).get("best_checkpoint") if summary.exists() else None
    for path in (Path(best) if best else None, target / "checkpoints" / "last.ckpt"):
        if path is not None and path.is_file():
            return path
    raise ConfigError("checkpoint", f"{target} holds no checkpoint (a debug=fast_dev_run or callbacks=none run?)")


def prepared(target: Path) -> tuple[Classifier, object]:
    """The trained module and its training data, rebuilt; refuses data that no longer fits the model."""
    module = load_module(checkpoint_of(target))
    saved = module.hparams
    datamodule = build_datamodule(OmegaConf.create(saved["config"]))
    if (datamodule.num_features, datamodule.num_classes) != (saved["num_features"], saved["num_classes"]):
        raise ConfigError("checkpoint", f"the data now has {datamodule.num_features} features and "
                          f"{datamodule.num_classes} classes, the model was trained on {saved['num_features']} and "
                          f"{saved['num_classes']}")
    return module, datamodule


def _trainer(module: Classifier) -> L.Trainer:
    precision = module.hparams["config"]["trainer"]["precision"]  # as trained, so metrics match the run's
    # One process (a machine's several GPUs would start DDP), and no logger: evaluating writes no files.
    return L.Trainer(devices=1, precision=precision, logger=False, enable_progress_bar=False)


def evaluate(target: Path, split: str = "test", file: Path | None = None, label_column: str | None = None) -> dict:
    """Loss and accuracy of a trained model on a split of its data, or on a labelled file."""
    module, datamodule = prepared(target)
    if file is None:
        loader, name = datamodule.split_batches(split), split
    else:
        label_column = label_column or _label_column(module)
        inputs, labels = datamodule.encode(read_table(file, key="file"), label_column)
        if labels is None:
            raise ConfigError("file", f"{file} has no label column {label_column!r} to "
                              "evaluate against; name it with --label-column, or use trainlab-predict")
        loader, name = datamodule.batches(inputs, labels), file.name
    (metrics,) = _trainer(module).test(module, dataloaders=loader, verbose=False)
    return {key.replace("test/", f"{name}/"): value for key, value in metrics.items()}


def predict(target: Path, file: Path) -> Path:
    """Predicted labels and class probabilities for the rows of `file`, written beside it."""
    module, datamodule = prepared(target)
    frame = read_table(file, key="file")
    inputs, _ = datamodule.encode(frame, label_column=None)
    batches = _trainer(module).predict(module, dataloaders=datamodule.batches(inputs, None))
    probabilities = torch.cat([b[2] for b in batches])
    predicted = torch.cat([b[0] for b in batches]).numpy()
    names = datamodule.label_names or [str(i) for i in range(datamodule.num_classes)]
    out = pandas.DataFrame({"predicted": np.asarray(names)[predicted]})
    for i, name in enumerate(names):
        out[f"p_{name}"] = probabilities[:, i].numpy()
    path = file.with_name(f"{file.stem}.predictions.csv")
    out.to_csv(path, index=False)
    return path


def _label_column(module: Classifier) -> str:
    return module.hparams["config"]["data"].get("label_column", "label")


def checkpoint_argument(text: str) -> Path:
    """A path; `ckpt_path=<path>`, as lightning-hydra-template's eval.py takes it, too."""
    return Path(text.removeprefix("ckpt_path="))


def main_eval(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="trainlab-eval", description=__doc__.split("\n")[0])
    parser.add_argument("target", type=checkpoint_argument, help="a run folder (its best checkpoint) or a .ckpt file")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"),
                        help="the split of the run's data to evaluate on (default: test)")
    parser.add_argument("--file", type=Path, help="a labelled csv, parquet or feather file with the training data's columns")
    parser.add_argument("--label-column", help="the file's label column (default: the data's, or `label`)")
    args = parser.parse_args(argv)
    return _run(lambda: print(json.dumps(evaluate(args.target, args.split, args.file, args.label_column), indent=2)))


def main_predict(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="trainlab-predict", description="Predict the labels of new rows.")
    parser.add_argument("target", type=checkpoint_argument, help="a run folder (its best checkpoint) or a .ckpt file")
    parser.add_argument("file", type=Path, help="a csv, parquet or feather file with the training data's columns")
    args = parser.parse_args(argv)
    return _run(lambda: print(f"predictions: {predict(args.target, args.file)}"))


def _run(command) -> int:
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    import_from_cwd()  # a checkpoint of a user's own net rebuilds it from their folder
    try:
        command()
    except TrainlabError as error:
        exit_with(error)
    return 0


if __name__ == "__main__":
    sys.exit(main_eval())
