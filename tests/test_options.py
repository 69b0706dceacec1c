"""Every option of every config group composes and trains (fast_dev_run: one batch of each split)."""
from __future__ import annotations

import json

import pytest
import torch

from conftest import CONF, make_cfg, run_cli
from trainlab.errors import ConfigError
from trainlab.train import train

# Options that need more than one CPU process or a GPU have their own tests below.
SPECIAL = {("trainer", "ddp"), ("trainer", "gpu")}
OPTIONS = sorted((p.parent.name, p.stem) for p in CONF.glob("*/*.yaml") if (p.parent.name, p.stem) not in SPECIAL)


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_fast_dev_run(tmp_path, group, option):
    overrides = [f"{group}={option}"]
    if group != "debug":
        overrides.append("debug=fast_dev_run")
    if group == "debug" and option in ("overfit_batches", "profiler"):
        overrides += ["data=digits", "trainer.max_epochs=2"]
    summary = train(make_cfg(tmp_path, *overrides))
    assert summary["status"] == "completed"
    assert 0.0 <= summary["test"]["test/acc"] <= 1.0
    assert torch.isfinite(torch.tensor(summary["test"]["test/loss"]))
    assert json.loads((tmp_path / "summary.json").read_text())["num_parameters"] == summary["num_parameters"]


def test_gpu_trainer_without_gpu_is_a_clear_error(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: trainer=gpu is covered by the fast_dev_run test then")
    with pytest.raises(ConfigError, match="trainer=gpu"):
        train(make_cfg(tmp_path, "trainer=gpu", "debug=fast_dev_run"))


def test_ddp_two_cpu_processes(tmp_path):
    result = run_cli("trainer=ddp", "trainer.accelerator=cpu", "debug=fast_dev_run", "data=digits",
                     f"hydra.run.dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "completed"
