"""Several processes, several nodes: the launched world is checked before Lightning waits for it, a world that never
forms fails within trainer=ddp's timeout with one line, and every process of one launch writes into one run folder.
"""
from __future__ import annotations

import os

from omegaconf import DictConfig, OmegaConf

from trainlab.errors import ConfigError, TrainlabError, first_line

HOW = ("start one process per node: torchrun --nnodes {nodes} --nproc-per-node {devices} --rdzv-id <id> "
       "--rdzv-backend c10d --rdzv-endpoint <first node>:29400 train.py ..., or srun under SLURM "
       "(hydra/launcher=slurm_gpu); docs/machines.md")


def launched_world() -> tuple[str, int] | None:
    """The launcher that started this process, as Lightning detects it, and how many processes it started in all;
    None without one."""
    from lightning.fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment  # in a job only

    if TorchElasticEnvironment.detect():
        return "torchrun", int(os.environ["WORLD_SIZE"])
    if SLURMEnvironment.detect():
        return "srun", int(os.environ["SLURM_NTASKS"])
    return None


def check_world(trainer: DictConfig) -> None:
    """trainer.num_nodes > 1 needs a launcher that started the processes of every node, as many as the trainer
    expects: otherwise rank 0 would wait for peers that never come."""
    nodes, devices = trainer.get("num_nodes") or 1, trainer.get("devices")
    if nodes == 1:
        return
    how = HOW.format(nodes=nodes, devices=devices)
    launched = launched_world()
    if launched is None:
        raise ConfigError("trainer.num_nodes", f"{nodes} nodes, but no launcher started this process, so the other "
                          f"nodes would never join; {how}")
    name, size = launched
    if isinstance(devices, int) and size != nodes * devices:
        raise ConfigError("trainer.num_nodes", f"{nodes} nodes x {devices} devices is {nodes * devices} processes, "
                          f"but {name} started {size} (WORLD_SIZE / SLURM_NTASKS); make them agree: {how}")


def not_formed(error: BaseException, trainer: DictConfig) -> TrainlabError:
    """The one line for a world whose processes did not all join in time (a missing node, a wrong address)."""
    strategy = trainer.get("strategy")
    seconds = OmegaConf.select(strategy, "timeout.seconds") if isinstance(strategy, DictConfig) else None
    within = f" within {seconds} s (trainer.strategy.timeout.seconds)" if seconds else ""
    nodes, devices = trainer.get("num_nodes") or 1, trainer.get("devices")
    return TrainlabError(f"the DDP processes did not all join{within}: {first_line(error)}; "
                         f"{HOW.format(nodes=nodes, devices=devices)}")


def run_name(stamp: str) -> str:
    """The run folder's name: `stamp` (the time), except for the processes of one distributed launch, each of which
    would stamp its own time: they share the launcher's id for it (torchrun's --rdzv-id, SLURM's job and step)."""
    run_id = os.environ.get("TORCHELASTIC_RUN_ID")
    if run_id not in (None, "", "none"):
        return f"torchrun-{run_id}"
    if "SLURM_STEP_ID" in os.environ and int(os.environ.get("SLURM_STEP_NUM_TASKS", "1")) > 1:  # tasks of one srun
        return f"slurm-{os.environ['SLURM_JOB_ID']}.{os.environ['SLURM_STEP_ID']}"
    return stamp
