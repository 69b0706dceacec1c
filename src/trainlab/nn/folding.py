"""trainlab's own callbacks folded into one Lightning callback, and every callback's idle hooks skipped."""
from __future__ import annotations

import lightning as L

from trainlab.nn.checkpoints import InterruptCheckpoint
from trainlab.nn.diagnostics import Diagnostic, NaNGuard

# Lightning hooks a callback may define; state_dict/load_state_dict stay with callbacks that keep state.
HOOKS = tuple(name for name in vars(L.Callback) if name.startswith("on_") or name in ("setup", "teardown"))
# Those Lightning calls only where they are callable (trainer/call.py: _call_callback_hooks); the checkpoint
# hooks it calls on every callback unconditionally.
SKIPPABLE = tuple(hook for hook in HOOKS if hook not in ("on_save_checkpoint", "on_load_checkpoint"))


def defines(callback: L.Callback, hook: str) -> bool:
    """Whether the callback's class has its own `hook`, rather than Lightning's no-op."""
    return getattr(type(callback), hook) is not getattr(L.Callback, hook)


def skip_idle_hooks(callback: L.Callback) -> L.Callback:
    """`callback`, its hooks that are still Lightning's no-ops set to None on the instance, so Lightning skips them.

    Lightning calls every hook of every callback, each inside a profiler span named by the callback's state key
    (ModelCheckpoint and EarlyStopping build theirs with repr() each time), several hooks a step.
    """
    for hook in SKIPPABLE:
        if not defines(callback, hook):
            setattr(callback, hook, None)
    return callback


class OwnCallbacks(L.Callback):
    """trainlab's own callbacks (diagnostics, NaN guard, interrupt checkpoint) as one Lightning callback.

    Lightning calls every hook of every callback at every step, so each separate callback adds its dispatch cost
    to every step (docs/performance.md measures it). This one calls a hook only on the members that define it,
    in their order, and a hook none defines is None, which Lightning skips (see skip_idle_hooks).
    """

    def __init__(self, members: list[L.Callback]):
        self.members = members
        self.defined = {hook: [getattr(m, hook) for m in members if defines(m, hook)] for hook in HOOKS}
        for hook in SKIPPABLE:
            if not self.defined[hook]:
                setattr(self, hook, None)


def _dispatch(hook: str):
    def call(self, *args, **kwargs) -> None:
        for method in self.defined[hook]:
            method(*args, **kwargs)
    call.__name__ = call.__qualname__ = hook
    return call


for _hook in HOOKS:
    setattr(OwnCallbacks, _hook, _dispatch(_hook))


def fold_own(callbacks: list[L.Callback]) -> list[L.Callback]:
    """`callbacks` with trainlab's own ones replaced by one OwnCallbacks where the first of them stood, and
    every one's idle hooks skipped."""
    own = [c for c in callbacks if isinstance(c, (Diagnostic, NaNGuard, InterruptCheckpoint))]
    if own:
        first = callbacks.index(own[0])
        others = [c for c in callbacks if c not in own]
        callbacks = [*others[:first], OwnCallbacks(own), *others[first:]]
    return [skip_idle_hooks(c) for c in callbacks]


def unfolded(callbacks: list[L.Callback]) -> list[L.Callback]:
    """A Trainer's callbacks with OwnCallbacks' members in its place."""
    return [m for c in callbacks for m in (c.members if isinstance(c, OwnCallbacks) else [c])]
