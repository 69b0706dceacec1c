"""The fit verdict: under/overfitting from per-epoch train and val metrics (pure logic, no Lightning)."""
from __future__ import annotations

from trainlab.stats import gap_is_noise


def fit_verdict(history: list[dict], underfit_acc: float = 0.8, overfit_gap: float = 0.05,
                turn_tolerance: float = 0.02, samples: tuple[int, int] | None = None) -> dict:
    """The notes' diagnosis from per-epoch train (eval-mode) and val metrics.

    underfitting: train accuracy itself is poor (< underfit_acc): more capacity or epochs.
    overfitting: train accuracy beats val by more than overfit_gap, and by more than the sampling noise
    of `samples` = (train sample, val) sizes explains (one-sided Fisher exact test, 5%); or val loss
    ended more than turn_tolerance (relative) above its minimum: stop at the minimum, regularise, or
    get more data.
    """
    epochs = [h for h in history if "val/loss" in h and "train/loss" in h]
    if not epochs:
        return {"fit": "unknown", "reason": "no epoch with both train and val metrics", "stop_epoch": None}
    last = epochs[-1]
    best = min(epochs, key=lambda h: h["val/loss"])
    numbers = {"train_acc": last["train/acc"], "val_acc": last["val/acc"], "train_loss": last["train/loss"],
               "val_loss": last["val/loss"], "best_val_loss": best["val/loss"], "best_epoch": best["epoch"]}
    gap = last["train/acc"] - last["val/acc"]
    rise = (last["val/loss"] - best["val/loss"]) / max(best["val/loss"], 1e-12)
    noise, p = gap_is_noise(last["train/acc"], last["val/acc"], *samples) if samples else (False, None)
    numbers["gap_p"] = p
    gap_note = f"gap {gap:.3f}, p={p:.2g} on {samples[1]} val samples" if samples else f"gap {gap:.3f}"
    if last["train/acc"] < underfit_acc:
        fit, stop = "underfitting", None
        reason = (f"train acc {last['train/acc']:.3f} and val acc {last['val/acc']:.3f} are both below "
                  f"{underfit_acc}: a bigger model, more epochs or a better optimizer/lr")
    elif (gap > overfit_gap and not noise) or (best is not last and rise > turn_tolerance):
        turned = best is not last and rise > turn_tolerance
        fit, stop = "overfitting", best["epoch"] if turned else None
        reason = f"train acc {last['train/acc']:.3f} vs val acc {last['val/acc']:.3f} ({gap_note}); "
        if turned:
            reason += (f"val loss {last['val/loss']:.4f} is {100 * rise:.0f}% above its minimum {best['val/loss']:.4f} "
                       f"at epoch {best['epoch']}: early stopping should have stopped there; regularise or get more data")
        else:
            reason += f"val loss {last['val/loss']:.4f} is still near its minimum: regularise or get more data"
    else:
        fit, stop = "good fit", None
        within = "; within the sampling noise" if gap > overfit_gap and noise else ""
        reason = (f"train acc {last['train/acc']:.3f}, val acc {last['val/acc']:.3f} ({gap_note}{within}), "
                  "val loss near its minimum")
    return {"fit": fit, "reason": reason, "stop_epoch": stop, **numbers}
