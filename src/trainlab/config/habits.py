"""Commands typed the lightning-hydra-template way. Those that mean something here work as typed
(`+trainer.gradient_clip_val=0.5`, `ckpt_path=<file.ckpt>`); the others stop, before Hydra composes
anything, with one line naming trainlab's way."""
from __future__ import annotations

from trainlab.errors import ConfigError

# Keys (and the keys under them) the template has and trainlab names otherwise.
ELSEWHERE = {
    "model.optimizer": "the optimizer is the optim group: optim=adam optim.lr=1e-4 (or optim=sgd, momentum, rmsprop, "
                       "adamw)",
    "model.lr": "the learning rate is optim.lr=...",
    "model.scheduler": "the scheduler is the scheduler group: scheduler=step or scheduler=cosine",
    "model.net": "the net is the model group itself: model=uniform model.width=64 model.depth=3, or your own "
                 "nn.Module as model._target_ (docs/extend.md)",
    "model.compile": "trainlab does not compile models (small MLPs gain nothing from it)",
    "data.num_workers": "the data is held in memory as tensors and sliced into batches: there are no loader workers",
    "data.pin_memory": "the data is held in memory as tensors (on the GPU with trainer=gpu): nothing to pin",
    "data.data_dir": "the default data ships inside packages; your own: data=table data.path=<file> (numbers) "
                  "or data=text_files data.path=<file or folder> (text)",
    "paths.data_dir": "the default data ships inside packages; your own: data=table data.path=<file> (numbers) "
                  "or data=text_files data.path=<file or folder> (text)",
    "paths.log_dir": "every run writes into its own folder: hydra.run.dir=... (sweeps: hydra.sweep.dir=...)",
    "task_name": "runs are named by date under outputs/runs/: choose the folder with hydra.run.dir=...",
    "tags": "runs are named after their overrides; with logger=wandb, +logger.wandb.tags=[a,b] tags the W&B run",
    "train": "every run trains, then tests the best checkpoint; to test a trained model: "
             "trainlab-eval <run folder or .ckpt>",
    "test": "every run tests its best checkpoint after training; to test a trained model: "
            "trainlab-eval <run folder or .ckpt>",
    "extras": "print_config=false leaves out the config tree; trainlab has no other extras",
}
# Group options the template has and trainlab names otherwise.
OPTIONS = {
    "trainer=mps": "trainer.accelerator=mps",
    "debug=default": "debug=limit_batches (a few batches of each split for 2 epochs)",
    "debug=fdr": "debug=fast_dev_run",
    "debug=limit": "debug=limit_batches",
    "debug=overfit": "debug=overfit_batches",
    "logger=many_loggers": "logger=many (csv, tensorboard and wandb), or a list of your own: logger=[csv,mlflow]",
    "hparams_search=mnist_optuna": "hparams_search=optuna",
}


def adapted(arguments: list[str]) -> list[str]:
    """The command line with the template's habits translated; raises ConfigError for one trainlab names otherwise."""
    return [_adapted(argument) for argument in arguments]


def _adapted(argument: str) -> str:
    if argument.startswith("-") or "=" not in argument:
        return argument  # Hydra's flags (-m, --cfg job) and their values
    key = argument.split("=", 1)[0].lstrip("+~")
    for name, way in ELSEWHERE.items():
        if key == name or key.startswith(name + "."):
            raise ConfigError(key, f"is a lightning-hydra-template key; in trainlab, {way}")
    if argument in OPTIONS:
        raise ConfigError(key, f"{argument} is a lightning-hydra-template option; in trainlab, {OPTIONS[argument]}")
    # The template adds Trainer keys with `+`; trainlab's config has the common ones already, where a bare `+`
    # would fail. `++` sets a key whether or not the config has it.
    if argument.startswith("+") and not argument.startswith("++") and "." in key and not {"/", "@"} & set(key):
        return "+" + argument
    return argument
