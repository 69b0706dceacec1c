"""The job that `python train.py` runs: one handler turns every expected failure into one line and its exit code.

In a multirun a failing job does not stop the sweep: its summary.json records the failure, the
others run, and the sweep's report lists it (and the sweep exits non-zero).
"""
from __future__ import annotations

import logging
import math
import signal
import sys

from omegaconf import DictConfig

from trainlab.errors import ConfigError, as_trainlab_error, exit_with
from trainlab.job import job_identity
from trainlab.pipeline import train_and_test
from trainlab.schema import check_replicates
from trainlab.summary import optimized_value, record_failure

log = logging.getLogger("trainlab")


def run_job(cfg: DictConfig) -> float | None:
    """Train and test; returns the metric a sweeper optimises (NaN for a failed job of a sweep)."""
    # SIGTERM (a scheduler's stop) behaves like Ctrl-C: interrupt_checkpoint saves before exit.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    identity = job_identity()
    try:
        if check_replicates(cfg.get("replicates", 1)) > 1 and not identity["group"]:
            raise ConfigError("replicates", f"replicates={cfg.replicates} repeats each setting of a sweep with its own "
                              "seed; add -m to run it as one (python train.py -m replicates=...)")
        return optimized_value(cfg, train_and_test(cfg))
    except Exception as error:
        expected = as_trainlab_error(error)
        if not identity["group"]:
            if expected is None:
                raise  # a bug, not bad input: the traceback is what helps
            exit_with(expected)
        if expected is None:
            log.exception("job failed; the sweep goes on")
        else:
            print(expected.line(), file=sys.stderr)
        record_failure(cfg, expected or error, identity["overrides"])
        return math.nan
