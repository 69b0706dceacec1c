"""The errors a user can cause, each with its exit code, and the one place that turns them into a line on stderr."""
from __future__ import annotations

import sys


class TrainlabError(Exception):
    """An expected failure: printed as one `error: ...` line (no traceback), then exit with `exit_code`."""

    exit_code = 1

    def line(self) -> str:
        return f"error: {self}"


class ConfigError(TrainlabError, ValueError):
    """Bad user input: `key` names the config key (or file) at fault, `message` says what to do."""

    exit_code = 2

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}")
        self.key = key


class NonFiniteLoss(TrainlabError, RuntimeError):
    """Training produced a NaN or infinite loss; the message holds the checklist with evidence."""

    exit_code = 3

    def line(self) -> str:
        return f"error: training stopped: {self}"


class CannotWrite(TrainlabError, OSError):
    """Disk full, read-only or vanished folder: names what could not be written and what to do."""

    exit_code = 4

    def __init__(self, target: str, why: str, fix: str):
        super().__init__(f"cannot write {target}: {why}; {fix}")

    @classmethod
    def from_os_error(cls, error: OSError) -> CannotWrite:
        return cls(error.filename or "to the run folder", error.strerror or str(error), "free disk space or write "
                   "elsewhere with hydra.run.dir=... (earlier runs and checkpoints are untouched)")


def as_trainlab_error(error: BaseException) -> TrainlabError | None:
    """The TrainlabError an exception stands for (an OSError while saving is a CannotWrite), else None."""
    if isinstance(error, TrainlabError):
        return error
    if isinstance(error, OSError):
        return CannotWrite.from_os_error(error)
    return None


def first_line(error: BaseException) -> str:
    """An error's message in one line (its class name when it has none), for a summary or a trial's reason."""
    return (str(error).splitlines() or [type(error).__name__])[0]


def exit_with(error: TrainlabError) -> None:
    """Print the error's one line and exit with its code."""
    print(error.line(), file=sys.stderr)
    raise SystemExit(error.exit_code)
