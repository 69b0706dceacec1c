"""The notes' claims, as an experiment file states them, checked against a sweep's settings.

An experiment lists its claims under `claims:`; each is a mapping

    text: relu+adam beats relu+sgd      # what the notes say, in words
    source: "000"                       # the file of the notes (../shared/SEEDS.md)
    kind: better                        # one of KINDS below
    setting: {activation: relu, optim: adam}   # override values that pick one setting
    than: {activation: relu, optim: sgd}       # better, same: the setting compared with
    metric: test/acc                    # any of compare.METRICS (not turn)
    epoch: best                         # best (the tested checkpoint, default) or last (each run's last epoch)
    value: 0.9                          # above, below, near: the value compared with
    tolerance: 0.03                     # near, same: how close counts as equal
    floor: 0.5                          # better, same: test acc below which an arm has failed (default: chance)

and is judged **reproduced**, **not significant** (with the interval that would have been needed)
or **contradicted**, from 95% intervals and the tests of trainlab.study.compare at the 5% level. val chose the
checkpoint, so a claim at `best` reads test (or train) metrics, never val; a claim about how training ends
reads `last`, where val is no longer a choice (test is measured for the tested checkpoint only). A `better` or
`same` claim whose `setting` arm itself fails (test acc indistinguishable from always guessing the commonest
class, or below `floor`) is **compared failures**: it compares two failures. A claim whose setting was not
run in this sweep (a narrowed sweep) is **not run**; one whose arm ran and failed in every run (a diverging
lr) is **all runs failed**, with the first run's error.
"""
from __future__ import annotations

from trainlab.errors import ConfigError
from trainlab.overrides import override_key
from trainlab.stats import ALPHA, estimate
from trainlab.study.compare import EPOCHS, METRICS, RANK_METRIC, Setting, compare, higher_is_better

# kind -> the keys it needs beside text and setting
KINDS = {
    "better": ("than", "metric"),                # setting beats `than` on metric
    "same": ("than", "metric", "tolerance"),     # setting and `than` differ by less than tolerance
    "best": ("metric",),                         # setting ranks first on metric, or is tied with the first
    "above": ("metric", "value"),                # setting's metric is above value
    "below": ("metric", "value"),                # setting's metric is below value
    "near": ("metric", "value", "tolerance"),    # setting's metric is within tolerance of value
    "turn": (),                                  # val loss rises after its minimum while train loss falls
}
REPRODUCED, NOT_SIGNIFICANT, CONTRADICTED, NOT_RUN = "reproduced", "not significant", "contradicted", "not run"
COMPARED_FAILURES, ALL_FAILED = "compared failures", "all runs failed"


def check(claims: list[dict]) -> None:
    """Every claim is complete, of a known kind, metric and epoch: checked before a sweep runs."""
    for i, claim in enumerate(claims):
        where = f"claims[{i}]"
        kind = claim.get("kind")
        if kind not in KINDS:
            raise ConfigError(f"{where}.kind", f"unknown kind {kind!r}; use one of {', '.join(KINDS)}")
        for key in ("text", "setting", *KINDS[kind]):
            if claim.get(key) is None:
                raise ConfigError(f"{where}.{key}", f"a '{kind}' claim needs {key}")
        epoch = _epoch(claim)
        if epoch not in EPOCHS or (kind == "turn" and epoch != "last"):
            allowed = "last (a turn reads the final epochs)" if kind == "turn" else " or ".join(EPOCHS)
            raise ConfigError(f"{where}.epoch", f"unknown epoch {epoch!r} for a '{kind}' claim; use {allowed}")
        floor = claim.get("floor")
        if floor is not None and not (isinstance(floor, (int, float)) and 0 <= floor <= 1):
            raise ConfigError(f"{where}.floor", f"must be a test accuracy in [0, 1], got {floor!r}")
        if kind == "turn":
            continue
        metric = claim["metric"]
        if metric not in METRICS:
            raise ConfigError(f"{where}.metric", f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")
        if epoch == "best" and metric.startswith("val/"):
            raise ConfigError(f"{where}.metric", f"{metric} chose the best checkpoint, so it cannot judge it; use "
                              f"test/{metric[4:]}, or read the last epoch with epoch: last")
        if epoch == "last" and metric.startswith("test/"):
            raise ConfigError(f"{where}.metric", f"{metric} is measured for the tested checkpoint only; use "
                              f"epoch: best, or val/{metric[5:]} at the last epoch")
        if kind == "best" and (metric != RANK_METRIC or epoch != "best"):
            raise ConfigError(f"{where}.metric", f"settings are ranked on {RANK_METRIC} at the tested checkpoint; "
                              "a 'best' claim must use it")


def validate(claims: list[dict], settings: list[Setting], tuned: list[str] = ()) -> None:
    """check(claims), and every claim names only keys this sweep varies, and none it tunes per arm."""
    check(claims)
    swept = {override_key(k) for s in settings for k in s.overrides}
    for i, claim in enumerate(claims):
        where = f"claims[{i}]"
        for part in ("setting", "than"):
            for key in claim.get(part) or {}:
                if key in tuned:
                    raise ConfigError(f"{where}.{part}.{key}", f"{key} is tuned per arm on val (tuned), so each arm "
                                      "is compared at its own best value; name the arm without it")
                if key not in swept:
                    raise ConfigError(f"{where}.{part}.{key}", f"this sweep does not vary {key!r} (it varies "
                                      f"{', '.join(sorted(swept)) or 'nothing'}); name a swept key")


def find(settings: list[Setting], selector: dict) -> list[Setting]:
    wanted = {str(k): str(v) for k, v in selector.items()}
    return [s for s in settings if all(s.overrides.get(k) == v for k, v in wanted.items())]


def _needed(half_width: float, distance: float) -> str:
    """How narrow the interval would have had to be, and roughly how many more samples that means."""
    if distance <= 0:
        return "no interval width would decide it at this mean"
    factor = (half_width / distance) ** 2
    return f"an interval of +-{distance:.3f} or narrower was needed (about {factor:.2g}x the samples or replicates)"


def _epoch(claim: dict) -> str:
    return claim.get("epoch", "last" if claim["kind"] == "turn" else "best")


def _at(claim: dict) -> str:
    """How the evidence names where a metric was read."""
    return " at the last epoch" if _epoch(claim) == "last" else ""


def _failed(claim: dict, arm: Setting) -> str | None:
    """Why an arm counts as failed (test acc at chance, or below the claim's floor), or None."""
    e, chance = arm.estimates.get("test/acc"), arm.chance
    if e is None:
        return None
    if chance is not None and e.method and e.lo <= chance:
        return f"{arm.name} reaches test/acc {e.text()}, not above chance ({chance:.3f}, the commonest class)"
    floor = claim.get("floor")
    if floor is not None and e.mean < float(floor):
        return f"{arm.name} reaches test/acc {e.text()}, below the claim's floor {float(floor):g}"
    return None


def _vs(claim: dict, a: Setting, b: Setting) -> tuple[str, str]:
    metric, epoch = claim["metric"], _epoch(claim)
    comparison = compare(a, b, metric, epoch)
    ea, eb = a.estimate(metric, epoch), b.estimate(metric, epoch)
    if comparison is None or ea is None or eb is None:
        return NOT_SIGNIFICANT, (f"{a.name} vs {b.name}: no test possible (one run each and no per-sample {metric}); "
                                 "add replicates")
    c = comparison
    head = (f"{metric}{_at(claim)} {ea.text()} vs {eb.text()}: difference {c.difference:+.3f} [{c.lo:+.3f}, "
            f"{c.hi:+.3f}], {c.test} p={c.p:.3g}")
    failures = [f for f in (_failed(claim, arm) for arm in ((a, b) if claim["kind"] == "same" else (a,))) if f]
    if failures:
        return COMPARED_FAILURES, f"{head}; but {'; '.join(failures)}: a comparison of failures"
    half = (c.hi - c.lo) / 2
    if claim["kind"] == "same":
        tol = float(claim["tolerance"])
        if -tol <= c.lo and c.hi <= tol:
            return REPRODUCED, f"{head}; interval within +-{tol}"
        if c.lo > tol or c.hi < -tol:
            return CONTRADICTED, f"{head}; interval outside +-{tol}"
        return NOT_SIGNIFICANT, f"{head}; {_needed(half, tol - abs(c.difference))}"
    better = c.difference > 0 if higher_is_better(metric) else c.difference < 0
    if c.p < ALPHA:
        return (REPRODUCED if better else CONTRADICTED), head
    return NOT_SIGNIFICANT, f"{head}; {_needed(half, abs(c.difference))}"


def _against_value(claim: dict, s: Setting) -> tuple[str, str]:
    metric, value = claim["metric"], float(claim["value"])
    e = s.estimate(metric, _epoch(claim))
    if e is None:
        return NOT_SIGNIFICANT, f"no {metric} recorded"
    kind = claim["kind"]
    interval = "t interval" if e.method == "t" else ("Wilson interval" if e.method == "wilson" else "no interval")
    head = f"{metric}{_at(claim)} {e.text()} (n={e.n}, {interval})"
    if e.method == "":
        return NOT_SIGNIFICANT, f"{head}: one run and no sampling interval for {metric}; add replicates"
    half = (e.hi - e.lo) / 2
    if kind == "near":
        tol = float(claim["tolerance"])
        if value - tol <= e.lo and e.hi <= value + tol:
            return REPRODUCED, f"{head} lies within {value} +- {tol}"
        if e.lo > value + tol or e.hi < value - tol:
            return CONTRADICTED, f"{head} lies outside {value} +- {tol}"
        return NOT_SIGNIFICANT, f"{head} straddles {value} +- {tol}; {_needed(half, tol - abs(e.mean - value))}"
    above = kind == "above"
    if (e.lo > value) if above else (e.hi < value):
        return REPRODUCED, f"{head} is {'above' if above else 'below'} {value}"
    if (e.hi < value) if above else (e.lo > value):
        return CONTRADICTED, f"{head} is {'below' if above else 'above'} {value}"
    return NOT_SIGNIFICANT, f"{head} includes {value}; {_needed(half, abs(e.mean - value))}"


def _best(claim: dict, s: Setting, ranked: list[Setting]) -> tuple[str, str]:
    metric = claim["metric"]
    e = s.estimates.get(metric)
    top = ranked[0]
    if e is None:
        return NOT_SIGNIFICANT, f"no {metric} recorded"
    if s is top:
        tied = [o.name for o in ranked[1:] if o.tied]
        if tied:
            return NOT_SIGNIFICANT, f"first on {metric} ({e.text()}) but tied with {', '.join(tied)}"
        return REPRODUCED, f"first on {metric} ({e.text()}); every other setting is worse at the 5% level (Holm)"
    if s.tied:
        return NOT_SIGNIFICANT, (f"{metric} {e.text()} is tied with the first, {top.name} ({top.estimates[metric].text()}; "
                                 f"{s.versus_best.test} p={s.p_holm:.3g}, Holm)")
    detail = f"{s.versus_best.test} p={s.p_holm:.3g}, Holm" if s.versus_best else "untested"
    return CONTRADICTED, f"{metric} {e.text()} is below the first, {top.name} ({top.estimates[metric].text()}; {detail})"


def _rise(history: list[dict], turn_epoch: int) -> tuple[float, float] | None:
    """(relative rise of val loss from turn_epoch to the last epoch, relative fall of train loss over the same)."""
    epochs = {h["epoch"]: h for h in history if "val/loss" in h and "train/loss" in h}
    if turn_epoch not in epochs or max(epochs) <= turn_epoch:
        return None
    at, last = epochs[turn_epoch], epochs[max(epochs)]
    return last["val/loss"] / at["val/loss"] - 1, 1 - last["train/loss"] / at["train/loss"]


def _turn(s: Setting) -> tuple[str, str]:
    """Val loss rises after its minimum while train loss falls, judged over replicates: the minimum is the
    epoch of the lowest *mean* val loss (one choice for all replicates, less swayed by one run's noise than
    each run's own minimum, which any noisy curve lies above at its end), and each replicate's rise from there
    to its last epoch gets a t interval."""
    curves: dict[int, list[float]] = {}
    for r in s.runs:
        for h in r["history"]:
            if "val/loss" in h:
                curves.setdefault(h["epoch"], []).append(h["val/loss"])
    shared = {e: v for e, v in curves.items() if len(v) == len(s.runs)}
    if not shared:
        return NOT_SIGNIFICANT, "no val loss curve recorded"
    turn_epoch = min(shared, key=lambda e: sum(shared[e]) / len(shared[e]))
    if turn_epoch == max(curves):  # no rise to test: is the fall over the second half of training beyond noise?
        middle = sorted(shared)[len(shared) // 2]
        falls = [r[0] for r in (_rise(run["history"], middle) for run in s.runs) if r is not None]
        fall = estimate(falls) if falls else None
        head = f"mean val loss is lowest at the last epoch ({turn_epoch}): no turn"
        if fall is None or not fall.method:
            return NOT_SIGNIFICANT, f"{head}; too few epochs or runs to test the fall"
        change = f"from epoch {middle} val loss {100 * fall.mean:+.1f}% {_percent(fall)} (n={fall.n})"
        return (CONTRADICTED if fall.hi < 0 else NOT_SIGNIFICANT), f"{head}; {change}"
    rises = [r for r in (_rise(run["history"], turn_epoch) for run in s.runs) if r is not None]
    val_rise, train_fall = (estimate([r[i] for r in rises]) for i in (0, 1))
    head = (f"from epoch {turn_epoch} (lowest mean val loss) to the last: val loss {100 * val_rise.mean:+.1f}% "
            f"{_percent(val_rise)}, train loss {-100 * train_fall.mean:+.1f}% {_percent(train_fall, -1)} "
            f"(n={val_rise.n})")
    if not val_rise.method:
        return NOT_SIGNIFICANT, f"{head}; one run and no interval: add replicates"
    if val_rise.lo > 0 and train_fall.lo > 0:
        return REPRODUCED, head
    if val_rise.hi < 0 or train_fall.hi < 0:
        return CONTRADICTED, head
    return NOT_SIGNIFICANT, f"{head}; an interval includes no change"


def _percent(e, sign: int = 1) -> str:
    lo, hi = sorted((sign * 100 * e.lo, sign * 100 * e.hi))
    return f"[{lo:+.1f}%, {hi:+.1f}%]" if e.method else ""


def evaluate(claims: list[dict], ranked: list[Setting], tuned: list[str] = ()) -> list[dict]:
    """One record per claim: the claim, its outcome and the evidence (numbers) behind it."""
    validate(claims, ranked, tuned)
    records = []
    for claim in claims:
        record = {k: claim.get(k) for k in ("text", "source", "kind", "setting", "than", "metric", "value", "tolerance",
                                            "floor") if claim.get(k) is not None}
        record["epoch"] = _epoch(claim)
        matches = find(ranked, claim["setting"])
        others = find(ranked, claim["than"]) if claim.get("than") else [None]
        completed = [s for s in matches if s.runs]
        failed = [s for s in [*matches, *others] if s is not None and s.failed and not s.runs]
        if len(matches) == 1 and len(others) == 1 and failed:
            error = " ".join(str(failed[0].failed[0]["summary"].get("error") or "no reason recorded").split())[:160]
            outcome, evidence = ALL_FAILED, (f"every run of {failed[0].name} failed ({len(failed[0].failed)}): "
                                             f"{error}")
        elif len(completed) != 1 or len(others) != 1 or (others[0] is not None and not others[0].runs):
            missing = "setting" if len(completed) != 1 else "than"
            count = len(completed) if missing == "setting" else sum(bool(o.runs) for o in others)
            outcome, evidence = NOT_RUN, (f"{count} completed settings of this sweep match {missing} "
                                          f"{claim[missing]}; exactly one is needed")
        elif claim["kind"] in ("better", "same"):
            outcome, evidence = _vs(claim, completed[0], others[0])
        elif claim["kind"] == "best":
            outcome, evidence = _best(claim, completed[0], ranked)
        elif claim["kind"] == "turn":
            outcome, evidence = _turn(completed[0])
        else:
            outcome, evidence = _against_value(claim, completed[0])
        records.append({**record, "outcome": outcome, "evidence": evidence})
    return records
