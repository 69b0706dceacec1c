"""`hydra/sweeper=optuna`: trainlab's sweeper over Optuna's ask and tell (the logic lives in trainlab.run.search)."""
from __future__ import annotations

import contextlib
from pathlib import Path

from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from omegaconf import DictConfig, OmegaConf


class OptunaSweeper(Sweeper):
    def __init__(self, **options) -> None:
        pass  # the options are read, resolved against the whole config, in sweep()

    def setup(self, *, hydra_context, task_function, config: DictConfig) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(config=config, hydra_context=hydra_context,
                                                                task_function=task_function)

    def sweep(self, arguments: list[str]) -> None:
        from trainlab.errors import ConfigError, exit_with
        from trainlab.run.search import Search

        options = OmegaConf.to_container(self.config.hydra.sweeper, resolve=True)
        options = {key: value for key, value in options.items() if not key.startswith("_")}
        try:
            in_process = self.config.hydra.launcher._target_.endswith("BasicLauncher")  # jobs run in this process
            search = Search(**options, metric=self.config.get("optimized_metric"), jobs_in_process=in_process)
            search.run(lambda overrides, first: self.launcher.launch(overrides, initial_job_idx=first), arguments,
                       Path(self.config.hydra.sweep.dir))
        except ConfigError as error:  # refused before any trial: the sweep folder made for it goes, if still empty
            with contextlib.suppress(OSError):
                Path(self.config.hydra.sweep.dir).rmdir()
            exit_with(error)
