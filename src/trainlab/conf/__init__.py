"""trainlab's config groups, shipped with the package: Hydra reads them as `pkg://trainlab.conf`."""
