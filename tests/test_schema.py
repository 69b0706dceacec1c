"""Every key of every shipped config option has a type and range (trainlab.schema), and each is enforced."""
from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from trainlab.build import CONF
from trainlab.errors import ConfigError
from trainlab.models import BYTES_PER_VALUE
from trainlab.schema import check, rule_for

from conftest import make_cfg

GROUPS = sorted(p.name for p in CONF.iterdir() if p.is_dir())
OPTIONS = [(group, option.stem) for group in GROUPS for option in sorted((CONF / group).glob("*.yaml"))]


def leaf_keys(node, prefix=""):
    if isinstance(node, dict):
        for name, value in node.items():
            yield from leaf_keys(value, f"{prefix}{name}.")
    else:
        yield prefix[:-1]


def composed(tmp_path: Path, group: str, option: str):
    extra = ["data.path=reviews.csv"] if option == "text_files" else []
    return make_cfg(tmp_path, f"{group}={option}", *extra)


@pytest.mark.parametrize(("group", "option"), OPTIONS)
def test_every_key_of_every_option_has_a_rule_and_passes_it(tmp_path, group, option):
    cfg = composed(tmp_path, group, option)
    container = OmegaConf.to_container(cfg, resolve=False)
    container.pop("hydra", None)
    missing = [key for key in leaf_keys(container) if rule_for(key) is None]
    assert missing == []
    check(cfg)  # the shipped values themselves are within their rules


def test_precision_options_are_the_precisions_trainlab_estimates():
    assert {p.stem for p in (CONF / "precision").glob("*.yaml")} == set(BYTES_PER_VALUE)


@pytest.mark.parametrize(("overrides", "key", "says"), [
    (["init=normal", "init.std=-1"], "init.std", "must be a number > 0, got -1"),
    (["init=bogus_scheme"], "init", None),
    (["init=normal", "init.scheme=bogus"], "init.scheme", "must be one of default, zeros"),
    (["init=kaiming_normal", "+init.nonlinearity=tanh"], "init.nonlinearity", "the activation"),
    (["activation=gelu", "+activation.approximate=fast"], "activation.approximate", "one of none, tanh"),
    (["trainer.devices=0"], "trainer.devices", "an integer >= 1"),
    (["logger=wandb", "logger.mode=cloud"], "logger.mode", "one of online, offline, disabled"),
    (["+trainer.colour=red"], "trainer.colour", "not a parameter of lightning.pytorch.Trainer"),
    (["model=text_embed", "model.encoder.pooling=median"], "model.encoder.pooling", "one of mean, max"),
    (["seed=-1"], "seed", "an integer in [0, 4294967295]"),
    (["data.split_seed=-1"], "data.split_seed", "an integer in [0, 4294967295]"),
    (["data=bbc_news", "model=text_bow", "+model.encoder.num_words=5"], "model.encoder.num_words", "data.num_words"),
    (["+data.colour=1"], "data.colour", "not a parameter of trainlab.data.ArrayDataModule"),
    (["optim._target_=torch.optim.Adamm"], "optim._target_", "cannot import"),
    (["data=text_files"], "data.path", "needs one"),
    (["optim=momentum", "optim.momentum=0"], "optim.momentum", "nesterov"),
])
def test_wrong_values_anywhere_are_one_config_error(tmp_path, overrides, key, says):
    if says is None:  # an unknown option is Hydra's to refuse, at composition
        with pytest.raises(Exception, match="bogus_scheme"):
            make_cfg(tmp_path, *overrides)
        return
    with pytest.raises(ConfigError, match=key) as error:
        check(make_cfg(tmp_path, *overrides))
    assert says in str(error.value)
