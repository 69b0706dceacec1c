"""What a run prints: one line per epoch off a terminal, each message once, the config tree, the run folder."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import lightning as L
import pytest

from trainlab.nn.module import STEP_LOSS
from trainlab.run import console
from trainlab.run.build import build_run
from trainlab.run.pipeline import train_and_test

from conftest import ROOT, make_cfg

LOG_PREFIX = re.compile(r"^(\[[^\]]*\]){3} - |^[A-Z]+: ")


@pytest.mark.full
def test_piped_output_has_no_redraws_and_each_message_once(tmp_path):
    # Warnings stay on (no PYTHONWARNINGS=ignore): the LeafSpec deprecation must be gone for the user too.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONWARNINGS"}
    done = subprocess.run([sys.executable, str(ROOT / "train.py"), "data=digits", "trainer.max_epochs=2",
                           f"hydra.run.dir={tmp_path}"], cwd=ROOT, env=env, timeout=300,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert done.returncode == 0, done.stdout[-2000:]
    out = done.stdout
    assert "\r" not in out and "\x1b[" not in out  # no bar redraws, no cursor moves or colours
    assert "Tip" not in out and "LeafSpec" not in out
    # Every line but the config tree's, without the log prefixes ("[time][logger][INFO] - ", Lightning's "INFO: ").
    messages = [LOG_PREFIX.sub("", line) for line in out.splitlines() if line and line[0] not in "│├└ "]
    assert sum("GPU available" in m for m in messages) == 1
    assert len(messages) == len(set(messages)), messages
    epochs = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in epochs] == ["0", "1"]
    assert "optim" in out and "lr: 0.001" in out  # the config tree, resolved
    assert out.rstrip().endswith(f"run folder: {tmp_path}")


def test_progress_bar_is_epoch_lines_off_a_terminal(monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False)
    assert isinstance(console.progress_bar(), console.EpochLines)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert isinstance(console.progress_bar(), console.ProgressBars)


def test_epoch_lines_show_the_recorded_metrics(tmp_path, capsys):
    summary = train_and_test(make_cfg(tmp_path, "data=digits", "trainer.max_epochs=2", "logger=none"))
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    assert len(lines) == 2
    for line, epoch in zip(lines, summary["history"], strict=True):
        shown = dict(zip(line.split()[2:-2:2], line.split()[3:-2:2], strict=True))
        assert line.split()[1] == str(epoch["epoch"])
        assert shown == {key: f"{epoch[key]:.4f}" for key in console.EPOCH_KEYS}


def test_config_tree_and_epoch_lines_can_be_switched_off(tmp_path, capsys):
    train_and_test(make_cfg(tmp_path, "data=digits", "trainer.max_epochs=1", "logger=none", "print_config=false",
                            "callbacks.progress_bar.refresh_rate=0"))
    assert capsys.readouterr().out == ""


def test_config_tree_shows_resolved_values(tmp_path, capsys):
    console.print_config(make_cfg(tmp_path, "optim=sgd", "optim.lr=0.25"))
    out = capsys.readouterr().out
    assert "torch.optim.SGD" in out and "lr: 0.25" in out
    assert f"dirpath: {tmp_path}/checkpoints" in out.replace("\n│       ", "") and "${" not in out


def test_config_tree_prints_brackets_as_they_are(tmp_path, capsys):
    console.print_config(make_cfg(tmp_path, "optimized_metric='[red]val/acc[/x]'"))
    assert "optimized_metric: [red]val/acc[/x]" in capsys.readouterr().out


def fit_with_bars(tmp_path, spy: L.Callback, **trainer_options) -> None:
    """A short digits run with trainlab's bars redrawn every step, and `spy` watching them."""
    run = build_run(make_cfg(tmp_path, "data=digits", "logger=none", "callbacks=none"))
    spy.bars = console.ProgressBars(refresh_rate=1)
    trainer = L.Trainer(max_epochs=1, limit_val_batches=1, logger=False, enable_checkpointing=False,
                        enable_model_summary=False, callbacks=[spy.bars, spy], num_sanity_val_steps=0, **trainer_options)
    trainer.fit(run.module, datamodule=run.datamodule)


def test_bars_name_the_eval_mode_train_sample(tmp_path):
    seen = []

    class Descriptions(L.Callback):
        def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
            seen.append(self.bars.val_progress_bar.desc.rstrip(": "))

    fit_with_bars(tmp_path, Descriptions(), limit_train_batches=2)
    assert seen == ["Validation (val split)", "Validation (train sample, eval mode)"]


def test_bars_show_the_last_logged_step_loss(tmp_path):
    shown = []

    class Postfix(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            shown.append((self.bars.train_progress_bar.postfix or "",
                          self.bars.get_metrics(trainer, pl_module).get(STEP_LOSS), outputs["loss"].item()))

    fit_with_bars(tmp_path, Postfix(), limit_train_batches=3, log_every_n_steps=1)
    assert len(shown) == 3
    for postfix, shown_loss, loss in shown:
        assert shown_loss == pytest.approx(loss) and f"{STEP_LOSS}=" in postfix
