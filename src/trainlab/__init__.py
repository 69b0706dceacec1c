"""trainlab: study how training techniques change a network's fit."""
from pathlib import Path

__version__ = "0.1.0"

CONF = Path(__file__).resolve().parents[2] / "conf"  # the config groups, beside the source (an editable install)
