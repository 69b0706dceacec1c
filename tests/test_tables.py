"""Your own table (data=table): read by suffix, labels to class ids, every bad input one clear line."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas
import pytest
import torch

from trainlab.errors import ConfigError
from trainlab.nn.data import ArrayDataModule
from trainlab.nn.tables import load_table
from trainlab.run.build import build_datamodule
from trainlab.run.pipeline import train_and_test

from conftest import QUIET, ROOT, blobs_table, make_cfg

WRITERS = {"blobs.csv": lambda frame, path: frame.to_csv(path, index=False),
           "blobs.csv.gz": lambda frame, path: frame.to_csv(path, index=False),  # pandas gzips by the suffix
           "blobs.parquet": lambda frame, path: frame.to_parquet(path),
           "blobs.feather": lambda frame, path: frame.to_feather(path)}


def written(tmp_path, frame: pandas.DataFrame, name: str = "blobs.csv"):
    path = tmp_path / name
    WRITERS[name](frame, path)
    return path


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_every_file_type_gives_the_pandas_table(tmp_path, name):
    frame = blobs_table(30)
    loaded = load_table(str(written(tmp_path, frame, name)))
    # The reference: the features as pandas holds them, the labels as their rank among the sorted names.
    np.testing.assert_array_equal(loaded.x, frame[["width", "height", "flag"]].to_numpy(dtype=np.float32))
    np.testing.assert_array_equal(loaded.y, frame["label"].map({"a": 0, "b": 1, "c": 2}).to_numpy())
    assert loaded.x.dtype == np.float32 and loaded.y.dtype == np.int64
    assert loaded.label_names == ["a", "b", "c"] and loaded.feature_names == ["width", "height", "flag"]


@pytest.mark.parametrize(("labels", "ids", "names"), [
    (["dog", "cat", "emu", "cat"], [1, 0, 2, 0], ["cat", "dog", "emu"]),  # strings: alphabetical
    ([10, 3, 7, 3], [2, 0, 1, 0], ["3", "7", "10"]),  # integers: by value, not as text
    ([1.0, 0.0, 1.0, 0.0], [1, 0, 1, 0], ["0", "1"]),  # whole floats are integers
    ([0, 1, 2, 1], [0, 1, 2, 1], ["0", "1", "2"]),  # already ids 0..K-1: unchanged
])
def test_labels_become_ids_in_sorted_order(tmp_path, labels, ids, names):
    frame = pandas.DataFrame({"x": [0.1, 0.2, 0.3, 0.4], "label": labels})
    loaded = load_table(str(written(tmp_path, frame, "blobs.parquet")))
    assert loaded.y.tolist() == ids and loaded.label_names == names


def test_listed_feature_columns_are_read_in_their_order_and_others_ignored(tmp_path):
    frame = blobs_table(30).assign(note="free text, not a feature")
    loaded = load_table(str(written(tmp_path, frame)), feature_columns=["height", "width"])
    np.testing.assert_array_equal(loaded.x, frame[["height", "width"]].to_numpy(dtype=np.float32))


def test_the_path_is_relative_to_where_you_run(tmp_path, table_csv, monkeypatch):
    # hydra.job.chdir is false: a relative data.path is the user's working directory's, not the run folder's.
    monkeypatch.chdir(table_csv.parent)
    summary = train_and_test(make_cfg(tmp_path, "data=table", f"data.path={table_csv.name}", "debug=fast_dev_run",
                                      *QUIET))
    assert summary["status"] == "completed"


def cell(frame: pandas.DataFrame, column: str, value) -> pandas.DataFrame:
    frame = frame.copy()
    frame[column] = frame[column].astype(object) if isinstance(value, str) else frame[column]
    frame.loc[3, column] = value
    return frame


@pytest.mark.parametrize(("name", "frame", "options", "message"), [
    ("blobs.txt", blobs_table(30), {}, "data.path: unsupported file type '.txt'; use one of .csv, .csv.gz, .parquet, "
     ".feather"),
    ("blobs.csv", blobs_table(30), {"label_column": "class"}, "data.label_column: no column 'class' in blobs.csv; it "
     "has ['width', 'height', 'flag', 'label']: name the label column with data.label_column=<name>"),
    ("blobs.csv", blobs_table(30).assign(colour="red"), {}, "data.feature_columns: columns ['colour'] are not "
     "numeric; list the numeric ones in data.feature_columns=[a,b,...], or encode these as numbers (e.g. one-hot) in "
     "the file"),
    ("blobs.csv", blobs_table(30), {"feature_columns": ["width", "depth"]}, "data.feature_columns: no column 'depth' "
     "in the file; it has ['width', 'height', 'flag', 'label']"),
    ("blobs.csv", blobs_table(30), {"feature_columns": ["width", "label"]}, "data.feature_columns: 'label' is the "
     "label column (data.label_column); leave it out of the features"),
    ("blobs.csv", blobs_table(30)[["label"]], {}, "data.feature_columns: no feature columns: the file has only "
     "['label']"),
    ("blobs.csv", blobs_table(30).assign(label="a"), {}, "data.label_column: only one class ('a') in 'label'; a "
     "classifier needs two or more"),
    ("blobs.csv", cell(blobs_table(30), "label", None), {}, "data.label_column: 1 rows have no label in 'label' "
     "(first at row 3); drop or fill them"),
    ("blobs.parquet", blobs_table(30).assign(label=np.linspace(0, 1, 30)), {}, "data.label_column: 'label' holds "
     "non-integer numbers (e.g. 0.0344828); a classifier needs class labels: name the label column with "
     "data.label_column"),
    ("blobs.csv", blobs_table(30)[:0], {}, "data.path: {path} has no rows"),
])
def test_bad_tables_are_one_clear_line(tmp_path, name, frame, options, message):
    path = tmp_path / name
    (WRITERS.get(name) or WRITERS["blobs.csv"])(frame, path)
    with pytest.raises(ConfigError) as error:
        load_table(str(path), **options)
    assert str(error.value) == message.format(path=path)


def test_a_missing_file_names_data_path_and_where_it_was_looked_for(tmp_path):
    with pytest.raises(ConfigError) as error:
        load_table(str(tmp_path / "nope.csv"))
    assert str(error.value) == (f"data.path: no such file: {tmp_path / 'nope.csv'}; give data.path=<your .csv, "
                                ".csv.gz, .parquet or .feather file>, relative to where you run")


def test_an_unreadable_file_names_data_path(tmp_path):
    (tmp_path / "broken.parquet").write_text("not parquet")
    with pytest.raises(ConfigError, match=r"^data.path: cannot read .*broken.parquet as .parquet: "):
        load_table(str(tmp_path / "broken.parquet"))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_features_are_refused_by_the_array_checks_naming_the_column(tmp_path, bad):
    path = written(tmp_path, cell(blobs_table(30), "height", bad))
    with pytest.raises(ConfigError) as error:
        ArrayDataModule(lambda: load_table(str(path)))
    assert str(error.value) == "data: the features contain 1 NaN/inf values (in columns ['height']); clean or impute them"


def test_table_splits_and_scales_as_array_data(tmp_path, table_csv):
    dm = build_datamodule(make_cfg(tmp_path, "data=table", f"data.path={table_csv}", "data.split_seed=0"))
    assert (dm.num_features, dm.num_classes, dm.label_names) == (3, 3, ["a", "b", "c"])
    assert [len(dm.splits[s][1]) for s in ("train", "val", "test")] == [84, 18, 18]
    train = dm.splits["train"][0]  # the standard scaler, fitted on train: centred there (the constant column at 0)
    torch.testing.assert_close(train.mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    reference = ArrayDataModule(lambda: load_table(str(table_csv)), val_fraction=0.15, test_fraction=0.15)
    assert all(torch.equal(dm.splits[s][i], reference.splits[s][i]) for s in ("train", "val", "test") for i in (0, 1))


def test_a_table_run_saves_the_class_names_and_evaluates_a_file_with_string_labels(tmp_path, table_csv):
    from trainlab.run.evaluate import evaluate

    summary = train_and_test(make_cfg(tmp_path, "data=table", f"data.path={table_csv}", "trainer.max_epochs=5",
                                      *QUIET))
    assert json.loads((tmp_path / "labels.json").read_text()) == {"0": "a", "1": "b", "2": "c"}
    assert summary["best"]["val/acc"] > 0.9
    extra = blobs_table(30, seed=5).assign(note="ignored")[["note", "label", "height", "flag", "width"]]
    extra.to_csv(tmp_path / "extra.csv", index=False)  # other column order, an extra column: read by name
    assert evaluate(tmp_path, file=tmp_path / "extra.csv")["extra.csv/acc"] > 0.9


@pytest.mark.full  # a subprocess: the slow tier
def test_a_bad_table_exits_2_with_one_line(tmp_path, table_csv):
    run = subprocess.run([sys.executable, str(ROOT / "train.py"), "data=table", f"data.path={table_csv}",
                          "data.label_column=kind", f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-1] == ("error: data.label_column: no column 'kind' in blobs.csv; it has "
                                                   "['width', 'height', 'flag', 'label']: name the label column with "
                                                   "data.label_column=<name>")
    assert not (tmp_path / "run").exists()  # bad input writes nothing, not even Hydra's record
