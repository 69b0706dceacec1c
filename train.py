"""Entry point: `python train.py [group=option ...] [key=value ...]` (see README); `trainlab-train` is the same."""
from trainlab.run.cli import main

if __name__ == "__main__":
    main()
