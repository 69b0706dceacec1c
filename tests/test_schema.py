"""Every key of every shipped config option has a type and range (trainlab.config.schema), and each is enforced."""
from __future__ import annotations

import re
from functools import partial
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from trainlab import CONF
from trainlab.config.rules import NULL, TEXT, Either, Integer, ListOf, NamesIn, Number, OneOf, Rule
from trainlab.config.schema import check, check_replicates, rule_for
from trainlab.errors import ConfigError
from trainlab.nn.precision import PRECISIONS

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
    extra = ["data.path=reviews.csv"] if option in ("text_files", "table") else []
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
    assert {p.stem for p in (CONF / "precision").glob("*.yaml")} == set(PRECISIONS)


@pytest.mark.parametrize(("overrides", "key", "says"), [
    (["init=normal", "init.std=-1"], "init.std", "must be a number > 0, got -1"),
    (["init=bogus_scheme"], "init", None),
    (["init=normal", "init.scheme=bogus"], "init.scheme", "must be one of default, zeros"),
    (["init=kaiming_normal", "+init.nonlinearity=tanh"], "init.nonlinearity", "the activation"),
    (["init=kaiming_normal", "+init.gain=2"], "init.gain", "init=kaiming_normal takes it from the activation group"),
    (["init=xavier_normal", "+init.gain=2"], "init.gain", "init=xavier_normal takes it from the activation group"),
    (["activation=gelu", "+activation.approximate=fast"], "activation.approximate", "one of none, tanh"),
    (["trainer.devices=0"], "trainer.devices", "an integer >= 1"),
    (["logger=wandb", "logger.wandb.mode=cloud"], "logger.wandb.mode", "one of online, offline, disabled"),
    (["logger=mlflow", "logger.mlflow.experiment_name=3"], "logger.mlflow.experiment_name", "a string"),
    (["+trainer.colour=red"], "trainer.colour", "not a parameter of lightning.pytorch.Trainer"),
    (["model=text_embed", "model.encoder.pooling=median"], "model.encoder.pooling", "one of mean, max"),
    (["seed=-1"], "seed", "an integer in [0, 4294967295]"),
    (["data.split_seed=-1"], "data.split_seed", "an integer in [0, 4294967295]"),
    (["data=bbc_news", "model=text_bow", "+model.encoder.num_words=5"], "model.encoder.num_words", "data.num_words"),
    (["+data.colour=1"], "data.colour", "not a parameter of trainlab.nn.data.ArrayDataModule"),
    (["+data.self=1"], "data.self", "not a parameter of trainlab.nn.data.ArrayDataModule"),  # `self` is no parameter
    (["+optim.self=1"], "optim.self", "not a parameter of torch.optim.Adam"),
    (["+data.loader.colour=1"], "data.loader.colour", "not a parameter of trainlab.nn.data.load_mnist_5k"),  # a function
    (["+model.colour=1", "+model.alpha=1"], "model.alpha", "not a model setting; known: allow_wide_bottleneck, bottleneck"),
    (["optim._target_=torch.optim.Adamm"], "optim._target_", "cannot import"),
    (["data=text_files"], "data.path", "needs one"),
    (["optim=momentum", "optim.momentum=0"], "optim.momentum",
     "nesterov momentum needs optim.momentum > 0; raise it, or optim.nesterov=false"),
])
def test_wrong_values_anywhere_are_one_config_error(tmp_path, overrides, key, says):
    if says is None:  # an unknown option is Hydra's to refuse, at composition
        with pytest.raises(Exception, match="bogus_scheme"):
            make_cfg(tmp_path, *overrides)
        return
    with pytest.raises(ConfigError) as error:
        check(make_cfg(tmp_path, *overrides))
    assert error.value.key == key and says in str(error.value)


def test_nesterov_with_momentum_is_accepted(tmp_path):
    check(make_cfg(tmp_path, "optim=momentum", "optim.nesterov=true", "optim.momentum=0.5"))


def test_values_are_checked_as_resolved(tmp_path):
    with pytest.raises(ConfigError) as error:
        check(make_cfg(tmp_path, "+smallest=-5", "data.batch_size=${smallest}"))
    assert str(error.value) == "data.batch_size: must be an integer >= 1, got -5"


@pytest.mark.parametrize(("init", "says"), [
    ({"std": 1.0}, "init.std: init=default does not take it; it takes bias"),  # no scheme key: the default's
    ({"scheme": "normal", "a": 0}, "init.a: init=normal does not take it; it takes bias, mean, std"),
    ({"scheme": "kaiming_normal", "gain": 2},
     "init.gain: init=kaiming_normal takes it from the activation group (activation=...), not from init"),
    ({"scheme": "uniform", "a": 1, "b": 1}, "init.b: must be above init.a=1 (the range to draw from), got 1"),
    ({"scheme": "uniform", "b": -1}, "init.b: must be above init.a=0.0 (the range to draw from), got -1"),  # a's default
])
def test_init_checks_say_in_full_what_is_wrong(init, says):
    from trainlab.config.schema import _check_init

    with pytest.raises(ConfigError) as error:
        _check_init(init)
    assert str(error.value) == says


@pytest.mark.parametrize(("prefix", "node", "says"), [
    ("data", {"_target_": "trainlab.nn.data.ArrayDataModule", "shuffle_seed": 1},
     "data.shuffle_seed: is set by trainlab from seed; leave it out of the config"),
    # The keys trainlab sets itself (shuffle_seed, inputs) are not offered.
    ("data", {"_target_": "trainlab.nn.data.ArrayDataModule", "colour": 1}, "data.colour: not a parameter of "
     "trainlab.nn.data.ArrayDataModule; it takes batch_size, cache_dir, dataset, feature_columns, image_column, "
     "label_column, loader, max_z, path, scaler, split_seed, test_fraction, val_fraction"),
    ("x", {"_target_": "os.getcwd", "colour": 1}, "x.colour: not a parameter of os.getcwd; it takes none"),
])
def test_keys_a_target_does_not_take_are_named_with_what_it_takes(prefix, node, says):
    from trainlab.config.schema import _check_parameters

    with pytest.raises(ConfigError) as error:
        _check_parameters(prefix, node)
    assert str(error.value) == says


# Rules are built in the test body (partial), not at collection: `make mutation` only sees code that runs in a test.
INT1, INT03, UNIT = partial(Integer, 1), partial(Integer, 0, 3), partial(Number, 0, 1)


@pytest.mark.parametrize(("make", "value", "accepted"), [
    (INT1, 1, True), (INT1, 0, False), (INT1, True, False), (INT1, 1.0, False), (partial(Integer), -5, True),
    (INT03, 3, True), (INT03, 4, False), (INT03, -1, False),
    (UNIT, 0, True), (UNIT, 1, True), (UNIT, 1.01, False), (UNIT, -0.01, False),
    (partial(Number, 0, 1, low_open=True), 0, False), (partial(Number, 0, 1, high_open=True), 1, False),
    (partial(Number, 0, 1, high_open=True), 0.99, True), (partial(Number, 0, low_open=True), 1e-12, True),
    (partial(Number), float("inf"), False), (partial(Number), float("nan"), False), (partial(Number), False, False),
    (partial(Number), "1", False), (partial(Number, high=2), -1e9, True), (partial(Number, high=2), 2.5, False),
    (partial(OneOf, "a", 2), 2, True), (partial(OneOf, "a", 2), "b", False),
    (partial(Either, NULL, Integer(0)), None, True), (partial(Either, NULL, Integer(0)), 3, True),
    (partial(Either, NULL, Integer(0)), -3, False),
    (partial(ListOf, Integer(1)), [1, 2], True), (partial(ListOf, Integer(1)), [1, 0], False),
    (partial(ListOf, Integer(1)), (1, 2), False), (partial(ListOf, Integer(1)), [], True),
    (partial(ListOf, Integer(1), length=2), [1, 2], True), (partial(ListOf, Integer(1), length=2), [1], False),
    (partial(NamesIn, "trainlab.nn.data:SCALERS"), "minmax", True),
    (partial(NamesIn, "trainlab.nn.data:SCALERS"), "z", False),
    (partial(Rule, "even", lambda v: v % 2 == 0), 4, True),
])
def test_each_rule_accepts_exactly_its_values(make, value, accepted):
    assert make().accepts(value) is accepted


@pytest.mark.parametrize(("make", "described"), [
    (partial(Integer), "an integer"), (INT1, "an integer >= 1"), (INT03, "an integer in [0, 3]"),
    (partial(Number), "a finite number"), (partial(Number, 0), "a number >= 0"),
    (partial(Number, 0, low_open=True), "a number > 0"), (UNIT, "a number in [0, 1]"),
    (partial(Number, 0, 1, low_open=True, high_open=True), "a number in (0, 1)"),
    (partial(Number, 0.5, 1e-3, high_open=True), "a number in [0.5, 0.001)"),
    (partial(OneOf, "step", 1), "one of step, 1"), (partial(Either, NULL, TEXT), "null or a string"),
    (partial(ListOf, Integer(1)), "a list of values, each an integer >= 1"),
    (partial(ListOf, Number(), length=2), "a list of 2 values, each a finite number"),
    (partial(NamesIn, "trainlab.nn.data:SCALERS"), "one of global, standard, minmax, none"),
    (partial(Rule, "even", lambda v: v % 2 == 0), "even"),
])
def test_each_rule_says_what_it_accepts(make, described):
    assert make().describe == described


def test_keys_match_their_pattern_whole_and_in_order():
    assert rule_for("optim.lr").describe == "a number > 0"
    assert rule_for("xoptim.lr") is None and rule_for("optim.lrx") is None  # whole keys, not substrings
    assert rule_for("optim._target_") is rule_for("callbacks.early_stopping._target_")  # ** spans parts
    assert rule_for("callbacks.nan_guard.every_n_steps").accepts(None)


@pytest.mark.parametrize("replicates", [0, -1, 2.0, True, "3", None])
def test_replicates_must_be_a_positive_integer(replicates):
    with pytest.raises(ConfigError, match=r"^replicates: must be an integer >= 1 \(runs per setting, one seed each\), "
                                          rf"got {re.escape(repr(replicates))}$"):
        check_replicates(replicates)
    assert check_replicates(3) == 3
