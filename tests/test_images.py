"""Hub image sets (data=mnist_full, fashion_mnist, cifar10) on local save_to_disk copies: pixels, splits, errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from trainlab.errors import ConfigError
from trainlab.nn import images
from trainlab.nn.images import load_images
from trainlab.run.build import build_datamodule

from conftest import image_set, make_cfg


def pil_rows(path, split: str, column: str) -> np.ndarray:
    """The reference: each image's pixels as PIL gives them, flattened in numpy's order (rows, columns, channels)."""
    from datasets import load_from_disk

    part = load_from_disk(str(path))[split]
    return np.stack([np.asarray(image, dtype=np.float32).reshape(-1) for image in part[column]])


@pytest.mark.parametrize(("kind", "column", "width"), [("gray", "image", 64), ("rgb", "img", 192)])
def test_rows_are_the_pil_pixels_train_then_the_sets_own_test(image_sets, kind, column, width):
    loaded = load_images(str(image_sets[kind]), image_column=column)
    assert loaded.x.shape == (80, width) and loaded.own_test == 20
    reference = np.concatenate([pil_rows(image_sets[kind], "train", column), pil_rows(image_sets[kind], "test", column)])
    np.testing.assert_array_equal(loaded.x.astype(np.float32), reference)
    assert loaded.y.dtype == np.int64 and loaded.y.tolist() == [i % 2 for i in range(60)] + [i % 2 for i in range(20)]
    assert loaded.label_names == ["dark", "light"]  # the ClassLabel's names: labels.json


def test_the_sets_own_test_split_is_kept_and_val_is_carved_from_train(tmp_path, image_sets):
    dm = build_datamodule(make_cfg(tmp_path, "data=mnist_full", f"data.dataset={image_sets['gray']}"))
    assert [len(dm.splits[s][1]) for s in ("train", "val", "test")] == [54, 6, 20]
    assert dm.num_features == 64 and dm.num_classes == 2
    raw = build_datamodule(make_cfg(tmp_path, "data=mnist_full", f"data.dataset={image_sets['gray']}",
                                    "data.scaler=none"))
    torch.testing.assert_close(raw.splits["test"][0], torch.as_tensor(pil_rows(image_sets["gray"], "test", "image")))
    mean, std = raw.splits["train"][0].double().mean(), raw.splits["train"][0].double().std(unbiased=False)
    torch.testing.assert_close(dm.splits["test"][0].double(), (raw.splits["test"][0].double() - mean) / std,
                               atol=1e-5, rtol=0)  # global scaling, fitted on the training split alone


def test_a_set_without_a_test_split_gets_one_carved(tmp_path):
    image_set(tmp_path / "only_train", "L", "image", {"train": 60})
    dm = build_datamodule(make_cfg(tmp_path, "data=mnist_full", f"data.dataset={tmp_path / 'only_train'}",
                                   "data.val_fraction=0.2", "data.test_fraction=0.2"))
    assert [len(dm.splits[s][1]) for s in ("train", "val", "test")] == [36, 12, 12]


def test_plain_integer_labels_become_ids_in_sorted_order(tmp_path):
    from datasets import Dataset, Image
    from PIL import Image as PILImage

    pictures = [PILImage.fromarray(np.full((4, 4), v, dtype=np.uint8)) for v in range(6)]
    Dataset.from_dict({"image": pictures, "label": [7, 3, 7, 3, 9, 9]}).cast_column("image", Image()).save_to_disk(
        str(tmp_path / "plain"))
    loaded = load_images(str(tmp_path / "plain"))
    assert loaded.y.tolist() == [1, 0, 1, 0, 2, 2] and loaded.label_names == ["3", "7", "9"] and loaded.own_test == 0


def test_decoded_pixels_come_from_the_cache_the_second_time(tmp_path, image_sets, monkeypatch):
    first = load_images(str(image_sets["rgb"]), image_column="img", cache_dir=str(tmp_path))
    assert len(list(tmp_path.glob("images-*.npz"))) == 1
    monkeypatch.setattr(images, "decode", lambda *args: pytest.fail("decoded again despite the cache"))
    again = load_images(str(image_sets["rgb"]), image_column="img", cache_dir=str(tmp_path))
    assert all(np.array_equal(a, b) for a, b in zip(first[:2], again[:2], strict=True))
    assert again[2:] == first[2:]


def test_a_hub_name_offline_fails_fast_with_the_text_sets_message(no_network):
    # As for the Hub's text sets: no network attempt at all, and the embedded data to use instead.
    with pytest.raises(ConfigError) as error:
        load_images("trainlab-tests/no-such-images")
    message = str(error.value)
    assert message.startswith("data.dataset: cannot load 'trainlab-tests/no-such-images' from the Hugging Face Hub: "
                              "no network and it is not in the local cache. Use the embedded data=mnist")
    assert "HF_DATASETS_CACHE" in message


def mixed_sizes(root):
    from datasets import Dataset, Image
    from PIL import Image as PILImage

    pictures = [PILImage.fromarray(np.zeros(shape, dtype=np.uint8)) for shape in ((4, 4), (4, 4), (5, 5), (5, 5))]
    Dataset.from_dict({"image": pictures, "label": [0, 1, 0, 1]}).cast_column("image", Image()).save_to_disk(str(root))
    return root


@pytest.mark.parametrize(("options", "message"), [
    ({"image_column": "pixels"}, "data.image_column: no column 'pixels' in {path}; it has ['image', 'label']: name it "
     "with data.image_column=<name>"),
    ({"label_column": "digit"}, "data.label_column: no column 'digit' in {path}; it has ['image', 'label']: name it "
     "with data.label_column=<name>"),
])
def test_a_missing_column_names_the_key_and_the_columns(image_sets, options, message):
    with pytest.raises(ConfigError) as error:
        load_images(str(image_sets["gray"]), **options)
    assert str(error.value) == message.format(path=image_sets["gray"])


def test_images_of_different_sizes_are_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"^data.image_column: the images of 'image' differ in size or channels .*"
                                          "resize them$"):
        load_images(str(mixed_sizes(tmp_path / "mixed")))
