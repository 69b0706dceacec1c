"""Entry point: `python eval.py ckpt_path=<file.ckpt>` (lightning-hydra-template's form) or `python eval.py <run folder>`;
`trainlab-eval` is the same (see --help)."""
import sys

from trainlab.run.evaluate import main_eval

if __name__ == "__main__":
    sys.exit(main_eval())
