"""The vocabulary of config checks: a Rule says what a value must be, in words (`describe`) and as a test (`accepts`).

Each rule keeps its arguments and decides when asked, so the schema built at import is plain data.
"""
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


class Integer(Rule):
    """An int (not a bool) >= minimum and <= maximum where given."""

    def __init__(self, minimum: int | None = None, maximum: int | None = None):
        self.minimum, self.maximum = minimum, maximum

    @property
    def describe(self) -> str:
        if self.maximum is not None:
            return f"an integer in [{self.minimum}, {self.maximum}]"
        return "an integer" + (f" >= {self.minimum}" if self.minimum is not None else "")

    def accepts(self, value) -> bool:
        return (_is_int(value) and (self.minimum is None or value >= self.minimum)
                and (self.maximum is None or value <= self.maximum))


class Number(Rule):
    """A finite int or float (not a bool) within the bounds given, each closed unless said open."""

    def __init__(self, low: float | None = None, high: float | None = None, low_open: bool = False,
                 high_open: bool = False):
        self.low, self.high, self.low_open, self.high_open = low, high, low_open, high_open

    @property
    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            return (f"a number in {'(' if self.low_open else '['}{self.low:g}, "
                    f"{self.high:g}{')' if self.high_open else ']'}")
        if self.low is not None:
            return f"a number {'>' if self.low_open else '>='} {self.low:g}"
        return "a finite number"

    def accepts(self, value) -> bool:
        if not _is_number(value):
            return False
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below


class OneOf(Rule):
    def __init__(self, *options):
        self.options = options

    @property
    def describe(self) -> str:
        return f"one of {', '.join(map(str, self.options))}"

    def accepts(self, value) -> bool:
        return value in self.options


class Either(Rule):
    def __init__(self, *rules: Rule):
        self.rules = rules

    @property
    def describe(self) -> str:
        return " or ".join(rule.describe for rule in self.rules)

    def accepts(self, value) -> bool:
        return any(rule.accepts(value) for rule in self.rules)


class ListOf(Rule):
    """A list (of `length` items where given), each accepted by `rule`."""

    def __init__(self, rule: Rule, length: int | None = None):
        self.rule, self.length = rule, length

    @property
    def describe(self) -> str:
        size = f"{self.length} " if self.length else ""
        return f"a list of {size}values, each {self.rule.describe}"

    def accepts(self, value) -> bool:
        return (isinstance(value, list) and (self.length is None or len(value) == self.length)
                and all(map(self.rule.accepts, value)))


NULL = Rule("null", lambda v: v is None)
FLAG = Rule("true or false", lambda v: isinstance(v, bool))
TEXT = Rule("a string", lambda v: isinstance(v, str))
FRACTION = Number(0, 1, low_open=True, high_open=True)
POSITIVE = Number(0, low_open=True)
NON_NEGATIVE = Number(0)
FOLDER = TEXT
SEED = Integer(0, 2**32 - 1)  # what numpy's and Lightning's seeding accept
