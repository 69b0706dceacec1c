"""trainlab: study how training techniques change a network's fit."""
__version__ = "0.1.0"
