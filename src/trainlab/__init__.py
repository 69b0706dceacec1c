"""trainlab: study how training techniques change a network's fit."""
import sys
from pathlib import Path

__version__ = "0.1.0"

CONF = Path(__file__).resolve().parent / "conf"  # the config groups, shipped inside the package
CONF_MODULE = "trainlab.conf"  # the same, as Hydra names a config package: pkg://trainlab.conf


def import_from_cwd() -> None:
    """A user's own classes (model._target_: my_nets.MyNet) import from the folder a command runs in, as under
    `python -m`; last on the path, so a local file never shadows an installed module."""
    if str(Path.cwd()) not in sys.path:
        sys.path.append(str(Path.cwd()))
