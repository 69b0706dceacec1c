"""What is trained: the networks, the LightningModule, optimizers, the data, and the callbacks that watch a fit.

Plain torch and Lightning; nothing here knows Hydra or the report."""
