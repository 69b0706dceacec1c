"""Entry point: `python train.py [group=option ...] [key=value ...]` (see README)."""
import hydra
from omegaconf import DictConfig


@hydra.main(config_path="conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    # Imported here so that `--help` and `--cfg job` never pay for importing torch.
    from trainlab.train import run_from_cli

    return run_from_cli(cfg)


if __name__ == "__main__":
    main()
