"""Pruning, the job's side (trainlab.run.pruning): a real Trainer reports to a real Optuna trial and stops when the
trial's pruner says so; a job reaches its trial in the sweeper's process or through a shared storage. The sweeper's
side is in test_search, a pruned search through train.py in test_experiments (slow tier)."""
from __future__ import annotations

import lightning as L
import optuna
import pytest
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict
from optuna.pruners import NopPruner, ThresholdPruner
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from trainlab.errors import ConfigError
from trainlab.run import search
from trainlab.run.build import compose_config
from trainlab.run.pruning import PruneHopeless, trial_pruning

optuna.logging.set_verbosity(optuna.logging.WARNING)


class RisingCurve(L.LightningModule):
    """Logs val/acc = 0.1, 0.2, 0.3, ... at epochs 0, 1, 2, ..."""

    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(1, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).sum()

    def validation_step(self, batch, batch_idx):
        self.log("val/acc", 0.1 * (self.current_epoch + 1))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        return DataLoader(TensorDataset(torch.ones(4, 1)), batch_size=2)

    val_dataloader = train_dataloader


def fit(pruner, max_epochs=4):
    study = optuna.create_study(direction="maximize", pruner=pruner)
    callback = PruneHopeless(study.ask(), "val/acc")
    trainer = L.Trainer(max_epochs=max_epochs, callbacks=[callback], logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(RisingCurve())
    return study.trials[0], callback, trainer


def test_every_epoch_is_reported_and_a_trial_kept_trains_to_its_end():
    trial, callback, trainer = fit(NopPruner())
    assert trial.intermediate_values == pytest.approx({0: 0.1, 1: 0.2, 2: 0.3, 3: 0.4})
    assert callback.pruned_at is None and trainer.current_epoch == 4


def test_a_trial_judged_hopeless_stops_after_that_epoch_not_before_its_warmup():
    trial, callback, trainer = fit(ThresholdPruner(lower=0.25, n_warmup_steps=1))  # 0.1 at epoch 0 is warm-up
    assert trial.intermediate_values == pytest.approx({0: 0.1, 1: 0.2})
    assert callback.pruned_at == 1 and trainer.current_epoch == 2


@pytest.fixture
def as_hydra_job(tmp_path):
    """Composes `python train.py <overrides>` and sets its Hydra config (HydraConfig) as Hydra does for a job."""
    def set_config(overrides, mode, job_num):
        cfg = compose_config(*overrides, output_dir=tmp_path, return_hydra_config=True)
        with open_dict(cfg):
            cfg.hydra.mode, cfg.hydra.job.num = mode, job_num
        HydraConfig.instance().set_config(cfg)
        return cfg

    yield set_config
    HydraConfig.instance().cfg = None


def test_only_a_trial_of_a_search_with_a_pruner_reports_to_its_trial(as_hydra_job):
    assert trial_pruning(None, world_size=1) is None  # outside Hydra
    study = optuna.create_study(study_name="trainlab", direction="maximize")
    asked = study.ask()
    search.ASKED["trainlab", asked.number] = asked
    pruned = ["hparams_search=optuna", "hydra/sweeper/pruner=median"]
    try:
        callback = trial_pruning(as_hydra_job(pruned, "MULTIRUN", asked.number), world_size=1)
        assert callback.trial is asked and callback.monitor == "val/acc"
        assert trial_pruning(as_hydra_job(pruned[:1], "MULTIRUN", asked.number), world_size=1) is None  # no pruner
        assert trial_pruning(as_hydra_job(pruned, "RUN", asked.number), world_size=1) is None  # not a search
        # a DDP trial: Lightning starts its other ranks as plain runs, which would not know the trial
        with pytest.raises(ConfigError, match="^hydra.sweeper.pruner: prunes trials that train in one process, not 2"):
            trial_pruning(as_hydra_job(pruned, "MULTIRUN", asked.number), world_size=2)
    finally:
        del search.ASKED["trainlab", asked.number]


def test_a_job_reaches_its_trial_in_the_sweepers_process_or_through_the_storage(tmp_path):
    url = f"journal://{tmp_path / 'study.log'}"
    study = optuna.create_study(study_name="s", storage=search.open_storage(url))
    asked = study.ask()
    search.ASKED["s", asked.number] = asked
    try:
        assert search.open_trial("s", None, None, asked.number) is asked
    finally:
        del search.ASKED["s", asked.number]
    reopened = search.open_trial("s", url, {"_target_": "optuna.pruners.ThresholdPruner", "lower": 0.5}, asked.number)
    reopened.report(0.25, step=0)
    assert reopened.number == asked.number and reopened.should_prune()
    assert optuna.load_study(study_name="s", storage=search.open_storage(url)).trials[0].intermediate_values == {0: 0.25}
    with pytest.raises(ConfigError, match="^hydra.sweeper.storage: a pruned trial"):
        search.open_trial("s", None, None, asked.number)
