"""The notes' claims, as an experiment file states them, checked against a sweep's settings.

An experiment lists its claims under `claims:`; each is a mapping

    text: relu+adam beats relu+sgd      # what the notes say, in words
    source: "000"                       # the file of the notes (../shared/SEEDS.md)
    kind: better                        # one of KINDS below
    setting: {activation: relu, optim: adam}   # override values that pick one setting
    than: {activation: relu, optim: sgd}       # better, same: the setting compared with
    metric: val/acc                     # any of compare.METRICS (not turn)
    value: 0.9                          # above, below, near: the value compared with
    tolerance: 0.03                     # near, same: how close counts as equal

and is judged **reproduced**, **not significant** (with the interval that would have been needed)
or **contradicted**, from 95% intervals and the tests of trainlab.compare at the 5% level. A claim
whose setting was not run in this sweep (a narrowed sweep) is **not run**.
"""
from __future__ import annotations

import math

from trainlab.compare import METRICS, RANK_METRIC, Setting, compare, higher_is_better, override_key
from trainlab.errors import ConfigError
from trainlab.stats import ALPHA

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
TURN_RISE = 0.02  # val loss must end this much (relative) above its minimum to count as a turn


def validate(claims: list[dict], settings: list[Setting]) -> None:
    """Every claim is complete, of a known kind and metric, and names only keys this sweep varies."""
    swept = {override_key(k) for s in settings for k in s.overrides}
    for i, claim in enumerate(claims):
        where = f"claims[{i}]"
        kind = claim.get("kind")
        if kind not in KINDS:
            raise ConfigError(f"{where}.kind", f"unknown kind {kind!r}; use one of {', '.join(KINDS)}")
        for key in ("text", "setting", *KINDS[kind]):
            if claim.get(key) is None:
                raise ConfigError(f"{where}.{key}", f"a '{kind}' claim needs {key}")
        if kind != "turn" and claim["metric"] not in METRICS:
            raise ConfigError(f"{where}.metric", f"unknown metric {claim['metric']!r}; use one of {', '.join(METRICS)}")
        if kind == "best" and claim["metric"] != RANK_METRIC:
            raise ConfigError(f"{where}.metric", f"settings are ranked on {RANK_METRIC}; a 'best' claim must use it")
        for part in ("setting", "than"):
            for key in claim.get(part) or {}:
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


def _vs(claim: dict, a: Setting, b: Setting) -> tuple[str, str]:
    metric = claim["metric"]
    comparison = compare(a, b, metric)
    ea, eb = a.estimates.get(metric), b.estimates.get(metric)
    if comparison is None or ea is None or eb is None:
        return NOT_SIGNIFICANT, (f"{a.name} vs {b.name}: no test possible (one run each and no per-sample {metric}); "
                                 "add replicates")
    c = comparison
    head = (f"{metric} {ea.text()} vs {eb.text()}: difference {c.difference:+.3f} [{c.lo:+.3f}, {c.hi:+.3f}], "
            f"{c.test} p={c.p:.3g}")
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
    e = s.estimates.get(metric)
    if e is None:
        return NOT_SIGNIFICANT, f"no {metric} recorded"
    kind = claim["kind"]
    interval = "t interval" if e.method == "t" else ("Wilson interval" if e.method == "wilson" else "no interval")
    head = f"{metric} {e.text()} (n={e.n}, {interval})"
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


def _turned(history: list[dict]) -> bool:
    epochs = [h for h in history if "val/loss" in h and "train/loss" in h]
    if len(epochs) < 2:
        return False
    low = min(range(len(epochs)), key=lambda i: epochs[i]["val/loss"])
    last = epochs[-1]
    rose = low < len(epochs) - 1 and last["val/loss"] > epochs[low]["val/loss"] * (1 + TURN_RISE)
    return rose and last["train/loss"] < epochs[low]["train/loss"]


def _turn(s: Setting) -> tuple[str, str]:
    turned = [_turned(r["history"]) for r in s.runs]
    k, n = sum(turned), len(turned)
    lows = [min(r["history"], key=lambda h: h.get("val/loss", math.inf)).get("epoch") for r in s.runs if r["history"]]
    head = (f"{k} of {n} replicates: val loss ends > {100 * TURN_RISE:.0f}% above its minimum (epochs {lows}) "
            "while train loss is lower than there")
    if n and k == n:
        return REPRODUCED, head
    if k == 0:
        return CONTRADICTED, head
    return NOT_SIGNIFICANT, head


def evaluate(claims: list[dict], ranked: list[Setting]) -> list[dict]:
    """One record per claim: the claim, its outcome and the evidence (numbers) behind it."""
    validate(claims, ranked)
    records = []
    for claim in claims:
        record = {k: claim.get(k) for k in ("text", "source", "kind", "setting", "than", "metric", "value", "tolerance")
                  if claim.get(k) is not None}
        matches = find(ranked, claim["setting"])
        others = find(ranked, claim["than"]) if claim.get("than") else [None]
        completed = [s for s in matches if s.runs]
        if len(completed) != 1 or len(others) != 1 or (others[0] is not None and not others[0].runs):
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
