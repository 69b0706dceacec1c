"""Resume's parts without training: which config and checkpoint a run continues from, what it may change, saved
configs in this version's form, refused checkpoints. tests/test_reliability.py resumes real runs."""
from __future__ import annotations

import pytest
import torch
from hydra.utils import get_object
from omegaconf import OmegaConf

from trainlab.errors import ConfigError
from trainlab.run import resume
from trainlab.run.resume import SCHEDULER_RECORD, current_form, resumed_config

from conftest import make_cfg


def checkpoint_file(path, config=None, **contents):
    """A checkpoint as trainlab writes one: weights and, where given, the run's resolved config."""
    state = {"state_dict": {"net.0.weight": torch.zeros(2, 3)}, **contents}
    if config is not None:
        state["hyper_parameters"] = {"config": config}
    torch.save(state, path)
    return path


def saved_config(output_dir: str) -> dict:
    return {"paths": {"output_dir": output_dir, "log_dir": output_dir + "/logs", "elsewhere": output_dir + "2/x"},
            "data": {"data_dir": "/data", "batch_size": 64}, "trainer": {"max_epochs": 2}, "seed": 7}


def test_a_fresh_run_continues_from_nothing(tmp_path):
    cfg = make_cfg(tmp_path)
    assert resumed_config(cfg, []) == (cfg, None)


def test_a_checkpoint_file_continues_with_its_saved_config_moved_to_the_new_folder(tmp_path):
    ckpt = checkpoint_file(tmp_path / "old.ckpt", saved_config("/runs/a"))
    cfg = make_cfg(tmp_path / "new", f"ckpt_path={ckpt}")
    resumed, checkpoint = resumed_config(cfg, [f"ckpt_path={ckpt}"])
    new = str(tmp_path / "new")
    assert checkpoint == ckpt
    # The run folder and paths inside it move; a path that only starts with the same letters does not.
    assert OmegaConf.to_container(resumed.paths) == {"output_dir": new, "log_dir": new + "/logs",
                                                     "elsewhere": "/runs/a2/x"}
    assert resumed.data.data_dir == "/data" and resumed.data.batch_size == 64 and resumed.seed == 7
    assert resumed.resume == str(ckpt) and resumed.ckpt_path is None


def test_the_command_lines_keys_that_change_how_a_run_goes_on_are_carried(tmp_path):
    ckpt = checkpoint_file(tmp_path / "old.ckpt", saved_config("/runs/a"))
    overrides = [f"resume={ckpt}", "trainer.max_epochs=5", "+trainer.gradient_clip_val=1.0", "logger=csv",
                 "callbacks.early_stopping.patience=9", "threads=1", "print_config=false", "seed=3"]
    resumed, _ = resumed_config(make_cfg(tmp_path / "new", *overrides), overrides)
    assert resumed.trainer.max_epochs == 5 and resumed.trainer.gradient_clip_val == 1.0
    assert list(resumed.logger) == ["csv"] and resumed.callbacks.early_stopping.patience == 9
    assert resumed.threads == 1 and resumed.print_config is False
    assert resumed.seed == 7  # a sweep's seed: the run keeps its own


@pytest.mark.parametrize("change", ["optim=sgd", "model.width=64", "trainer.precision=64-true", "trainer=ddp"])
def test_a_key_that_would_change_what_was_trained_is_refused_with_what_may_change(tmp_path, change):
    ckpt = checkpoint_file(tmp_path / "old.ckpt", saved_config("/runs/a"))
    with pytest.raises(ConfigError) as refused:
        resumed_config(make_cfg(tmp_path / "new", f"ckpt_path={ckpt}"), [f"ckpt_path={ckpt}", change])
    assert refused.value.key == "ckpt_path"
    assert str(refused.value) == (f"ckpt_path: {change.split('=')[0]}=... would change what was trained: a continued "
                                  "run can change trainer, callbacks, logger keys (trainer.max_epochs=20), or train anew")


def test_a_run_folder_continues_in_place_from_its_last_checkpoint(tmp_path):
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    checkpoint_file(tmp_path / "run" / "checkpoints" / "last.ckpt")
    (tmp_path / "run" / "config.yaml").write_text(OmegaConf.to_yaml(saved_config(str(tmp_path / "run"))))
    resumed, checkpoint = resumed_config(make_cfg(tmp_path / "new", f"resume={tmp_path / 'run'}"), [])
    assert checkpoint == tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert resumed.paths.output_dir == str(tmp_path / "run") and resumed.resume == str(tmp_path / "run")


@pytest.mark.parametrize(("make", "message"), [
    (lambda folder: None, "does not exist: give a run folder or a .ckpt file"),
    (lambda folder: folder.mkdir(), "is not a trainlab run folder (no config.yaml)"),
    (lambda folder: (folder.mkdir(), (folder / "config.yaml").write_text("seed: 1\n")),
     "has no checkpoints/last.ckpt: it ended before its first epoch; start it anew"),
    (lambda folder: checkpoint_file(folder), "holds no saved config (not written by this trainlab); resume its run "
                                             "folder instead (resume=<run folder>)"),
])
def test_what_cannot_be_continued_is_refused_naming_the_key(tmp_path, make, message):
    make(tmp_path / "given")
    with pytest.raises(ConfigError) as refused:
        resumed_config(make_cfg(tmp_path / "new", f"resume={tmp_path / 'given'}"), [])
    assert refused.value.key == "resume" and str(refused.value).endswith(message)


@pytest.mark.parametrize(("contents", "reason"), [
    (b"not a checkpoint", "corrupted or not a checkpoint; use another run or start anew"),
    (b"", "corrupted or not a checkpoint (EOFError); use another run or start anew"),
])
def test_a_file_that_is_no_checkpoint_is_refused(tmp_path, contents, reason):
    (tmp_path / "bad.ckpt").write_bytes(contents)
    with pytest.raises(ConfigError) as refused:
        resume.read_checkpoint(tmp_path / "bad.ckpt", "ckpt_path")
    assert refused.value.key == "ckpt_path" and str(refused.value) == f"ckpt_path: {tmp_path / 'bad.ckpt'} is {reason}"


@pytest.mark.parametrize(("state", "error"), [({"weights": 1}, "KeyError"), ([1, 2], "TypeError")])
def test_plain_data_without_weights_is_refused(tmp_path, state, error):
    torch.save(state, tmp_path / "plain.ckpt")
    with pytest.raises(ConfigError, match=rf"^resume: .* is corrupted or not a checkpoint \({error}\)"):
        resume.read_checkpoint(tmp_path / "plain.ckpt")


def test_a_checkpoint_of_another_shape_names_the_tensor_and_both_shapes(tmp_path):
    net = torch.nn.Sequential(torch.nn.Linear(3, 2))
    state = {"state_dict": {"0.weight": torch.zeros(4, 3)}}
    with pytest.raises(ConfigError, match=r"^eval: x.ckpt is of another model shape: 0.weight is \[4, 3\] there, "
                                          r"\[2, 3\] here$"):
        resume.check_shapes("x.ckpt", state, net, "eval")
    with pytest.raises(ConfigError, match=r"0.bias is missing there, \[2\] here$"):
        resume.check_shapes("x.ckpt", state | {"state_dict": {"0.weight": torch.zeros(2, 3)}}, net)
    resume.check_shapes("x.ckpt", {"state_dict": net.state_dict()}, net)


# Saved before trainlab's modules were grouped into wings, and each class's home now.
OLD_TARGETS = {"trainlab.data.ArrayDataModule": "trainlab.nn.data.ArrayDataModule",
               "trainlab.text.TextDataModule": "trainlab.nn.text.TextDataModule",
               "trainlab.models.MLP": "trainlab.nn.models.MLP",
               "trainlab.module.Classifier": "trainlab.nn.module.Classifier",
               "trainlab.optim.build_optimizer": "trainlab.nn.optim.build_optimizer",
               "trainlab.scalers.GlobalScaler": "trainlab.nn.scalers.GlobalScaler",
               "trainlab.console.EpochLines": "trainlab.run.console.EpochLines",
               "trainlab.hydra_callbacks.ReplicateSeeds": "trainlab.study.hydra_callbacks.ReplicateSeeds",
               "trainlab.callbacks.FitVerdict": "trainlab.nn.diagnostics.FitVerdict",
               "trainlab.callbacks.EpochTime": "trainlab.nn.diagnostics.EpochTime",
               "trainlab.callbacks.GradientFlow": "trainlab.nn.diagnostics.GradientFlow",
               "trainlab.callbacks.DeadUnits": "trainlab.nn.diagnostics.DeadUnits",
               "trainlab.callbacks.NaNGuard": "trainlab.nn.diagnostics.NaNGuard",
               "trainlab.callbacks.BestAndLastCheckpoint": "trainlab.nn.checkpoints.BestAndLastCheckpoint",
               "trainlab.callbacks.InterruptCheckpoint": "trainlab.nn.checkpoints.InterruptCheckpoint"}


def test_a_saved_config_names_each_moved_class_at_its_current_home():
    old = {"data": {"_target_": "trainlab.data.ArrayDataModule", "note": "trainlab.data.ArrayDataModule"},
           "callbacks": [{"_target_": target} for target in OLD_TARGETS],
           "model": {"_target_": "my_lab.data.Net"}}
    now = current_form(old)
    assert now["data"] == {"_target_": "trainlab.nn.data.ArrayDataModule", "note": "trainlab.data.ArrayDataModule"}
    assert [c["_target_"] for c in now["callbacks"]] == list(OLD_TARGETS.values())
    assert now["model"] == {"_target_": "my_lab.data.Net"}  # not trainlab's: left as it is


@pytest.mark.parametrize("target", OLD_TARGETS.values())
def test_every_current_home_exists(target):
    assert get_object(target)


def test_a_single_saved_logger_becomes_a_list_under_its_options_name():
    csv = {"_target_": "lightning.pytorch.loggers.CSVLogger", "save_dir": "logs"}
    assert current_form({"logger": csv})["logger"] == {"csv": csv}
    assert current_form({"logger": {"csv": csv}})["logger"] == {"csv": csv}
    assert current_form({"logger": None})["logger"] is None


def test_a_run_folder_is_opened_once(tmp_path):
    cfg = OmegaConf.create({"paths": {"output_dir": str(tmp_path / "deep" / "run")}})
    assert resume.open_run_folder(cfg, None) == tmp_path / "deep" / "run"
    for leftover in ("summary.json", "checkpoints/last.ckpt"):
        (tmp_path / "deep" / "run" / leftover).parent.mkdir(exist_ok=True)
        (tmp_path / "deep" / "run" / leftover).write_text("")
        with pytest.raises(ConfigError) as error:
            resume.open_run_folder(cfg, None)
        run = tmp_path / "deep" / "run"
        assert str(error.value) == (f"paths.output_dir: {run} already holds a run; continue it with resume={run}, or "
                                    "train into a new folder (another hydra.run.dir, or none for a fresh one)")
        assert resume.open_run_folder(cfg, tmp_path / "deep" / "run" / "checkpoints" / "last.ckpt")
        (tmp_path / "deep" / "run" / leftover).unlink()


def test_a_requeued_job_continues_from_its_folders_last_checkpoint(tmp_path, submitit_job):
    cfg = make_cfg(tmp_path)
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / SCHEDULER_RECORD).write_text('{"job": "4242", "attempts": 1}')
    assert resumed_config(cfg, [])[1] is None  # the first attempt ended before its first epoch
    checkpoint_file(tmp_path / "checkpoints" / "last.ckpt")
    assert resumed_config(cfg, []) == (cfg, tmp_path / "checkpoints" / "last.ckpt")


def test_the_saved_config_is_resolved(tmp_path):
    resume.save_config(tmp_path, OmegaConf.create({"a": 2, "b": "${a}"}))
    assert (tmp_path / "config.yaml").read_text() == "a: 2\nb: 2\n"  # no ${a} left: OmegaConf would resolve it on compare


def test_a_corrupted_checkpoint_file_is_refused_under_the_key_that_named_it(tmp_path):
    (tmp_path / "bad.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="is corrupted") as refused:
        resumed_config(make_cfg(tmp_path / "new", f"ckpt_path={tmp_path / 'bad.ckpt'}"), [])
    assert refused.value.key == "ckpt_path"


def test_weights_to_resume_from_of_another_shape_name_their_file(tmp_path):
    ckpt = checkpoint_file(tmp_path / "old.ckpt")
    with pytest.raises(ConfigError, match=rf"^resume: {ckpt} is of another model shape: net.0.weight is \[2, 3\]"):
        resume.check_checkpoint(ckpt, torch.nn.ModuleDict({"net": torch.nn.Sequential(torch.nn.Linear(3, 4))}))


class Exploit:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_a_checkpoint_holding_more_than_plain_data_is_refused_unopened(tmp_path, capsys):
    ckpt = checkpoint_file(tmp_path / "tampered.ckpt", payload=Exploit())
    with pytest.raises(ConfigError) as refused:
        resume.read_checkpoint(ckpt, "ckpt_path")
    assert str(refused.value) == (f"ckpt_path: {ckpt} holds objects other than tensors and plain data, so it is refused "
                                  "(checkpoints load with weights_only=True); use a checkpoint trainlab wrote")
    assert "must never run" not in capsys.readouterr().out
