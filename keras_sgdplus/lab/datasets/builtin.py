"""`load_dataset`: a name of the registry to a split `Dataset`.

Checks the arguments once, takes the raw arrays from the module that owns the dataset's source
(`generated`, `bundled` or `downloads`), draws the optional seeded subset, and hands the rest
to `splits._finish`.
"""

from __future__ import annotations

import numpy as np

from keras_sgdplus.lab.datasets.bundled import _load_bundled
from keras_sgdplus.lab.datasets.checks import _check_common, _check_int
from keras_sgdplus.lab.datasets.downloads import _CLASS_NAMES, _KERAS_LOADERS, keras_cache_dir
from keras_sgdplus.lab.datasets.generated import generate_2d
from keras_sgdplus.lab.datasets.registry import (
    DEFAULT_GENERATED_SAMPLES,
    Dataset,
    DatasetError,
    _registry_info,
)
from keras_sgdplus.lab.datasets.splits import _finish


def load_dataset(
    name: str,
    *,
    validation_split: float = 0.2,
    standardize: bool = True,
    seed: int = 0,
    noise: float = 0.1,
    n_samples: int | None = None,
) -> Dataset:
    """Load a built-in dataset from `DATASETS`, split and (optionally) standardised.

    Args:
        name: a key of `DATASETS`, e.g. "digits", "spiral" or "mnist".
        validation_split: fraction of samples held out for validation, in [0, 1). Default 0.2.
            Downloaded sets pool Keras's train and test parts before splitting.
        standardize: standardise inputs (and regression targets) with the training part's
            statistics. Default True. Images are scaled to [0, 1] either way.
        seed: seeds the split, and the points of generated sets. Default 0.
        noise: noise of the generated 2-D sets (see `generate_2d`); ignored by others.
        n_samples: for generated sets, how many points (default 500); for the others, a seeded
            random subset of this size (default None: all samples).

    Raises:
        DatasetError: unknown name, bad argument, or a download that is neither cached nor
            possible (the message names the file and the folder to put it in).
    """
    info = _registry_info(name)
    validation_split, seed = _check_common(validation_split, seed)
    if n_samples is not None:
        n_samples = _check_int("n_samples", n_samples, 2)
    class_names: tuple[str, ...] | None = _CLASS_NAMES.get(name)
    feature_names: tuple[str, ...] | None = None

    if info.source == "generated":
        x, y = generate_2d(name, n_samples or DEFAULT_GENERATED_SAMPLES, noise, seed)
        if info.task != "regression":
            class_names = ("0", "1")
        feature_names = ("x1", "x2")
    else:
        if info.source == "bundled":
            x, y, feature_names, class_names = _load_bundled(name)
        else:
            x, y = _KERAS_LOADERS[name](keras_cache_dir())
            x = x.astype(np.float32)
            x /= 255.0
        if n_samples is not None:
            if n_samples > len(y):
                raise DatasetError(
                    f"{name!r} has {len(y)} samples; n_samples={n_samples} asks for more."
                )
            keep = np.sort(np.random.default_rng(seed).choice(len(y), n_samples, replace=False))
            x, y = x[keep], y[keep]
    return _finish(
        info,
        x,
        y,
        validation_split=validation_split,
        standardize=standardize,
        seed=seed,
        class_names=class_names,
        feature_names=feature_names,
    )
