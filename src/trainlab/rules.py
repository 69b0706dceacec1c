"""The vocabulary of config checks: a Rule says what a value must be, in words and as a test."""
from __future__ import annotations

import importlib
import math
from collections.abc import Callable


class Rule:
    def __init__(self, describe: str, accepts: Callable[[object], bool]):
        self.describe, self.accepts = describe, accepts


class NamesIn(Rule):
    """One of the keys of a table that lives with its code (`module:NAME`), imported when first checked."""

    def __init__(self, where: str):
        self.where = where

    @property
    def names(self) -> list[str]:
        module, name = self.where.split(":")
        return list(getattr(importlib.import_module(module), name))

    @property
    def describe(self) -> str:
        return f"one of {', '.join(self.names)}"

    def accepts(self, value) -> bool:
        return value in self.names


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def integer(minimum: int | None = None, maximum: int | None = None) -> Rule:
    if maximum is not None:
        return Rule(f"an integer in [{minimum}, {maximum}]", lambda v: _is_int(v) and minimum <= v <= maximum)
    return Rule("an integer" + (f" >= {minimum}" if minimum is not None else ""),
                lambda v: _is_int(v) and (minimum is None or v >= minimum))


def number(low: float | None = None, high: float | None = None, low_open: bool = False, high_open: bool = False) -> Rule:
    if low is not None and high is not None:
        describe = f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    elif low is not None:
        describe = f"a number {'>' if low_open else '>='} {low:g}"
    else:
        describe = "a finite number"

    def accepts(v) -> bool:
        if not _is_number(v):
            return False
        above = low is None or (v > low if low_open else v >= low)
        below = high is None or (v < high if high_open else v <= high)
        return above and below
    return Rule(describe, accepts)


def one_of(*options) -> Rule:
    return Rule(f"one of {', '.join(map(str, options))}", lambda v: v in options)


def either(*rules: Rule) -> Rule:
    return Rule(" or ".join(r.describe for r in rules), lambda v: any(r.accepts(v) for r in rules))


def list_of(rule: Rule, length: int | None = None) -> Rule:
    size = f"{length} " if length else ""
    return Rule(f"a list of {size}values, each {rule.describe}",
                lambda v: isinstance(v, list) and (length is None or len(v) == length) and all(map(rule.accepts, v)))


NULL = Rule("null", lambda v: v is None)
FLAG = Rule("true or false", lambda v: isinstance(v, bool))
TEXT = Rule("a string", lambda v: isinstance(v, str))
FRACTION = number(0, 1, low_open=True, high_open=True)
POSITIVE = number(0, low_open=True)
NON_NEGATIVE = number(0)
FOLDER = TEXT
SEED = integer(0, 2**32 - 1)  # what numpy's and Lightning's seeding accept
