"""Splitting and standardisation: how raw arrays become a `Dataset`, for every loader.

Splitting is seeded and deterministic, stratified by class for classification where every
class has enough samples. With `standardize=True`, inputs are shifted and scaled to mean 0 and
standard deviation 1 with the statistics of the *training part only* (applied to both parts):
per feature for tables, per colour channel for images (4-D inputs); constant features are only
shifted. Regression targets are standardised the same way; `Dataset.y_mean` and
`Dataset.y_std` map predictions back. `_finish` is the one exit of every loader.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from keras_sgdplus.lab.datasets.registry import Dataset, DatasetError, DatasetInfo


def training_size(n_samples: int, validation_split: float) -> int:
    """How many of `n_samples` the split keeps for training: `n - ceil(validation_split * n)`."""
    return n_samples - math.ceil(validation_split * n_samples)


def _split_indices(
    y: np.ndarray, classification: bool, validation_split: float, seed: int, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/validation indices, stratified by class where every class allows it."""
    n = len(y)
    n_val = n - training_size(n, validation_split)
    if n - n_val < 1:
        raise DatasetError(
            f"{what} has {n} samples: validation_split={validation_split} leaves none for "
            "training. Use a smaller validation_split or more data."
        )
    if n_val == 0:
        return np.random.default_rng(seed).permutation(n), np.zeros(0, dtype=np.int64)
    stratify = None
    if classification:
        _, counts = np.unique(y, return_counts=True)
        if counts.min() >= 2 and min(n_val, n - n_val) >= len(counts):
            stratify = y
    from sklearn.model_selection import train_test_split

    train, val = train_test_split(
        np.arange(n), test_size=n_val, random_state=seed, shuffle=True, stratify=stratify
    )
    return train, val


def _moments(x: np.ndarray, per_channel: bool) -> tuple[np.ndarray, np.ndarray]:
    if per_channel:  # one channel at a time keeps the float64 temporaries small
        mean = np.array([x[..., c].mean(dtype=np.float64) for c in range(x.shape[-1])])
        std = np.array([x[..., c].std(dtype=np.float64) for c in range(x.shape[-1])])
    else:
        mean = x.mean(axis=0, dtype=np.float64)
        std = x.std(axis=0, dtype=np.float64)
    std = np.where(std > 1e-12, std, 1.0)  # constant features are only shifted
    return mean.astype(np.float32), std.astype(np.float32)


def _finish(
    info: DatasetInfo,
    x: np.ndarray,
    y: np.ndarray,
    *,
    validation_split: float,
    standardize: bool,
    seed: int,
    class_names: tuple[str, ...] | None = None,
    feature_names: tuple[str, ...] | None = None,
) -> Dataset:
    """Split, convert and (optionally) standardise; the Dataset's info gets the real size."""
    classification = info.task != "regression"
    train, val = _split_indices(y, classification, validation_split, seed, repr(info.name))
    y = y.astype(np.int64 if classification else np.float32, copy=False)
    x_train = x[train].astype(np.float32, copy=False)  # fancy indexing copied already
    x_val = x[val].astype(np.float32, copy=False)
    y_train, y_val = y[train], y[val]
    result = Dataset(
        info=dataclasses.replace(info, size=len(y), input_shape=tuple(x.shape[1:])),
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        class_names=class_names,
        feature_names=feature_names,
    )
    if standardize:
        result.x_mean, result.x_std = _moments(x_train, per_channel=x.ndim == 4)
        for part in (x_train, x_val):
            part -= result.x_mean
            part /= result.x_std
        if not classification:
            result.y_mean, result.y_std = _moments(y_train, per_channel=False)
            result.y_train = (y_train - result.y_mean) / result.y_std
            result.y_val = (y_val - result.y_mean) / result.y_std
    return result
