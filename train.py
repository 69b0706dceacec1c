"""Entry point: `python train.py [group=option ...] [key=value ...]` (see README)."""
import sys

import hydra
from omegaconf import DictConfig, OmegaConf


def replicate_seeds(replicates, seed) -> str:
    """The sweep's `seed` values for `replicates=N`: N seeds from `seed` on (seed=42 replicates=3: 42,43,44)."""
    if not isinstance(replicates, int) or isinstance(replicates, bool) or replicates < 1:
        print(f"error: replicates: must be an integer >= 1 (runs per setting, one seed each), got {replicates!r}",
              file=sys.stderr)
        raise SystemExit(2)
    return str(seed) if replicates == 1 else f"range({seed},{seed + replicates})"


OmegaConf.register_new_resolver("replicate_seeds", replicate_seeds, replace=True)


@hydra.main(config_path="conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    # Imported here so that `--help` and `--cfg job` never pay for importing torch.
    from trainlab.train import run_from_cli

    return run_from_cli(cfg)


if __name__ == "__main__":
    main()
