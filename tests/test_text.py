"""Text data and models: embedded BBC News, Hub loading (on a local copy), own files, encoders."""
from __future__ import annotations

import json

import numpy as np
import pandas
import pytest
import torch
from sklearn.feature_extraction.text import CountVectorizer
from torch import nn

from trainlab.errors import ConfigError
from trainlab.nn.models import estimate_memory
from trainlab.nn.text import MultiHot, MultiHotRows, WordEmbedding, load_hub, load_text_files, load_text_folder
from trainlab.run.build import build_datamodule, build_net
from trainlab.run.pipeline import train_and_test

from conftest import QUIET, make_cfg


def text_datamodule(tmp_path, *overrides):
    cfg = make_cfg(tmp_path, *overrides)
    return build_datamodule(cfg)


def test_bbc_news_is_embedded(tmp_path):
    dm = text_datamodule(tmp_path, "data=bbc_news", "model=text_bow")
    assert sum(len(y) for _, y in dm.splits.values()) == 2225
    assert dm.label_names == ["business", "entertainment", "politics", "sports", "tech"]
    assert dm.num_features == dm.vocabulary_size == 10_000
    assert isinstance(dm.splits["train"][0], MultiHotRows)


def test_num_words_caps_the_vocabulary(tmp_path, reviews_csv):
    dm = text_datamodule(tmp_path, "data=text_files", f"data.path={reviews_csv}", "data.text_column=review",
                         "data.label_column=stars", "model=text_bow", "data.num_words=5")
    assert dm.num_features == 5  # top-5 training words; no row may use a column beyond them
    assert all(rows.matrix.shape[1] == 5 for rows, _ in dm.splits.values())


def test_vocabulary_comes_from_the_training_split_only(tmp_path):
    # Every document has a word of its own: the vocabulary must hold exactly the training documents' ones.
    labels = ["neg", "pos"] * 40
    documents = pandas.DataFrame({"text": [f"a film review own{i}" for i in range(80)], "label": labels})
    documents.to_csv(tmp_path / "docs.csv", index=False)
    dm = text_datamodule(tmp_path, "data=text_files", f"data.path={tmp_path / 'docs.csv'}", "model=text_bow")
    train_rows = dm.split_indices(np.array([dm.label_names.index(v) for v in labels]))["train"]
    own_words = {word for word in dm.vocabulary.vocabulary_ if word.startswith("own")}
    assert own_words == {f"own{i}" for i in train_rows}
    assert len(own_words) < 80


def test_sparse_multi_hot_batches_equal_dense_linear_values_and_gradients():
    texts = ["the cat sat", "the dog ran far", "a cat and a dog", "far far away"]
    vectorizer = CountVectorizer(binary=True).fit(texts)
    dense = torch.tensor(vectorizer.transform(texts).toarray(), dtype=torch.float32)
    vocab = vectorizer.vocabulary_
    rows = MultiHotRows(vectorizer.transform(texts).astype(np.float32))
    batch = rows[torch.tensor([2, 0, 3])]
    assert batch.layout == torch.sparse_csr  # fed to the first layer as it is, never densified
    torch.testing.assert_close(batch.to_dense(), dense[[2, 0, 3]])
    layer = nn.Linear(len(vocab), 4)
    reference = nn.Linear(len(vocab), 4)
    reference.load_state_dict(layer.state_dict())
    layer(batch).pow(2).sum().backward()
    reference(dense[[2, 0, 3]]).pow(2).sum().backward()
    torch.testing.assert_close(layer.weight.grad, reference.weight.grad)
    torch.testing.assert_close(layer.bias.grad, reference.bias.grad)


def test_embedding_ids_are_padded_and_truncated(tmp_path):
    dm = text_datamodule(tmp_path, "data=bbc_news", "model=text_embed", "data.max_len=32")
    ids = dm.splits["train"][0]
    assert ids.shape[1] == 32 and ids.dtype == torch.long
    assert ids.max() < dm.num_features == dm.vocabulary_size + 2
    filled = ids != 0
    assert torch.equal(filled, filled.cummin(dim=1).values)  # each document's words first, padding after
    short = text_datamodule(tmp_path, "data=bbc_news", "model=text_embed", "data.max_len=2000").splits["train"][0]
    assert (short == 0).any(dim=1).float().mean() > 0.95  # nearly every article is shorter: padded


@pytest.mark.parametrize("pooling", ["mean", "max"])
def test_pooling_ignores_padding(pooling):
    torch.manual_seed(0)
    pool = WordEmbedding(10, 4, pooling)
    padded = pool(torch.tensor([[3, 5, 0, 0], [0, 0, 0, 0]]))
    unpadded = pool(torch.tensor([[3, 5]]))
    torch.testing.assert_close(padded[0], unpadded[0])
    assert torch.equal(padded[1], torch.zeros(4))


def test_text_folder_is_read_by_class_subfolder(tmp_path):
    for label, words in (("good", "great film"), ("bad", "dull film")):
        (tmp_path / label).mkdir()
        for i in range(3):
            (tmp_path / label / f"{i}.txt").write_text(f"{words} {i}")
    (tmp_path / "good" / "notes.md").write_text("not a document")  # only *.txt files are documents
    (tmp_path / ".ipynb_checkpoints").mkdir()  # a folder without documents is no class
    loaded = load_text_folder(tmp_path)
    assert loaded.features["label"].names == ["bad", "good"]
    assert loaded["text"] == [f"dull film {i}" for i in range(3)] + [f"great film {i}" for i in range(3)]
    assert loaded["label"] == [0, 0, 0, 1, 1, 1]


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".json", ".jsonl", ".parquet", "folder"])
def test_every_text_files_format_gives_the_same_documents(tmp_path, suffix):
    frame = pandas.DataFrame({"text": [f"{w} film {i}" for i in range(6) for w in ("great", "dull")],
                              "label": ["good", "bad"] * 6})
    path = tmp_path / f"docs{suffix}"
    if suffix == "folder":
        for i, row in frame.iterrows():
            (path / row.label).mkdir(parents=True, exist_ok=True)
            (path / row.label / f"{i:02d}.txt").write_text(row.text)
    else:
        {".csv": lambda: frame.to_csv(path, index=False), ".tsv": lambda: frame.to_csv(path, sep="\t", index=False),
         ".json": lambda: frame.to_json(path, orient="records"), ".jsonl": lambda: frame.to_json(path, orient="records",
                                                                                              lines=True),
         ".parquet": lambda: frame.to_parquet(path)}[suffix]()
    loaded = load_text_files(str(path))
    names = loaded.features["label"].names if suffix == "folder" else None
    pairs = sorted((text, names[label] if names else label) for text, label in zip(loaded["text"], loaded["label"],
                                                                                 strict=True))
    assert pairs == sorted(zip(frame.text, frame.label, strict=True))


def test_multi_hot_rows_reach_the_first_layer_sparse_and_are_densified_only_for_16_bits():
    rows = MultiHotRows(CountVectorizer(binary=True, dtype=np.float32).fit_transform(["a cat", "a dog", "cat dog"]))
    batch = rows[torch.tensor([0, 2])]
    first = MultiHot(batch.shape[1])
    assert first(batch) is batch  # float32 sparse rows go into the Linear as they are
    with torch.autocast("cpu", dtype=torch.bfloat16):
        dense = first(batch)
    assert dense.layout == torch.strided and torch.equal(dense, batch.to_dense())


def test_the_memory_estimate_counts_no_dense_input_for_multi_hot(tmp_path):
    cfg = make_cfg(tmp_path, "data=bbc_news", "model=text_bow")
    dm = build_datamodule(cfg)
    net = build_net(cfg, dm.num_features, dm.num_classes)
    memory = estimate_memory(net, dm.input_example(), torch.optim.SGD(net.parameters(), lr=0.1), "32-true", 64)
    per_sample = 16 + 16 + 16 + 16 + 5  # Linear and ReLU outputs, then 5 logits; none for the sparse input
    assert memory["activations_mb"] == pytest.approx(per_sample * 64 * 4 / 1024**2, abs=1e-3)


def test_text_bow_learns_bbc_news(tmp_path):
    summary = train_and_test(make_cfg(tmp_path, "data=bbc_news", "model=text_bow", "trainer.max_epochs=5", *QUIET))
    assert summary["best"]["val/acc"] > 0.9
    assert summary["layer_widths"] == [10_000, 16, 16, 5]
    assert json.loads((tmp_path / "labels.json").read_text())["4"] == "tech"


def test_text_embed_learns_bbc_news(tmp_path):
    summary = train_and_test(make_cfg(tmp_path, "data=bbc_news", "model=text_embed", "activation=relu", "norm=layer",
                             "trainer.max_epochs=5", *QUIET))
    assert summary["best"]["val/acc"] > 0.6


def test_imdb_overfit_shows_the_turn_on_bbc_news(tmp_path):
    summary = train_and_test(make_cfg(tmp_path, "experiment=imdb_overfit", "data=bbc_news", *QUIET))
    val = [h["val/loss"] for h in summary["history"]]
    train_loss = [h["train/loss"] for h in summary["history"]]
    assert len(val) == 20  # early stopping is off
    turn = int(np.argmin(val))
    assert 0 < turn < len(val) - 1 and val[-1] > val[turn]
    assert train_loss[-1] < train_loss[turn] < train_loss[0]


def test_hub_loader_on_a_local_copy_in_the_imdb_schema_binary_head(tmp_path, hub_like_dataset):
    summary = train_and_test(make_cfg(tmp_path, "data=imdb", f"data.dataset={hub_like_dataset}", "model=text_bow",
                             "trainer.max_epochs=15", "data.batch_size=32", *QUIET))
    assert summary["layer_widths"][-1] == 1  # two classes: one sigmoid logit, binary cross-entropy
    assert summary["best"]["val/acc"] > 0.9
    assert json.loads((tmp_path / "labels.json").read_text()) == {"0": "neg", "1": "pos"}


def test_hub_dataset_offline_fails_fast_and_clearly(no_network):
    # Fast means no network attempt at all (online, `datasets` retries for a long while): any connection fails the test.
    # A name no cache can hold, so a filled Hugging Face cache changes nothing.
    with pytest.raises(ConfigError) as error:
        load_hub("trainlab-tests/no-such-dataset")
    message = str(error.value)
    for part in ("trainlab-tests/no-such-dataset", "no network", "data=bbc_news", "HF_DATASETS_CACHE"):
        assert part in message


def test_own_csv_with_string_labels(tmp_path, reviews_csv):
    summary = train_and_test(make_cfg(tmp_path, "data=text_files", f"data.path={reviews_csv}", "data.text_column=review",
                             "data.label_column=stars", "model=text_bow", "trainer.max_epochs=10",
                             "data.batch_size=16", *QUIET))
    assert json.loads((tmp_path / "labels.json").read_text()) == {"0": "bad", "1": "good"}
    assert summary["best"]["val/acc"] > 0.9


def write_csv(path, rows):
    path.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in rows))
    return path


@pytest.mark.parametrize(("rows", "overrides", "key"), [
    (None, ["data.path=/no/such/reviews.csv"], "data.path"),
    ([("good film", "a")] * 20, ["data.text_column=review"], "data.text_column"),
    ([("good film", "a")] * 20, ["data.label_column=stars"], "data.label_column"),
    ([("good film", "a")] * 20, [], "only one class"),
    ([("good film", "a"), ("", "b")] * 20, [], "empty text"),
    ([("good film", "a"), ("bad film", "b"), ("ok film", "c")] * 20, ["data.num_classes=2"], "data.num_classes"),
    ([("good film", "a"), ("bad film", "b")] * 20, ["data.num_words=0"], "data.num_words"),
])
def test_bad_text_input_is_a_clear_error(tmp_path, rows, overrides, key):
    path = write_csv(tmp_path / "data.csv", rows) if rows else None
    source = [f"data.path={path}"] if path else []
    with pytest.raises(ConfigError, match=key):
        train_and_test(make_cfg(tmp_path / "run", "data=text_files", *source, "model=text_bow", *overrides, *QUIET))


def test_text_model_and_data_must_match(tmp_path):
    with pytest.raises(ConfigError, match="model=text_bow or model=text_embed"):
        train_and_test(make_cfg(tmp_path, "data=bbc_news", "model=hourglass"))
    with pytest.raises(ConfigError, match="needs text data"):
        train_and_test(make_cfg(tmp_path, "data=digits", "model=text_bow"))
