"""Jobs on a cluster: the SLURM presets follow the trainer, a requeued job is known by its scheduler's id, and each
job's torch threads follow the CPUs it was given. A requeue end to end (submitit_local) is in test_experiments."""
from __future__ import annotations

from datetime import timedelta

import pytest
from hydra.utils import instantiate
from lightning.pytorch.strategies import DDPStrategy
from omegaconf import OmegaConf

from trainlab.errors import ConfigError
from trainlab.run.build import compose_config
from trainlab.run.job import scheduler_job
from trainlab.run.pipeline import job_threads
from trainlab.run.resume import SCHEDULER_RECORD, earlier_attempts, note_attempt, open_run_folder
from trainlab.run.world import check_world, run_name

from conftest import run_cli


def launcher(*overrides: str) -> dict:
    cfg = compose_config(*overrides, output_dir="outputs", return_hydra_config=True)
    return OmegaConf.to_container(cfg.hydra.launcher, resolve=True)


@pytest.mark.parametrize(("overrides", "nodes", "tasks", "gpus", "cpus"), [
    (("hydra/launcher=slurm_gpu", "trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2"), 2, 4, 4, 8),
    (("hydra/launcher=slurm_gpu", "trainer=gpu"), 1, 1, 1, 8),
    (("hydra/launcher=slurm_cpu",), 1, 1, None, 4),
    (("hydra/launcher=slurm_cpu", "trainer=ddp", "trainer.num_nodes=3"), 3, 2, None, 4),
])
def test_slurm_presets_ask_for_the_nodes_tasks_and_gpus_the_trainer_uses(overrides, nodes, tasks, gpus, cpus):
    got = launcher(*overrides)
    assert got["_target_"] == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert (got["nodes"], got["tasks_per_node"], got["gpus_per_node"], got["cpus_per_task"]) == (nodes, tasks, gpus, cpus)
    assert got["max_num_timeout"] == 3  # requeued after a time limit; the default 0 would give up at the first


def test_a_job_is_known_by_its_schedulers_id_only_under_submitit(monkeypatch, submitit_job):
    assert scheduler_job() == "4242"
    monkeypatch.delenv("SUBMITIT_EXECUTOR")
    assert scheduler_job() is None


def test_attempts_of_one_scheduler_job_are_counted_in_its_run_folder(tmp_path, submitit_job):
    assert earlier_attempts(tmp_path) == 0 and note_attempt(tmp_path) == 0
    assert earlier_attempts(tmp_path) == 1 and note_attempt(tmp_path) == 1 and earlier_attempts(tmp_path) == 2
    submitit_job.setenv("SUBMITIT_LOCAL_JOB_ID", "7")  # another job in this folder: not a requeue of it
    assert earlier_attempts(tmp_path) == 0


def test_only_rank_0_of_a_job_records_its_attempts(tmp_path, submitit_job):
    submitit_job.setenv("SUBMITIT_LOCAL_GLOBALID", "1")
    assert note_attempt(tmp_path) == 0 and not (tmp_path / SCHEDULER_RECORD).exists()
    submitit_job.setenv("SUBMITIT_LOCAL_GLOBALID", "0")
    assert note_attempt(tmp_path) == 0 and [p.name for p in tmp_path.iterdir()] == [SCHEDULER_RECORD]


def test_a_requeued_attempt_may_open_its_own_run_folder_and_no_other_may(tmp_path, submitit_job):
    cfg = OmegaConf.create({"paths": {"output_dir": str(tmp_path)}})
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "interrupted.ckpt").write_bytes(b"")
    (tmp_path / SCHEDULER_RECORD).write_text('{"job": "4242", "attempts": 1}')
    assert open_run_folder(cfg, None) == tmp_path
    submitit_job.setenv("SUBMITIT_LOCAL_JOB_ID", "7")
    with pytest.raises(ConfigError, match="^paths.output_dir: .* already holds a run"):
        open_run_folder(cfg, None)


@pytest.mark.parametrize(("launcher_target", "cpus", "threads"), [
    ("hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher", None, 1),
    ("hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher", 8, 8),
    ("hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher", None, 1),
    ("hydra._internal.core_plugins.basic_launcher.BasicLauncher", None, None),  # torch's default
])
def test_each_jobs_torch_threads_follow_the_cpus_it_was_given(launcher_target, cpus, threads):
    assert job_threads({"launcher": launcher_target, "cpus_per_task": cpus}) == threads


TORCHRUN_NODE = {"TORCHELASTIC_RUN_ID": "lab-7", "WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0", "GROUP_RANK": "0",
                 "LOCAL_WORLD_SIZE": "1"}


@pytest.mark.parametrize(("environment", "trainer", "says"), [
    ({}, {"num_nodes": 2, "devices": 1}, "2 nodes, but no launcher started this process"),
    (TORCHRUN_NODE, {"num_nodes": 3, "devices": 1}, "3 nodes x 1 devices is 3 processes, but torchrun started 2"),
    ({"SLURM_NTASKS": "4", "SLURM_JOB_NAME": "train"}, {"num_nodes": 2, "devices": 4},
     "2 nodes x 4 devices is 8 processes, but srun started 4"),
])
def test_several_nodes_without_their_processes_are_refused_at_once(monkeypatch, environment, trainer, says):
    for name in ("TORCHELASTIC_RUN_ID", "SLURM_NTASKS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=f"^trainer.num_nodes: {says}.*torchrun --nnodes") as refused:
        check_world(OmegaConf.create(trainer))
    assert "srun" in str(refused.value)


@pytest.mark.parametrize(("environment", "trainer"), [
    ({}, {"num_nodes": 1, "devices": 2}),  # one node: Lightning starts its own processes
    (TORCHRUN_NODE, {"num_nodes": 2, "devices": 1}),
    ({"SLURM_NTASKS": "8", "SLURM_JOB_NAME": "train"}, {"num_nodes": 2, "devices": 4}),
])
def test_a_world_launched_as_the_trainer_expects_passes(monkeypatch, environment, trainer):
    monkeypatch.delenv("TORCHELASTIC_RUN_ID", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    check_world(OmegaConf.create(trainer))


@pytest.mark.parametrize(("environment", "name"), [
    ({}, "2026-12-03_10-00-00_000000"),
    ({"TORCHELASTIC_RUN_ID": "lab-7"}, "torchrun-lab-7"),
    ({"TORCHELASTIC_RUN_ID": "none"}, "2026-12-03_10-00-00_000000"),  # torchrun's default id: no shared name
    ({"SLURM_STEP_NUM_TASKS": "8", "SLURM_JOB_ID": "991", "SLURM_STEP_ID": "2"}, "slurm-991.2"),
    ({"SLURM_STEP_NUM_TASKS": "1", "SLURM_JOB_ID": "991", "SLURM_STEP_ID": "0"}, "2026-12-03_10-00-00_000000"),
    ({"SLURM_NTASKS": "8", "SLURM_JOB_ID": "991"}, "2026-12-03_10-00-00_000000"),  # the batch script, no srun
])
def test_the_processes_of_one_launch_share_one_run_folder_name(monkeypatch, environment, name):
    for variable in ("TORCHELASTIC_RUN_ID", "SLURM_NTASKS", "SLURM_JOB_ID", "SLURM_STEP_ID", "SLURM_STEP_NUM_TASKS"):
        monkeypatch.delenv(variable, raising=False)
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)
    assert run_name("2026-12-03_10-00-00_000000") == name


def test_the_ddp_preset_states_its_world_timeout_and_syncs_batch_norm():
    cfg = compose_config("trainer=ddp", output_dir="outputs")
    strategy = instantiate(cfg.trainer.strategy)
    assert isinstance(strategy, DDPStrategy) and strategy._timeout == timedelta(seconds=300)  # pinned: private
    assert cfg.trainer.sync_batchnorm is True


@pytest.mark.full  # a subprocess: the slow tier
def test_num_nodes_without_a_launcher_exits_2_at_once_writing_nothing(tmp_path):
    result = run_cli("trainer=ddp", "trainer.devices=1", "trainer.num_nodes=2", "data=digits",
                     f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode == 2 and result.stderr.startswith("error: trainer.num_nodes: 2 nodes, but no launcher")
    assert not (tmp_path / "run").exists()
