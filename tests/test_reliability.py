"""Resume after a kill, interrupts, safe checkpoint loading."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
import torch

from trainlab.errors import ConfigError
from trainlab.run import pipeline
from trainlab.run.job import job_identity
from trainlab.run.pipeline import train_and_test

from conftest import ROOT, make_cfg, run_cli

RUN = ("data=digits", "trainer.max_epochs=4", "logger=csv", "callbacks.progress_bar.refresh_rate=0")


def with_tests_on_path(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]))


def contents(folder):
    """Every file below `folder` and its bytes: what "earlier runs stay intact" compares."""
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def signal_at(tmp_path, epoch, batch, name="SIGKILL"):
    return (f"+callbacks.signal={{_target_: killer.SignalAt, epoch: {epoch}, batch: {batch}, "
            f"marker: '{tmp_path / 'signalled'}', signal_name: {name}}}")


@pytest.mark.full
def test_resume_after_sigkill_mid_epoch_matches_an_uninterrupted_run(tmp_path, monkeypatch):
    # Val loss stops improving after epoch 3 of 0-5 on this split and scaling, so last.ckpt must be rewritten
    # without a new best.
    with_tests_on_path(monkeypatch)
    run = (*RUN, "trainer.max_epochs=6", "callbacks.early_stopping=null", "data.split_seed=0", "data.scaler=standard",
           "data.max_z=null")
    whole = run_cli(*run, f"hydra.run.dir={tmp_path / 'whole'}")
    assert whole.returncode == 0, whole.stderr[-2000:]
    killed = run_cli(*run, signal_at(tmp_path, epoch=5, batch=3), f"hydra.run.dir={tmp_path / 'killed'}")
    assert killed.returncode == -9 and not (tmp_path / "killed" / "summary.json").exists()
    expected = json.loads((tmp_path / "whole" / "summary.json").read_text())
    assert expected["best_epoch"] < 4
    # The resume starts in the epoch that was killed: last.ckpt holds the epoch before it, not the best.
    assert torch.load(tmp_path / "killed" / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 4
    resumed = run_cli(f"resume={tmp_path / 'killed'}", f"hydra.run.dir={tmp_path / 'resume_log'}")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    got = json.loads((tmp_path / "killed" / "summary.json").read_text())
    assert got["final"] == expected["final"] and got["test"] == expected["test"]
    assert [h["epoch"] for h in got["history"]] == list(range(6))


@pytest.mark.full
@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_interrupt_saves_a_checkpoint_before_exit(tmp_path, monkeypatch, name):
    with_tests_on_path(monkeypatch)
    result = run_cli(*RUN, signal_at(tmp_path, epoch=1, batch=2, name=name), f"hydra.run.dir={tmp_path}")
    assert result.returncode != 0
    state = torch.load(tmp_path / "checkpoints" / "interrupted.ckpt", weights_only=True)
    assert state["epoch"] == 1


def finished_run(tmp_path, *overrides):
    train_and_test(make_cfg(tmp_path, "data=digits", "trainer.max_epochs=1", "logger=none", *overrides))
    return tmp_path / "checkpoints" / "last.ckpt"


def test_resume_refuses_a_corrupted_checkpoint(tmp_path):
    finished_run(tmp_path).write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="corrupted"):
        train_and_test(make_cfg(tmp_path / "new", f"resume={tmp_path}"))


def test_resume_refuses_a_checkpoint_of_another_shape(tmp_path):
    finished_run(tmp_path)
    saved = (tmp_path / "config.yaml").read_text().replace("width: 512", "width: 256", 1)
    (tmp_path / "config.yaml").write_text(saved)
    with pytest.raises(ConfigError, match="another model shape"):
        train_and_test(make_cfg(tmp_path / "new", f"resume={tmp_path}"))


def test_resume_needs_a_run_folder_or_a_checkpoint_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist: give a run folder or a .ckpt file"):
        train_and_test(make_cfg(tmp_path / "new", f"resume={tmp_path / 'nowhere'}"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="not a trainlab run folder"):
        train_and_test(make_cfg(tmp_path / "new", f"resume={tmp_path / 'empty'}"))


def continued(monkeypatch, tmp_path, *overrides):
    """train_and_test as `python train.py <overrides>` runs it: Hydra reports the overrides to the job."""
    monkeypatch.setattr(pipeline, "job_identity", lambda: {**job_identity(), "overrides": list(overrides)})
    return train_and_test(make_cfg(tmp_path, *overrides))


@pytest.mark.parametrize("key", ["ckpt_path", "resume"])
def test_a_checkpoint_file_continues_in_a_new_folder_with_more_epochs(tmp_path, monkeypatch, key):
    short = ("data=digits", "logger=none", "callbacks.early_stopping=null")
    train_and_test(make_cfg(tmp_path / "first", *short, "trainer.max_epochs=2"))
    before = contents(tmp_path / "first")
    summary = continued(monkeypatch, tmp_path / "more", f"{key}={tmp_path / 'first/checkpoints/last.ckpt'}",
                        "trainer.max_epochs=4")
    whole = train_and_test(make_cfg(tmp_path / "whole", *short, "trainer.max_epochs=4"))
    assert summary["history"] == whole["history"]  # two epochs, then two more: the same as four at once
    assert summary["best_checkpoint"].startswith(str(tmp_path / "more" / "checkpoints"))
    assert contents(tmp_path / "first") == before  # the run continued from is untouched
    saved = (tmp_path / "more" / "config.yaml").read_text()
    assert saved.count(str(tmp_path / "first")) == 1  # `resume:` alone points there; every path moved


def test_a_resumed_run_stops_early_at_the_same_epoch_as_an_uninterrupted_one(tmp_path):
    # Any val loss drop under 0.05 is no progress: early stopping (patience 2) ends the run after a few epochs.
    run = ("data=digits", "trainer.max_epochs=30", "logger=none", "callbacks.early_stopping.min_delta=0.05",
           "callbacks.early_stopping.patience=2")
    whole = train_and_test(make_cfg(tmp_path / "whole", *run))
    stopped = whole["epochs_run"]
    assert 3 <= stopped < 30, "the case to test: early stopping ends the run"
    crash = (f"+callbacks.crash={{_target_: killer.CrashAt, epoch: {stopped - 1}, batch: 2, "
             f"marker: '{tmp_path / 'crashed_once'}'}}")
    with pytest.raises(RuntimeError, match="crash at epoch"):
        train_and_test(make_cfg(tmp_path / "crashed", *run, crash))
    resumed = train_and_test(make_cfg(tmp_path / "resume_log", f"resume={tmp_path / 'crashed'}"))
    assert resumed["epochs_run"] == stopped and resumed["history"] == whole["history"]
    assert resumed["test"] == whole["test"]
    trained = [len(s["diagnostics"]["epoch_time"]["seconds"]) for s in (whole, resumed)]
    assert trained == [stopped, 1]  # the resume trained the crashed epoch alone, not the run again


@pytest.mark.parametrize("change", ["optim=sgd", "optim.lr=0.1", "model.width=64", "data.split_seed=3",
                                    "trainer.precision=64-true"])
def test_a_continued_run_keeps_what_was_trained(tmp_path, monkeypatch, change):
    finished_run(tmp_path)
    before = contents(tmp_path)
    with pytest.raises(ConfigError, match=f"{change.split('=')[0]}=... would change what was trained"):
        continued(monkeypatch, tmp_path / "new", f"resume={tmp_path}", change)
    assert contents(tmp_path) == before


def test_a_refused_resume_leaves_the_run_folder_as_it_was(tmp_path, monkeypatch):
    finished_run(tmp_path)
    saved = (tmp_path / "config.yaml").read_text()
    (tmp_path / "config.yaml").write_text(saved.replace("width: 512", "width: 256", 1))  # another shape
    before = contents(tmp_path)
    with pytest.raises(ConfigError, match="another model shape"):
        continued(monkeypatch, tmp_path / "new", f"resume={tmp_path}", "trainer.max_epochs=3")
    assert contents(tmp_path) == before  # config.yaml not rewritten with the carried key


def test_a_sweeps_seed_does_not_reseed_a_continued_run(tmp_path, monkeypatch):
    finished_run(tmp_path, "seed=7")
    summary = continued(monkeypatch, tmp_path / "new", f"resume={tmp_path}", "seed=42", "trainer.max_epochs=2")
    assert summary["status"] == "completed" and "seed: 7" in (tmp_path / "config.yaml").read_text()


def test_a_checkpoint_without_a_saved_config_is_refused(tmp_path):
    last = finished_run(tmp_path)
    checkpoint = torch.load(last, weights_only=True)
    del checkpoint["hyper_parameters"]
    torch.save(checkpoint, last)
    with pytest.raises(ConfigError, match="holds no saved config"):
        train_and_test(make_cfg(tmp_path / "new", f"ckpt_path={last}"))


@pytest.mark.full
def test_no_secret_is_written(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "secret-key-0123456789abcdef0123456789abcdef")
    result = run_cli("logger=wandb", "data=digits", "trainer.max_epochs=1", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-2000:]
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert b"secret-key-0123456789" not in path.read_bytes(), path


@pytest.mark.full
def test_fp16_true_that_diverges_stops_with_the_checklist(tmp_path):
    result = run_cli("data=digits", "precision=16-true", "optim=sgd", "optim.lr=1e4", "logger=none",
                     f"hydra.run.dir={tmp_path}")
    assert result.returncode == 3
    assert "precision: 16-true" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.full
def test_ddp_two_processes_match_one_process_with_the_same_global_batch(tmp_path):
    common = ("data=digits", "trainer.max_epochs=3", "logger=none", "trainer.accelerator=cpu")
    single = run_cli(*common, "data.batch_size=64", f"hydra.run.dir={tmp_path / 'single'}")
    ddp = run_cli(*common, "trainer=ddp", "trainer.devices=2", "data.batch_size=32", f"hydra.run.dir={tmp_path / 'ddp'}")
    assert single.returncode == 0 and ddp.returncode == 0, ddp.stderr[-2000:]
    assert "MEMBER: 1/2" in ddp.stderr + ddp.stdout and "MEMBER: 2/2" in ddp.stderr + ddp.stdout  # two processes
    # Each rank takes its own half of the split: as many optimizer steps as one process with the whole batch.
    steps = [torch.load(tmp_path / name / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
             for name in ("single", "ddp")]
    assert steps == [3 * 20, 3 * 20]  # digits: 1,257 training samples, 20 batches of 64 (or 2 x 32)
    one, two = (json.loads((tmp_path / name / "summary.json").read_text())["final"] for name in ("single", "ddp"))
    # Each rank shuffles its own half, so the batches differ from the single process's: close, not equal.
    assert abs(one["val/acc"] - two["val/acc"]) < 0.05 and abs(one["val/loss"] - two["val/loss"]) < 0.1


def node_process(rank: int, world_size: int, port: int, cwd, *args: str) -> subprocess.Popen:
    """`python train.py` as torchrun starts it on node `rank` of `world_size` (one process per node, on loopback)."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "TORCHELASTIC_RUN_ID": "two-nodes", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(port), "WORLD_SIZE": str(world_size), "RANK": str(rank), "LOCAL_RANK": "0",
           "GROUP_RANK": str(rank), "LOCAL_WORLD_SIZE": "1", "NODE_RANK": str(rank)}
    return subprocess.Popen([sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.full
def test_two_nodes_train_together_into_one_run_folder(tmp_path):
    args = ("trainer=ddp", "trainer.devices=1", "trainer.num_nodes=2", "trainer.accelerator=cpu", "data=digits",
            "trainer.max_epochs=2", "logger=none", "norm=batch")  # batch norm: not synced on CPU, and no crash
    port = free_port()
    nodes = [node_process(rank, 2, port, tmp_path, *args) for rank in (0, 1)]
    outputs = [node.communicate(timeout=300) for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs[1][1][-2000:] + outputs[0][1][-2000:]
    (run,) = (tmp_path / "outputs" / "runs").iterdir()  # both ranks in one folder, named by torchrun's run id
    assert run.name == "torchrun-two-nodes"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed"
    # Each node trains on its own half of the split: 1,257 samples, 2 x 629 padded, in batches of 64 a node.
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 2 * 10


@pytest.mark.full
def test_a_world_that_never_forms_fails_within_its_timeout_with_one_line(tmp_path):
    args = ("trainer=ddp", "trainer.devices=1", "trainer.num_nodes=2", "trainer.accelerator=cpu", "data=digits",
            "logger=none", "trainer.strategy.timeout.seconds=5", f"hydra.run.dir={tmp_path / 'run'}")
    lonely = node_process(0, 2, free_port(), tmp_path, *args)  # node 1 never starts
    _, stderr = lonely.communicate(timeout=120)
    assert lonely.returncode == 1
    (line,) = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert line.startswith("error: the DDP processes did not all join within 5 s (trainer.strategy.timeout.seconds)")
    assert "torchrun --nnodes 2" in line and "Traceback" not in stderr


@pytest.mark.full
def test_ddp_multirun_writes_one_folder_per_job(tmp_path):
    result = run_cli("-m", "trainer=ddp", "trainer.accelerator=cpu", "debug=fast_dev_run", "data=digits",
                     "activation=relu,tanh", f"hydra.sweep.dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-2000:]
    jobs = [p for p in tmp_path.iterdir() if p.is_dir() and (p / "config.yaml").exists()]
    assert len(jobs) == 2 and all((job / "summary.json").exists() for job in jobs)


def test_disk_full_while_saving_is_one_message_and_keeps_earlier_runs(tmp_path, monkeypatch, capsys):
    import errno

    from lightning.fabric.plugins.io import torch_io

    from trainlab.run.cli import run_job

    earlier = tmp_path / "earlier"
    finished_run(earlier)
    before = contents(earlier)

    written = []

    def no_space(checkpoint, path, *args, **kwargs):  # what a full disk answers, for the file really being written
        written.append(str(path))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(torch_io, "_atomic_save", no_space)  # where Lightning writes every checkpoint
    with pytest.raises(SystemExit) as stopped:
        run_job(make_cfg(tmp_path / "new", "data=digits", "trainer.max_epochs=1", "logger=none"))
    assert stopped.value.code == 4
    assert written and written[0].startswith(str(tmp_path / "new" / "checkpoints"))
    message = capsys.readouterr().err.strip().splitlines()
    assert message[-1].startswith(f"error: cannot write {written[0]}: No space left on device")
    summary = json.loads((tmp_path / "new" / "summary.json").read_text())
    assert summary["status"] == "failed" and "No space left on device" in summary["error"]
    assert contents(earlier) == before


def test_output_folder_that_cannot_be_created_is_one_line_and_exit_4(tmp_path):
    earlier = tmp_path / "earlier"
    finished_run(earlier)
    before = contents(earlier)
    (tmp_path / "a_file").write_text("not a folder")
    for mode, key in (("", "hydra.run.dir"), ("-m", "hydra.sweep.dir")):
        result = run_cli(*filter(None, [mode]), "data=digits", "debug=fast_dev_run", f"{key}={tmp_path}/a_file/run")
        assert result.returncode == 4, result.stderr[-2000:]
        assert result.stderr.strip().splitlines() == [
            f"error: cannot write the output folder {tmp_path}/a_file/run: Not a directory; "
            f"choose a writable folder with {key}=... (earlier runs are untouched)"]
    assert contents(earlier) == before


def test_read_only_output_folder_is_refused_before_training(tmp_path, monkeypatch, capsys):
    import errno
    import tempfile

    from trainlab.study.hydra_callbacks import ensure_writable

    def read_only(*args, **kwargs):  # what a read-only mount answers (root ignores chmod, so simulate it)
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    with pytest.raises(SystemExit) as stopped:
        ensure_writable(str(tmp_path / "run"), "hydra.sweep.dir")
    assert stopped.value.code == 4
    # What trainlab adds to the system's answer: the folder, the key that chooses another, the reassurance.
    assert capsys.readouterr().err.strip() == (f"error: cannot write the output folder {tmp_path / 'run'}: Read-only "
                                               "file system; choose a writable folder with hydra.sweep.dir=... "
                                               "(earlier runs are untouched)")
    assert list((tmp_path / "run").iterdir()) == []


def test_training_into_a_folder_that_holds_a_run_is_refused_and_keeps_it(tmp_path, recwarn):
    finished_run(tmp_path)
    assert not [w for w in recwarn if "ckpt_path" in str(w.message)]  # no silent "resume from last" on a fresh run
    before = contents(tmp_path)
    with pytest.raises(ConfigError, match=f"already holds a run; continue it with resume={tmp_path}"):
        finished_run(tmp_path)
    assert contents(tmp_path) == before
