"""Your own table (data=table): a csv, csv.gz, parquet or feather file of numeric features and a label column.

It goes through ArrayDataModule like any array data: the same splits, scalers, checks (NaN/inf
features among them) and report. Labels become class ids 0..K-1 in sorted order (strings
alphabetically, numbers by value), their names kept for labels.json.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from trainlab.errors import ConfigError
from trainlab.nn.data import Loaded

if TYPE_CHECKING:
    import pandas

READERS = {".csv": "read_csv", ".csv.gz": "read_csv", ".parquet": "read_parquet", ".feather": "read_feather"}


def table_kind(file: Path, key: str = "data.path") -> str:
    """The file's type by its suffix (.csv.gz counts as one), or a ConfigError naming the ones read."""
    name = file.name.lower()
    kind = next((suffix for suffix in sorted(READERS, key=len, reverse=True) if name.endswith(suffix)), None)
    if kind is None:
        raise ConfigError(key, f"unsupported file type {''.join(file.suffixes) or file.name!r}; "
                          f"use one of {', '.join(READERS)}")
    return kind


def read_table(path: str | Path, key: str = "data.path") -> pandas.DataFrame:
    """The file as a DataFrame; a relative path starts where you run (hydra.job.chdir is false). `key`: what the
    user gave the file as, named by a refusal (data=table's data.path, trainlab-eval's file)."""
    import pandas

    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(key, f"no such file: {file.resolve()}; give {key}=<your .csv, .csv.gz, .parquet "
                          "or .feather file>, relative to where you run")
    kind = table_kind(file, key)
    try:
        return getattr(pandas, READERS[kind])(file)
    except (ValueError, OSError, pandas.errors.ParserError) as error:  # pyarrow's ArrowInvalid is a ValueError
        raise ConfigError(key, f"cannot read {file} as {kind}: {str(error).splitlines()[0]}") from None


def class_ids(values: np.ndarray, key: str, column: str) -> tuple[np.ndarray, list[str]]:
    """Labels as ids 0..K-1 in sorted order, and each id's name; numbers sort by value, anything else as text."""
    if np.issubdtype(values.dtype, np.number) or values.dtype == bool:
        if np.issubdtype(values.dtype, np.floating) and not np.array_equal(values, np.round(values)):
            raise ConfigError(key, f"{column!r} holds non-integer numbers (e.g. {values[values != np.round(values)][0]:g}); "
                              "a classifier needs class labels: name the label column with data.label_column")
        classes, ids = np.unique(values, return_inverse=True)
        names = [str(int(c)) for c in classes]
    else:
        classes, ids = np.unique(values.astype(str), return_inverse=True)
        names = [str(c) for c in classes]
    if len(names) < 2:
        raise ConfigError(key, f"only one class ({names[0]!r}) in {column!r}; a classifier needs two or more")
    return ids.astype(np.int64), names


def feature_columns_of(frame: pandas.DataFrame, label_column: str, feature_columns: list[str] | None) -> list[str]:
    """The listed feature columns, or every column but the label's; each must exist and be numeric."""
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    columns = [str(c) for c in frame.columns]
    if feature_columns is None:
        chosen = [c for c in frame.columns if c != label_column]
    else:
        absent = [c for c in feature_columns if c not in columns]
        if absent:
            raise ConfigError("data.feature_columns", f"no column {absent[0]!r} in the file; it has {columns}")
        if label_column in feature_columns:
            raise ConfigError("data.feature_columns", f"{label_column!r} is the label column (data.label_column); "
                              "leave it out of the features")
        chosen = list(feature_columns)
    if not chosen:
        raise ConfigError("data.feature_columns", f"no feature columns: the file has only {columns}")
    text = [str(c) for c in chosen if not (is_numeric_dtype(frame[c]) or is_bool_dtype(frame[c]))]
    if text:
        raise ConfigError("data.feature_columns", f"columns {text} are not numeric; list the numeric ones in "
                          "data.feature_columns=[a,b,...], or encode these as numbers (e.g. one-hot) in the file")
    return chosen


def load_table(path: str, label_column: str = "label", feature_columns: list[str] | None = None) -> Loaded:
    """(x float32, y int64) of a table file, with the class names and the feature columns' names."""
    frame = read_table(path)
    if frame.empty:
        raise ConfigError("data.path", f"{path} has no rows")
    columns = [str(c) for c in frame.columns]
    if label_column not in frame.columns:
        raise ConfigError("data.label_column", f"no column {label_column!r} in {Path(path).name}; it has {columns}: "
                          "name the label column with data.label_column=<name>")
    features = feature_columns_of(frame, label_column, feature_columns)
    labels = frame[label_column]
    if labels.isna().any():
        raise ConfigError("data.label_column", f"{int(labels.isna().sum())} rows have no label in {label_column!r} "
                          f"(first at row {int(np.flatnonzero(labels.isna())[0])}); drop or fill them")
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    numeric = is_numeric_dtype(labels) or is_bool_dtype(labels)  # nullable ints too: sorted by value, not as text
    y, names = class_ids(labels.to_numpy(dtype=np.float64 if numeric else None), "data.label_column", label_column)
    x = frame[features].to_numpy(dtype=np.float32)  # NaN/inf are refused by ArrayDataModule, naming the columns
    return Loaded(x, y, label_names=names, feature_names=[str(c) for c in features])
