"""The optim group's optimizer, built with the fastest kernel torch has for the parameters' device.

torch's default step is a Python loop over parameters (CPU) or the `foreach` kernels (CUDA); the
`fused` ones (Adam, AdamW, SGD; CPU, CUDA, MPS) do the whole update in one kernel per dtype and device,
which shortens an epoch wherever the optimizer step is a large part of it (docs/performance.md). An optimizer
without a fused kernel (RMSprop) gets the `foreach` one on the CPU too, which updates all parameters
per operation instead of one at a time. Their results match the default's to float rounding
(tests/test_train.py). A config that sets `fused` or `foreach` itself (`+optim.fused=false`) keeps
its choice.
"""
from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable

import torch

IMPLEMENTATION_KEYS = ("fused", "foreach")


def accepts(factory: Callable[..., torch.optim.Optimizer], implementation: str) -> bool:
    """Whether the optimizer takes `implementation` ("fused" or "foreach") as an argument."""
    target = factory.func if isinstance(factory, functools.partial) else factory
    return implementation in inspect.signature(target).parameters


def build_optimizer(factory: Callable[..., torch.optim.Optimizer], params: Iterable) -> torch.optim.Optimizer:
    """`factory(params)`, with `fused=True` where the optimizer has it, the devices support it and the config is
    silent, else `foreach=True`; half-precision weights get torch's default."""
    params = list(params)
    chosen = isinstance(factory, functools.partial) and any(key in factory.keywords for key in IMPLEMENTATION_KEYS)
    # Half-precision weights (16-true, bf16-true): the fused kernels do the update in float32, torch's loop in the
    # weights' own dtype, so a diverging fp16 run would end differently; those keep torch's loop.
    if chosen or not all(p.dtype in (torch.float32, torch.float64) for p in params):
        return factory(params)
    if accepts(factory, "fused"):
        try:
            return factory(params, fused=True)
        except RuntimeError:  # a device or dtype without a fused kernel: the foreach one
            pass
    return factory(params, foreach=True) if accepts(factory, "foreach") else factory(params)
