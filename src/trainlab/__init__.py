"""trainlab: study how training techniques change a network's fit."""
from pathlib import Path

__version__ = "0.1.0"

CONF = Path(__file__).resolve().parent / "conf"  # the config groups, shipped inside the package
CONF_MODULE = "trainlab.conf"  # the same, as Hydra names a config package: pkg://trainlab.conf
