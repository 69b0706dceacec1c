"""Feature scalers, each fitted on the training split alone (scikit-learn's fit/transform interface).

Imported when a split is first made: importing scikit-learn (and pandas with it) is start-up time that a run
on cached splits does not pay. Which to use, and what each does to MNIST's border pixels: docs/configuration.md
(the `data` row).
"""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.preprocessing import MinMaxScaler, StandardScaler


class GlobalScaler(TransformerMixin, BaseEstimator):
    """One mean and one standard deviation over every value of the training split: how images are scaled.

    Every feature keeps its place on one shared scale, so a pixel that is always blank in training and inked in a
    test image gets an ordinary value, not the hundreds a per-pixel z-score gives it.
    """

    def fit(self, x, y=None):
        x = np.asarray(x, dtype=np.float64)
        self.mean_, self.scale_ = float(x.mean()), float(x.std()) or 1.0
        return self

    def transform(self, x):
        return ((np.asarray(x, dtype=np.float64) - self.mean_) / self.scale_).astype(np.float32)


class ClippedStandardScaler(StandardScaler):
    """Per-feature z-scores clipped to [-max_z, max_z] (None: not clipped).

    A feature that barely varies in training has a tiny scale, so an ordinary value elsewhere becomes a z of
    hundreds; clipping bounds what one such feature can do to a sample's loss.
    """

    def __init__(self, *, max_z: float | None = 5.0, copy: bool = True, with_mean: bool = True, with_std: bool = True):
        super().__init__(copy=copy, with_mean=with_mean, with_std=with_std)
        self.max_z = max_z

    def transform(self, x, copy=None):
        z = super().transform(x, copy=copy)
        return z if self.max_z is None else np.clip(z, -self.max_z, self.max_z)


def make_scaler(name: str, max_z: float | None):
    """The unfitted scaler `data.scaler` names (None for `none`)."""
    return {"global": GlobalScaler, "standard": lambda: ClippedStandardScaler(max_z=max_z),
            "minmax": lambda: MinMaxScaler(clip=True), "none": lambda: None}[name]()
