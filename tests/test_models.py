"""Shapes, activations, norms and init schemes, built from the real config groups."""
from __future__ import annotations

import math

import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from trainlab.config.schema import check
from trainlab.errors import ConfigError
from trainlab.nn.models import hidden_widths, init_weights
from trainlab.run.build import build_net

from conftest import make_cfg


def build(tmp_path, *overrides, features=784, classes=10):
    """The net `python train.py <overrides>` would build, its config checked first as train.py checks it."""
    cfg = make_cfg(tmp_path, *overrides)
    check(cfg)
    return build_net(cfg, features, classes)


@pytest.mark.parametrize(("overrides", "widths"), [
    (["model=hourglass"], [784, 512, 256, 512, 10]),
    (["model=hourglass", "model.depth=5"], [784, 512, 362, 256, 362, 512, 10]),
    (["model=hourglass", "model.depth=1"], [784, 256, 10]),
    (["model=hourglass", "model.depth=4"], [784, 512, 256, 256, 512, 10]),  # even: the bottleneck twice
    (["model=pyramid"], [784, 512, 256, 128, 10]),
    (["model=uniform", "model.width=64", "model.depth=3"], [784, 64, 64, 64, 10]),
    (["model=uniform", "model.depth=0"], [784, 10]),
    (["model=custom", "model.hidden=[1024,64,1024]"], [784, 1024, 64, 1024, 10]),
    (["model=bnnet"], [784, 48, 24, 10]),
])
def test_layer_widths(tmp_path, overrides, widths):
    net = build(tmp_path, *overrides)
    assert net.widths == widths
    assert [m.out_features for m in net if isinstance(m, nn.Linear)] == widths[1:]


def test_bnnet_matches_the_notes(tmp_path):
    net = build(tmp_path, "model=bnnet")
    kinds = [type(m).__name__ for m in net]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d", "ReLU", "Linear"]
    # 784*48+48 + 2*48 + 48*24+24 + 2*24 + 24*10+10
    assert sum(p.numel() for p in net.parameters()) == 39_250
    assert "39,250 parameters" in net.describe()


def test_cli_choice_beats_bnnet_defaults(tmp_path):
    net = build(tmp_path, "model=bnnet", "norm=none", "activation=tanh")
    assert [type(m).__name__ for m in net] == ["Linear", "Tanh", "Linear", "Tanh", "Linear"]


def test_layer_order_norm_activation_dropout(tmp_path):
    net = build(tmp_path, "model=uniform", "model.depth=1", "norm=layer", "activation=leaky_relu", "model.dropout=0.5")
    assert [type(m).__name__ for m in net] == ["Linear", "LayerNorm", "LeakyReLU", "Dropout", "Linear"]


def test_group_norm_groups(tmp_path):
    net = build(tmp_path, "model=uniform", "model.width=32", "model.depth=1", "norm=group", "norm.num_groups=4")
    assert net[1].num_groups == 4
    with pytest.raises(ConfigError, match="norm.num_groups"):
        build(tmp_path, "model=uniform", "model.width=30", "norm=group", "norm.num_groups=4")


def test_batchnorm_worked_example_from_the_notes(tmp_path):
    x = torch.tensor([[-0.6577, -0.5797, 0.6360], [0.7392, 0.2145, 1.523], [0.2432, 0.5662, 0.322]])
    expected = torch.tensor([[-1.3246, -1.3492, -0.3756], [1.0912, 0.3077, 1.3685], [0.2334, 1.0415, -0.9930]])
    batch_norm = instantiate(make_cfg(tmp_path, "norm=batch").norm)(3)
    torch.testing.assert_close(batch_norm(x), expected, atol=1e-4, rtol=0)


def test_swish_beta(tmp_path):
    swish = instantiate(make_cfg(tmp_path, "activation=swish", "activation.beta=2.0").activation)()
    x = torch.linspace(-3, 3, 7)
    torch.testing.assert_close(swish(x), x * torch.sigmoid(2 * x))
    silu = instantiate(make_cfg(tmp_path, "activation=silu").activation)()
    torch.testing.assert_close(silu(x), instantiate(make_cfg(tmp_path, "activation=swish").activation)()(x))


def linear_weights(net):
    return [m.weight for m in net if isinstance(m, nn.Linear)]


def test_zero_and_constant_init_leave_units_identical(tmp_path):
    for overrides in (["init=zeros"], ["init=constant", "init.val=0.3"]):
        net = build(tmp_path, "model=uniform", "model.width=16", *overrides)
        for w in linear_weights(net):
            assert torch.all(w == w.flatten()[0])
        assert all(torch.all(m.bias == 0) for m in net if isinstance(m, nn.Linear))


@pytest.mark.parametrize(("activation", "gain"), [("tanh", 5 / 3), ("sigmoid", 1.0), ("relu", math.sqrt(2))])
def test_xavier_gain_follows_activation(tmp_path, activation, gain):
    torch.manual_seed(0)
    net = build(tmp_path, "model=uniform", "model.width=512", "model.depth=1", "init=xavier_normal",
                f"activation={activation}")
    w = linear_weights(net)[1]  # 512 -> 10
    expected_std = gain * math.sqrt(2 / (512 + 10))
    assert w.std().item() == pytest.approx(expected_std, rel=0.05)


def xavier(gain: float) -> float:
    return gain * math.sqrt(2 / (1000 + 100))  # the std of a 1000 -> 100 layer


def kaiming(gain: float) -> float:
    return gain / math.sqrt(1000)


@pytest.mark.parametrize(("scheme", "activation", "std"), [
    ("xavier_normal", nn.SELU(), xavier(3 / 4)), ("xavier_normal", nn.LeakyReLU(0.3), xavier(math.sqrt(2 / 1.09))),
    ("xavier_normal", nn.ELU(), xavier(1.0)), ("xavier_normal", nn.GELU(), xavier(1.0)),  # torch knows no gain:
    ("xavier_normal", nn.SiLU(), xavier(1.0)), ("xavier_normal", nn.Identity(), xavier(1.0)),  # linear
    ("xavier_normal", None, xavier(1.0)),
    ("kaiming_normal", nn.ReLU(), kaiming(math.sqrt(2))), ("kaiming_normal", nn.LeakyReLU(0.0), kaiming(math.sqrt(2))),
    ("kaiming_normal", nn.LeakyReLU(0.5), kaiming(math.sqrt(2 / (1 + 0.5**2)))),  # Kaiming takes the slope
])
def test_init_gain_follows_the_activation(scheme, activation, std):
    torch.manual_seed(0)
    layer = nn.Linear(1000, 100)
    init_weights(layer, scheme, activation=activation)
    assert layer.weight.std().item() == pytest.approx(std, rel=0.03)


@pytest.mark.parametrize("model", ["hourglass", "pyramid", "uniform", "custom", "bnnet", "text_bow", "text_embed"])
@pytest.mark.parametrize(("scheme", "std"), [
    ("xavier_normal", lambda fan_in, fan_out: 5 / 3 * math.sqrt(2 / (fan_in + fan_out))),  # tanh's gain
    ("kaiming_normal", lambda fan_in, fan_out: math.sqrt(2 / (1 + 0.5**2)) / math.sqrt(fan_in))])  # leaky slope 0.5
def test_init_follows_the_activation_for_every_model(tmp_path, model, scheme, std):
    # text_embed's first module is its pooled embedding: the activation must not be guessed from it.
    leaky = ["activation=leaky_relu", "activation.negative_slope=0.5"]
    activation = ["activation=tanh"] if scheme == "xavier_normal" else leaky
    torch.manual_seed(0)
    net = build(tmp_path, f"model={model}", f"init={scheme}", *activation, features=2000)
    first_hidden = linear_weights(net)[0]
    fan_out, fan_in = first_hidden.shape
    assert first_hidden.std().item() == pytest.approx(std(fan_in, fan_out), rel=0.05)


def test_other_init_schemes(tmp_path):
    eye = linear_weights(build(tmp_path, "model=uniform", "model.width=16", "init=eye"))[1]
    assert torch.equal(eye, torch.eye(16))
    ortho = linear_weights(build(tmp_path, "model=uniform", "model.width=16", "init=orthogonal", "activation=sigmoid"))[1]
    torch.testing.assert_close(ortho @ ortho.T, torch.eye(16), atol=1e-5, rtol=0)
    sparse = linear_weights(build(tmp_path, "model=uniform", "model.width=16", "init=sparse", "init.sparsity=0.5"))[1]
    assert ((sparse == 0).sum(dim=0) == 8).all()
    trunc = linear_weights(build(tmp_path, "init=trunc_normal", "init.a=-0.01", "init.b=0.01"))[0]
    assert trunc.abs().max() <= 0.01
    uniform = linear_weights(build(tmp_path, "init=uniform", "init.a=0.2", "init.b=0.3", "init.bias=0.01"))
    assert all(w.min() >= 0.2 and w.max() <= 0.3 for w in uniform)
    biased = build(tmp_path, "init=normal", "init.bias=0.01")
    assert all(torch.all(m.bias == 0.01) for m in biased if isinstance(m, nn.Linear))


@pytest.mark.parametrize(("overrides", "key"), [
    (["model=uniform", "model.width=0"], "model.width"),
    (["model=uniform", "model.depth=-1"], "model.depth"),
    (["model=hourglass", "model.width=128", "model.bottleneck=512"], "model.bottleneck"),
    (["model=pyramid", "model.width=4", "model.depth=4"], "model.width"),
    (["model=uniform", "model.width=abc"], "model.width"),
    (["model=custom", "model.hidden=[8,0]"], "model.hidden"),
    (["model=uniform", "model.shape=star"], "model.shape"),
])
def test_impossible_shapes(tmp_path, overrides, key):
    with pytest.raises(ConfigError, match=key):
        build(tmp_path, *overrides)


def test_hidden_widths_by_default_are_three_layers_around_256():
    assert hidden_widths("uniform") == [256, 256, 256]
    assert hidden_widths("pyramid") == [256, 128, 64]
    assert hidden_widths("hourglass", width=512) == [512, 256, 512]  # the bottleneck's default


@pytest.mark.parametrize(("kwargs", "widths"), [
    ({"shape": "pyramid", "width": 4, "depth": 3}, [4, 2, 1]),  # halves down to exactly one unit
    ({"shape": "pyramid", "width": 4, "depth": 0}, []),
    ({"shape": "hourglass", "width": 128, "bottleneck": 128}, [128, 128, 128]),  # as wide as width: not inverted
])
def test_shapes_at_their_limits(kwargs, widths):
    assert hidden_widths(**kwargs) == widths


@pytest.mark.parametrize(("kwargs", "key", "message"), [
    ({"shape": "pyramid", "width": 4, "depth": 4}, "model.width",
     "4 cannot halve 3 times; widen it or lower model.depth"),
    ({"shape": "hourglass", "width": 128, "bottleneck": 129}, "model.bottleneck",
     "129 is wider than model.width=128; lower it, or set model.allow_wide_bottleneck=true for an inverted hourglass"),
    ({"shape": "star"}, "model.shape", "unknown shape 'star'; use hourglass, pyramid, uniform, custom"),
])
def test_impossible_shapes_name_their_key_and_fix(kwargs, key, message):
    with pytest.raises(ConfigError) as error:
        hidden_widths(**kwargs)
    assert error.value.key == key and str(error.value) == f"{key}: {message}"


def test_inverted_hourglass_when_asked():
    assert hidden_widths("hourglass", width=64, bottleneck=256, depth=3, allow_wide_bottleneck=True) == [64, 256, 64]


@pytest.mark.parametrize("classes", [2, 5])
def test_epoch_metrics_are_per_sample_means_over_unequal_batches(classes):
    from trainlab.nn.module import Classifier

    torch.manual_seed(0)
    net = nn.Linear(4, 1 if classes == 2 else classes)
    module = Classifier(net, classes, lambda params: torch.optim.SGD(params, lr=0.1))
    x, y = torch.randn(13, 4), torch.randint(0, classes, (13,))
    for rows in (slice(0, 10), slice(10, 13)):  # a full batch and a short last one
        module._step((x[rows], y[rows]), "val")
    values = module._epoch_values("val")
    logits = net(x).detach()
    if classes == 2:
        loss = nn.functional.binary_cross_entropy_with_logits(logits.squeeze(-1), y.float())
        correct = ((logits.squeeze(-1) > 0).long() == y).float().mean()
    else:
        loss, correct = nn.functional.cross_entropy(logits, y), (logits.argmax(1) == y).float().mean()
    assert values["val/loss"] == pytest.approx(loss.item(), rel=1e-6)
    assert values["val/acc"] == pytest.approx(correct.item())
