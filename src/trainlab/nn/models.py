"""Plain `nn.Module` networks: hidden-layer shapes, activations, normalisation and weight init."""
from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
from torch import nn

from trainlab.errors import ConfigError
from trainlab.nn.precision import PRECISIONS


# pragma: no mutate start (make mutation: nn.Module plumbing, tested by training, not pure logic)
class Swish(nn.Module):
    """x * sigmoid(beta * x); beta=1 is SiLU."""

    def __init__(self, beta: float = 1.0):
        super().__init__()
        self.beta = beta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.beta * x)


class GroupNorm1d(nn.GroupNorm):
    """GroupNorm called like the other norms, with the feature count first."""

    def __init__(self, num_features: int, num_groups: int = 8):
        if num_features % num_groups:
            raise ConfigError("norm.num_groups", f"{num_groups} does not divide the hidden width {num_features}")
        super().__init__(num_groups, num_features)

# pragma: no mutate end


# `model.shape`'s names: the schema, hidden_widths and the docs (tests/test_docs.py) read this one list.
SHAPES = {"hourglass": "narrows from width to bottleneck in the middle, then widens again",
          "pyramid": "halves width at each of depth layers", "uniform": "depth layers of width",
          "custom": "the widths in hidden"}


def hidden_widths(shape: str, width: int = 256, depth: int = 3, bottleneck: int = 256,
                  hidden: list[int] | None = None, allow_wide_bottleneck: bool = False) -> list[int]:
    """Hidden-layer widths for a named shape (`depth` hidden layers; `custom` takes `hidden`).

    Types and ranges are trainlab.config.schema's; what depends on several values is checked here.
    """
    if shape == "custom":
        return list(hidden or [])
    if shape == "uniform":
        return [width] * depth
    if shape == "pyramid":
        if depth and width >> (depth - 1) < 1:
            raise ConfigError("model.width", f"{width} cannot halve {depth - 1} times; widen it or lower model.depth")
        return [width >> i for i in range(depth)]
    if shape == "hourglass":
        if bottleneck > width and not allow_wide_bottleneck:
            raise ConfigError("model.bottleneck", f"{bottleneck} is wider than model.width={width}; "
                              "lower it, or set model.allow_wide_bottleneck=true for an inverted hourglass")
        if depth == 0:
            return []
        # Geometric steps from width down to the bottleneck in the middle, mirrored back up.
        half = (depth + 1) // 2
        steps = max(half - 1, 1)
        down = [round(width * (bottleneck / width) ** (i / steps)) for i in range(half)] if half > 1 else [bottleneck]
        return down + down[: depth - half][::-1]
    raise ConfigError("model.shape", f"unknown shape {shape!r}; use {', '.join(SHAPES)}")


class MLP(nn.Sequential):  # pragma: no mutate block
    """Linear -> [norm] -> activation -> [dropout] per hidden layer, then a Linear output layer."""

    def __init__(self, in_features: int, num_classes: int, widths: list[int],
                 activation: Callable[[], nn.Module], norm: Callable[[int], nn.Module] | None = None,
                 dropout: float = 0.0, encoder: nn.Module | None = None):
        layers: list[nn.Module] = [encoder] if encoder is not None else []
        for fan_in, fan_out in zip([in_features, *widths], widths, strict=False):
            layers.append(nn.Linear(fan_in, fan_out))
            if norm is not None:
                layers.append(norm(fan_out))
            layers.append(activation())
            if dropout:
                layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(widths[-1] if widths else in_features, num_classes))
        super().__init__(*layers)
        self.widths = [in_features, *widths, num_classes]

    def describe(self) -> str:
        prefix = self[0].describe() if hasattr(self[0], "describe") else ""  # a text encoder says what it reads
        return f"{prefix}MLP {'-'.join(map(str, self.widths))}: {count_parameters(self):,} parameters"


def _gain_name(activation: nn.Module) -> tuple[str, float | None]:
    """The name torch.nn.init.calculate_gain knows for this activation ('linear' if none)."""
    if isinstance(activation, nn.LeakyReLU):
        return "leaky_relu", activation.negative_slope
    for cls, name in ((nn.Sigmoid, "sigmoid"), (nn.Tanh, "tanh"), (nn.ReLU, "relu"), (nn.SELU, "selu")):
        if isinstance(activation, cls):
            return name, None
    return "linear", None


# torch.nn.init functions by scheme name; None keeps torch's own default init of each layer.
INIT_SCHEMES: dict[str, Callable[..., object] | None] = {
    "default": None,
    "zeros": nn.init.zeros_,
    "constant": nn.init.constant_,
    "uniform": nn.init.uniform_,
    "normal": nn.init.normal_,
    "trunc_normal": nn.init.trunc_normal_,
    "sparse": nn.init.sparse_,
    "xavier_uniform": nn.init.xavier_uniform_,
    "xavier_normal": nn.init.xavier_normal_,
    "kaiming_uniform": nn.init.kaiming_uniform_,
    "kaiming_normal": nn.init.kaiming_normal_,
    "orthogonal": nn.init.orthogonal_,
    "eye": nn.init.eye_,
}


def set_by_activation(scheme: str) -> set[str]:
    """Parameters the activation decides: the gain, and Kaiming's nonlinearity and negative slope."""
    return {"gain", "nonlinearity", "a"} if scheme.startswith("kaiming") else {"gain"}


def init_parameters(scheme: str) -> dict[str, object]:
    """The parameters a config may set for `scheme`, with torch's defaults."""
    function = INIT_SCHEMES[scheme]
    if function is None:
        return {}
    fixed = {"tensor", "generator", *set_by_activation(scheme)}
    return {p.name: p.default for p in inspect.signature(function).parameters.values() if p.name not in fixed}


def init_weights(net: nn.Module, scheme: str, bias: float | None = None, activation: nn.Module | None = None,
                 **params) -> None:
    """Initialise every Linear layer of `net` with a torch.nn.init scheme via `module.apply`.

    `activation` (the hidden layers' nonlinearity) sets Xavier's and orthogonal's gain and Kaiming's
    nonlinearity; None means linear.
    """
    function = INIT_SCHEMES[scheme]
    name, slope = _gain_name(activation) if activation is not None else ("linear", None)
    derived = {"gain": nn.init.calculate_gain(name, slope)}
    if name in ("relu", "leaky_relu"):  # Kaiming takes the nonlinearity itself, for the ReLU family only
        derived |= {"nonlinearity": name, "a": slope or 0}
    if function is not None:
        accepted = inspect.signature(function).parameters
        params |= {k: v for k, v in derived.items() if k in accepted and k in set_by_activation(scheme)}

    def apply(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            with torch.no_grad():
                if function is not None:
                    function(module.weight, **params)
                if bias is not None and module.bias is not None:
                    nn.init.constant_(module.bias, bias)

    net.apply(apply)


# pragma: no mutate block (the rest: building and sizing, tested by training)
def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


MODEL_KEYS = {"dropout", "encoder", *inspect.signature(hidden_widths).parameters}


def build_mlp(in_features: int, num_outputs: int, model_cfg: dict, activation: Callable[[], nn.Module],
              norm: Callable[[int], nn.Module] | None, init_cfg: dict, encoder: nn.Module | None = None) -> MLP:
    """An MLP from the `model`, `activation`, `norm` and `init` groups.

    An `encoder` (a text net's first module, trainlab.nn.text) comes first; `in_features` is then its output size.
    """
    shape_keys = {k: v for k, v in model_cfg.items() if k not in ("dropout", "encoder")}
    net = MLP(in_features, num_outputs, hidden_widths(**shape_keys), activation, norm,
              model_cfg.get("dropout", 0.0), encoder)
    init_weights(net, activation=activation(), **init_cfg)
    return net


def build_own_net(net_class: Callable[..., nn.Module], in_features: int, num_outputs: int,
                  activation: Callable[[], nn.Module], norm: Callable[[int], nn.Module] | None, init_cfg: dict,
                  **params) -> nn.Module:
    """A user's own `nn.Module` (a `model` option with a `_target_`), given the sizes as torch's layers name them.

    It gets the activation and norm factories when its signature takes `activation` / `norm`; the init group
    then initialises its Linear layers as it does an MLP's.
    """
    takes = inspect.signature(net_class).parameters
    given = {"activation": activation, "norm": norm}
    try:
        net = net_class(in_features=in_features, out_features=num_outputs, **params,
                        **{name: value for name, value in given.items() if name in takes})
    except (TypeError, ValueError) as error:  # most often a model key of the wrong type or size
        shown = ", ".join(f"{k}={v!r}" for k, v in params.items())
        raise ConfigError("model", f"{net_class.__module__}.{net_class.__qualname__}({shown}) refused its settings: "
                          f"{type(error).__name__}: {error}") from error
    init_weights(net, activation=activation(), **init_cfg)
    return net


def describe(net: nn.Module) -> str:
    """One line naming the net and its size; trainlab's MLP says its widths."""
    own = getattr(net, "describe", None)
    return own() if callable(own) else f"{type(net).__name__}: {count_parameters(net):,} parameters"


OPTIMIZER_STATES = {"Adam": 2, "AdamW": 2, "RMSprop": 1, "SGD": 0}  # values kept per parameter


def estimate_memory(net: nn.Module, sample: torch.Tensor, optimizer: torch.optim.Optimizer, precision: str,
                    batch_size: int) -> dict[str, float]:
    """The notes' estimate: parameters x bytes per value (+ gradients, optimizer state) + activations x batch.

    Mixed precision keeps fp32 weights but computes (and stores activations) in 16 bits.
    `sample` is one input row.
    """
    param_bytes, activation_bytes = PRECISIONS[precision].weight_bytes, PRECISIONS[precision].activation_bytes
    params = count_parameters(net)
    states = OPTIMIZER_STATES.get(type(optimizer).__name__, 0)
    if states == 0 and any(g.get("momentum") for g in optimizer.param_groups):
        states = 1  # SGD with momentum keeps one buffer
    outputs: list[int] = []  # values each leaf module outputs for one sample
    leaves = [m for m in net.modules() if not list(m.children())]
    # A module that hands its input on (text's MultiHot) stores nothing of its own.
    hooks = [m.register_forward_hook(lambda _m, inputs, out: outputs.append(0 if out is inputs[0] else out[0].numel()))
             for m in leaves]
    try:
        with torch.no_grad():
            net.eval()(sample)
    finally:
        net.train()
        for hook in hooks:
            hook.remove()
    per_sample = sum(outputs)
    mb = 1024**2
    estimate = {
        "parameters_mb": params * param_bytes / mb,
        "gradients_mb": params * param_bytes / mb,
        "optimizer_state_mb": states * params * param_bytes / mb,
        "activations_mb": per_sample * batch_size * activation_bytes / mb,
    }
    estimate["total_mb"] = sum(estimate.values())
    return {k: round(v, 3) for k, v in estimate.items()}
