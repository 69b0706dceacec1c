"""tune=lr_find: Lightning's learning-rate range test on the composed config, instead of training."""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path

from trainlab.errors import ConfigError
from trainlab.run.build import Run

log = logging.getLogger("trainlab")


def find_lr(run: Run, out: Path, settings: dict) -> dict:
    """Tuner.lr_find: the loss at each of `num_training` rising learning rates, the plot and the suggestion.

    Writes lr_find.png and lr_find.json (the curve and the suggestion) into the run folder; no checkpoint
    or summary.json, as nothing was trained.
    """
    import matplotlib.pyplot as plt
    from lightning.pytorch.tuner import Tuner

    if run.trainer.fast_dev_run:
        raise ConfigError("lr_find", "debug=fast_dev_run runs one batch, too few for a learning-rate curve; "
                          "leave debug= out")
    if settings["min_lr"] >= settings["max_lr"]:
        raise ConfigError("lr_find.max_lr", f"must be above lr_find.min_lr={settings['min_lr']}")
    result = Tuner(run.trainer).lr_find(run.module, datamodule=run.datamodule, update_attr=False, **settings)
    suggestion = result.suggestion() if result is not None else None
    if suggestion is None or not math.isfinite(suggestion):
        raise ConfigError("lr_find", "the loss curve gave no suggestion (too few batches, or a diverging loss); "
                          "raise lr_find.num_training or lower lr_find.max_lr")
    figure = result.plot(suggest=True)
    figure.savefig(out / "lr_find.png", dpi=100)
    plt.close(figure)
    record = {"suggested_lr": suggestion, "lr": result.results["lr"], "loss": result.results["loss"], **settings}
    (out / "lr_find.json").write_text(json.dumps(record, indent=2))
    log.info("suggested learning rate: optim.lr=%.3g (plot: %s)", suggestion, out / "lr_find.png")
    return record
