"""Every option of every config group composes and trains (fast_dev_run: one batch of each split)."""
from __future__ import annotations

import json

import pytest
import torch

from trainlab.build import CONF
from trainlab.errors import ConfigError
from trainlab.pipeline import train_and_test

from conftest import make_cfg

# trainer=ddp (two processes) has its own tests in test_reliability.py; trainer=gpu below; tune=lr_find, which
# finds a learning rate instead of training, in test_train.py.
SPECIAL = {("trainer", "ddp"), ("trainer", "gpu"), ("tune", "lr_find")}
OPTIONS = sorted((p.parent.name, p.stem) for p in CONF.glob("*/*.yaml") if (p.parent.name, p.stem) not in SPECIAL)


TEXT_DATA = {"bbc_news", "imdb", "rotten_tomatoes", "text_files"}


def partner_overrides(group: str, option: str, hub_like_dataset, reviews_csv) -> list[str]:
    """Text data needs a text model and vice versa; Hub data is replaced by a local copy in its schema."""
    if group == "data" and option in TEXT_DATA:
        extra = ["model=text_bow"]
    elif (group == "model" and option.startswith("text_")) or (group, option) == ("experiment", "imdb_overfit"):
        extra = ["data=bbc_news"]
    else:
        return []
    if option in ("imdb", "rotten_tomatoes"):
        extra.append(f"data.dataset={hub_like_dataset}")
    if option == "text_files":
        extra += [f"data.path={reviews_csv}", "data.text_column=review", "data.label_column=stars"]
    return extra


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_fast_dev_run(tmp_path, group, option, hub_like_dataset, reviews_csv):
    overrides = [f"{group}={option}", *partner_overrides(group, option, hub_like_dataset, reviews_csv)]
    if group != "debug":
        overrides.append("debug=fast_dev_run")
    if group == "debug" and option in ("overfit_batches", "profiler"):
        overrides += ["data=digits", "trainer.max_epochs=2"]
    summary = train_and_test(make_cfg(tmp_path, *overrides))
    assert summary["status"] == "completed"
    assert 0.0 <= summary["test"]["test/acc"] <= 1.0
    assert torch.isfinite(torch.tensor(summary["test"]["test/loss"]))
    assert json.loads((tmp_path / "summary.json").read_text())["num_parameters"] == summary["num_parameters"]


def test_gpu_trainer_without_gpu_is_a_clear_error(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: trainer=gpu is covered by the fast_dev_run test then")
    with pytest.raises(ConfigError, match="trainer=gpu"):
        train_and_test(make_cfg(tmp_path, "trainer=gpu", "debug=fast_dev_run"))
