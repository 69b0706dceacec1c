"""The type and range of every config key, checked in one pass before anything is built.

`RULES` maps a dotted key (`*` matches one part, `**` any number) to what it accepts; `check` walks the resolved
config and raises one ConfigError naming the first key at fault. A key no rule names is still
checked against the parameters of the object its group builds (`_target_`), so a `+optim.foo=1`
fails here, not as a TypeError inside the library. tests/test_schema.py proves every key of every
shipped option has a rule. Value checks that need the data (a GroupNorm's groups dividing a width,
a pyramid halving too often) stay where the data is known.
"""
from __future__ import annotations

import importlib
import inspect
import re
from functools import cache

from omegaconf import DictConfig, OmegaConf

from trainlab.config.rules import (
    FLAG,
    FOLDER,
    FRACTION,
    NON_NEGATIVE,
    NULL,
    POSITIVE,
    SEED,
    TEXT,
    Either,
    Integer,
    ListOf,
    NamesIn,
    Number,
    OneOf,
    Rule,
)
from trainlab.errors import ConfigError

RULES: dict[str, Rule] = {
    "**._target_": TEXT,
    "**._partial_": FLAG,
    "seed": SEED,
    "replicates": Integer(1),
    "require_varied_splits": FLAG,
    "claims": Rule("a list of claims (see conf/experiment/)", lambda v: isinstance(v, list)),
    "tuned": ListOf(TEXT),
    "resume": Either(NULL, TEXT),
    "ckpt_path": Either(NULL, TEXT),
    "threads": Either(NULL, Integer(1)),
    "print_config": FLAG,
    "optimized_metric": TEXT,
    "lr_find": NULL,  # or the settings below (tune=lr_find)
    "lr_find.min_lr": POSITIVE,
    "lr_find.max_lr": POSITIVE,
    "lr_find.num_training": Integer(1),
    "paths.output_dir": FOLDER,
    # data
    "data.loader.return_X_y": FLAG,
    "data.loader.cache_dir": Either(NULL, TEXT),
    "data.cache_dir": Either(NULL, TEXT),
    "data.scaler": NamesIn("trainlab.nn.data:SCALERS"),
    "data.max_z": Either(NULL, POSITIVE),
    "data.val_fraction": FRACTION,
    "data.test_fraction": FRACTION,
    "data.split_seed": SEED,
    "data.batch_size": Integer(1),
    "data.text_column": TEXT,
    "data.label_column": TEXT,
    "data.feature_columns": Either(NULL, ListOf(TEXT)),
    "data.image_column": TEXT,
    "data.num_classes": Either(NULL, Integer(2)),
    "data.path": TEXT,
    "data.dataset": TEXT,
    "data.num_words": Integer(1),
    "data.max_len": Integer(1),
    # model
    "model.shape": NamesIn("trainlab.nn.models:SHAPES"),
    "model.width": Integer(1),
    "model.bottleneck": Integer(1),
    "model.depth": Integer(0),
    "model.hidden": ListOf(Integer(1)),
    "model.dropout": Number(0, 1, high_open=True),
    "model.allow_wide_bottleneck": FLAG,
    "model.encoder.embedding_dim": Integer(1),
    "model.encoder.pooling": OneOf("mean", "max"),
    # activation, init, norm
    "activation.negative_slope": NON_NEGATIVE,
    "activation.alpha": POSITIVE,
    "activation.beta": POSITIVE,
    "activation.approximate": OneOf("none", "tanh"),
    "init.scheme": NamesIn("trainlab.nn.models:INIT_SCHEMES"),
    "init.mean": Number(),
    "init.std": POSITIVE,
    "init.a": Number(),
    "init.b": Number(),
    "init.val": Number(),
    "init.sparsity": Number(0, 1, high_open=True),
    "init.mode": OneOf("fan_in", "fan_out"),
    "init.bias": Either(NULL, Number()),
    "norm.num_groups": Integer(1),
    "norm.eps": POSITIVE,
    "norm.momentum": Either(NULL, Number(0, 1)),
    "norm.affine": FLAG,
    # optimizer and schedule
    "optim.lr": POSITIVE,
    "optim.weight_decay": NON_NEGATIVE,
    "optim.momentum": Number(0, 1, high_open=True),
    "optim.dampening": Number(0, 1),
    "optim.nesterov": FLAG,
    "optim.eps": POSITIVE,
    "optim.alpha": Number(0, 1, high_open=True),
    "optim.betas": ListOf(Number(0, 1, high_open=True), length=2),
    "optim.amsgrad": FLAG,
    "optim.centered": FLAG,
    "scheduler.step_size": Integer(1),
    "scheduler.gamma": POSITIVE,
    "scheduler.T_max": Integer(1),
    "scheduler.eta_min": NON_NEGATIVE,
    # trainer and precision
    "trainer.accelerator": OneOf("auto", "cpu", "gpu", "cuda", "mps"),
    "trainer.devices": Either(Integer(1), ListOf(Integer(0)), OneOf("auto", -1)),
    "trainer.num_nodes": Integer(1),
    "trainer.strategy": TEXT,  # or, as trainer=ddp has it, a strategy class with its own keys:
    "trainer.strategy.timeout.seconds": POSITIVE,
    "trainer.sync_batchnorm": FLAG,
    "trainer.precision": NamesIn("trainlab.nn.precision:PRECISIONS"),  # conf/precision/ has one file each
    "trainer.max_epochs": Integer(1),
    "trainer.check_val_every_n_epoch": Integer(1),
    "trainer.log_every_n_steps": Integer(1),
    "trainer.num_sanity_val_steps": Integer(-1),
    "trainer.enable_model_summary": FLAG,
    "trainer.deterministic": Either(FLAG, OneOf("warn")),
    "trainer.default_root_dir": FOLDER,
    "trainer.fast_dev_run": Either(FLAG, Integer(1)),
    "trainer.limit_*_batches": Either(NULL, Integer(0), Number(0, 1)),
    "trainer.overfit_batches": Either(Integer(0), Number(0, 1)),
    "trainer.profiler": Either(NULL, OneOf("simple", "advanced", "pytorch")),
    "trainer.gradient_clip_val": Either(NULL, NON_NEGATIVE),
    "trainer.gradient_clip_algorithm": Either(NULL, OneOf("norm", "value")),
    "trainer.accumulate_grad_batches": Integer(1),
    # callbacks
    "callbacks.*": Rule("null (the callback switched off)", lambda v: v is None),
    "callbacks.*.monitor": TEXT,
    "callbacks.*.mode": OneOf("min", "max"),
    "callbacks.*.dirpath": FOLDER,
    "callbacks.*.filename": TEXT,
    "callbacks.early_stopping.patience": Integer(0),
    "callbacks.early_stopping.min_delta": NON_NEGATIVE,
    "callbacks.model_checkpoint.save_top_k": Integer(-1),
    "callbacks.model_checkpoint.save_last": FLAG,
    "callbacks.model_checkpoint.auto_insert_metric_name": FLAG,
    "callbacks.lr_monitor.logging_interval": Either(NULL, OneOf("step", "epoch")),
    "callbacks.progress_bar.refresh_rate": Integer(0),
    "callbacks.fit_verdict.underfit_acc": Number(0, 1),
    "callbacks.fit_verdict.overfit_gap": Number(0, 1),
    "callbacks.fit_verdict.turn_tolerance": NON_NEGATIVE,
    "callbacks.gradient_flow.every_n_steps": Integer(1),
    "callbacks.gradient_flow.vanishing_ratio": Number(1),
    "callbacks.gradient_flow.exploding_norm": POSITIVE,
    "callbacks.nan_guard.every_n_steps": Either(NULL, Integer(1)),
    # loggers
    "logger.*": Rule("null (the logger switched off)", lambda v: v is None),
    "logger.*.save_dir": FOLDER,
    "logger.*.name": Either(NULL, TEXT),
    "logger.*.version": Either(NULL, TEXT, Integer(0)),
    "logger.wandb.project": TEXT,
    "logger.wandb.mode": OneOf("online", "offline", "disabled"),
    "logger.wandb.group": Either(NULL, TEXT),
    "logger.wandb.job_type": Either(NULL, TEXT),
    "logger.mlflow.experiment_name": TEXT,
    "logger.mlflow.run_name": Either(NULL, TEXT),
    "logger.mlflow.tracking_uri": Either(NULL, TEXT),
}


@cache  # built on first use, not at import, where `make mutation` could not reach it
def _regex(pattern: str) -> re.Pattern:
    parts = (".*" if part == "**" else re.escape(part).replace(r"\*", "[^.]+") for part in pattern.split("."))
    return re.compile(r"\.".join(parts))


def rule_for(key: str) -> Rule | None:
    """The first rule whose pattern matches the whole key."""
    return next((rule for pattern, rule in RULES.items() if _regex(pattern).fullmatch(key)), None)


def _leaves(node, prefix: str = ""):
    if isinstance(node, dict):
        for name, value in node.items():
            yield from _leaves(value, f"{prefix}{name}.")
    else:
        yield prefix[:-1], node


def check_replicates(replicates) -> int:
    """`replicates` is a count of runs per setting: an integer >= 1."""
    if not RULES["replicates"].accepts(replicates):
        raise ConfigError("replicates", f"must be an integer >= 1 (runs per setting, one seed each), got {replicates!r}")
    return replicates


# Parameters trainlab passes itself when it builds a group's object, and where the value comes from.
SUPPLIED = {
    "data": {"shuffle_seed": "seed", "inputs": "the model's encoder"},
    "model": {"in_features": "the data (its feature count)", "out_features": "the data (its class count)",
              "activation": "the activation group", "norm": "the norm group"},
    "model.encoder": {"num_words": "the data (data.num_words)"},
    "norm": {"num_features": "the layer width"},
    "optim": {"params": "the model"},
    "scheduler": {"optimizer": "optim"},
    "trainer": {"callbacks": "the callbacks group", "logger": "the logger group",
                "enable_checkpointing": "the callbacks group"},
}


def check(cfg: DictConfig) -> None:
    """Raise a ConfigError for the first key of `cfg` whose value its rule refuses, or that nothing accepts."""
    missing = sorted(k for k in OmegaConf.missing_keys(cfg) if not k.startswith("hydra"))
    if missing:
        raise ConfigError(missing[0], f"has no value and needs one: add {missing[0]}=... to the command line")
    resolved = OmegaConf.to_container(cfg, resolve=True)
    resolved.pop("hydra", None)
    # A user's own net (model._target_) has its own keys: the MLP's model.* rules are not theirs.
    own_net = "_target_" in (resolved.get("model") or {})
    # seed first: data.split_seed follows it, and a bad seed is what the user typed.
    for key, value in sorted(_leaves(resolved), key=lambda leaf: leaf[0] != "seed"):
        rule = None if own_net and key.startswith("model.") else rule_for(key)
        if rule is not None and not rule.accepts(value):
            raise ConfigError(key, f"must be {rule.describe}, got {value!r}")
    for group, node in resolved.items():
        _check_parameters(group, node)
    _check_init(resolved.get("init") or {})
    _check_model(resolved.get("model") or {}, resolved.get("norm"))
    optim = resolved.get("optim") or {}
    if optim.get("nesterov") and not optim.get("momentum"):
        raise ConfigError("optim.momentum", "nesterov momentum needs optim.momentum > 0; raise it, or optim.nesterov=false")


def _parameters(key: str, target: str) -> set[str] | None:
    """The keyword parameters `target` takes, or None when it takes anything (**kwargs).

    trainlab's own classes pass their **kwargs on to their parent's __init__, whose parameters count too.
    """
    module, _, name = target.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as error:
        raise ConfigError(key, f"cannot import {target!r} ({error}); check its spelling, and that its module is "
                          "importable here (installed, or its folder on PYTHONPATH)") from None
    own = inspect.isclass(obj) and obj.__module__.startswith("trainlab.")
    known: set[str] = set()
    for each in obj.__mro__ if own else (obj,):
        try:
            parameters = inspect.signature(each.__init__ if own else each).parameters.values()
        except (ValueError, TypeError):
            return None
        known |= {p.name for p in parameters if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)} - {"self"}
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            return known
    return None


def _check_parameters(prefix: str, node) -> None:
    """Every key of a node Hydra instantiates must be a parameter of its `_target_`."""
    if not isinstance(node, dict):
        return
    for name, value in node.items():
        _check_parameters(f"{prefix}.{name}", value)
    if "_target_" not in node:
        return
    supplied = sorted(set(node) & set(SUPPLIED.get(prefix, {})))
    if supplied:
        raise ConfigError(f"{prefix}.{supplied[0]}", f"is set by trainlab from {SUPPLIED[prefix][supplied[0]]}; "
                          "leave it out of the config")
    known = _parameters(f"{prefix}._target_", node["_target_"])
    if known is not None:
        known -= set(SUPPLIED.get(prefix, {}))
    extra = sorted(k for k in node if not k.startswith("_") and known is not None and k not in known)
    if extra:
        raise ConfigError(f"{prefix}.{extra[0]}", f"not a parameter of {node['_target_']}; "
                          f"it takes {', '.join(sorted(known - {'self'})) or 'none'}")


def _check_init(init: dict) -> None:
    from trainlab.nn.models import init_parameters, set_by_activation  # torch is loaded by then anyway

    scheme = init.get("scheme", "default")
    defaults = init_parameters(scheme)
    extra = sorted(set(init) - {"scheme", "bias"} - set(defaults))
    derived = [key for key in extra if key in set_by_activation(scheme)]
    if derived:
        raise ConfigError(f"init.{derived[0]}", f"init={scheme} takes it from the activation group (activation=...), "
                          "not from init")
    if extra:
        raise ConfigError(f"init.{extra[0]}", f"init={scheme} does not take it; it takes "
                          f"{', '.join(sorted({*defaults, 'bias'}))}")
    if {"a", "b"} <= set(defaults):
        low, high = (init.get(k, defaults[k]) for k in ("a", "b"))
        if low >= high:
            raise ConfigError("init.b", f"must be above init.a={low} (the range to draw from), got {high}")


def _check_model(model: dict, norm: dict | None) -> None:
    from trainlab.nn.models import MODEL_KEYS

    if "_target_" in model:  # the user's own nn.Module: its keys were checked against its signature
        _check_own_net(model["_target_"], norm)
        return
    extra = sorted(set(model) - MODEL_KEYS)
    if extra:
        raise ConfigError(f"model.{extra[0]}", f"not a model setting; known: {', '.join(sorted(MODEL_KEYS))}")


def _check_own_net(target: str, norm: dict | None) -> None:
    """A user's net takes the sizes trainlab supplies, and a norm factory if the norm group picks one."""
    takes = _parameters("model._target_", target)
    if takes is None:  # **kwargs: it takes anything
        return
    lacking = [name for name in ("in_features", "out_features") if name not in takes]
    if lacking:
        raise ConfigError("model._target_", f"{target} must take in_features and out_features (the input and output "
                          f"sizes trainlab passes, as torch's nn.Linear names them); it lacks {', '.join(lacking)}")
    if norm and "norm" not in takes:
        raise ConfigError("norm", f"{target} takes no `norm` factory, so norm={norm['_target_'].rsplit('.', 1)[-1]} "
                          "would not reach it: use norm=none, or give it a norm parameter (norm(num_features) -> module)")
