"""Entry point: `python train.py [group=option ...] [key=value ...]` (see README)."""
import hydra
from omegaconf import DictConfig, OmegaConf

from trainlab.errors import ConfigError, exit_with
from trainlab.schema import check_replicates


def replicate_seeds(replicates, seed) -> str:
    """The sweep's `seed` values for `replicates=N`: N seeds from `seed` on (seed=42 replicates=3: 42,43,44)."""
    try:
        check_replicates(replicates)
    except ConfigError as error:  # resolved while Hydra sets up the sweep: one line, not its traceback
        exit_with(error)
    return str(seed) if replicates == 1 else f"range({seed},{seed + replicates})"


OmegaConf.register_new_resolver("replicate_seeds", replicate_seeds, replace=True)


@hydra.main(config_path="conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    # Imported here so that `--help` and `--cfg job` never pay for importing torch.
    from trainlab.cli import run_job

    return run_job(cfg)


if __name__ == "__main__":
    main()
