"""The built-in datasets' registry, and the types every loader returns.

Owns `DatasetInfo` (what a dataset is), `Dataset` (a loaded, split dataset), `DatasetError`,
the tasks a dataset can have, and `DATASETS`: the built-in sets in the order the CLI and the
dashboard list them. It imports nothing else of the package; the loaders import it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TASKS = ("binary", "multiclass", "regression")
#: Default number of points of the generated 2-D sets.
DEFAULT_GENERATED_SAMPLES = 500


class DatasetError(ValueError):
    """A dataset could not be loaded; the message names what is wrong and what to do."""


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset is: its registry key, task, per-sample shape, size and origin."""

    name: str
    description: str
    task: str  # "binary" | "multiclass" | "regression"
    input_shape: tuple[int, ...]
    num_classes: int | None
    size: int
    source: str  # "bundled" | "generated" | "download" | "user"


@dataclass
class Dataset:
    """A dataset split into training and validation parts, ready for `model.fit`.

    `x_*` are float32; `y_*` are int64 class ids of shape (n,) for classification and float32
    of shape (n,) or (n, k) for regression. The standardisation statistics (`x_mean`, `x_std`,
    and for regression `y_mean`, `y_std`) are None when `standardize=False`.
    """

    info: DatasetInfo
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    class_names: tuple[str, ...] | None = None
    feature_names: tuple[str, ...] | None = None
    x_mean: np.ndarray | None = None
    x_std: np.ndarray | None = None
    y_mean: np.ndarray | None = None
    y_std: np.ndarray | None = None


def _info(name, description, task, shape, classes, size, source) -> DatasetInfo:
    return DatasetInfo(name, description, task, shape, classes, size, source)


_REGISTRY = [
    _info("digits", "Handwritten digits 0-9, 8x8 pixels as 64 features (scikit-learn).",
          "multiclass", (64,), 10, 1797, "bundled"),
    _info("iris", "Iris flowers: 4 measurements, 3 species (scikit-learn).",
          "multiclass", (4,), 3, 150, "bundled"),
    _info("wine", "Wines: 13 chemical measurements, 3 cultivars (scikit-learn).",
          "multiclass", (13,), 3, 178, "bundled"),
    _info("breast_cancer", "Breast tumours: 30 features, malignant or benign (scikit-learn).",
          "binary", (30,), 2, 569, "bundled"),
    _info("diabetes", "Diabetes progression after a year from 10 baseline values (scikit-learn).",
          "regression", (10,), None, 442, "bundled"),
    _info("circle", "A disc inside a ring, 2-D (as in TensorFlow Playground).",
          "binary", (2,), 2, DEFAULT_GENERATED_SAMPLES, "generated"),
    _info("xor", "Four quadrants, the class is the sign of x1*x2, 2-D.",
          "binary", (2,), 2, DEFAULT_GENERATED_SAMPLES, "generated"),
    _info("gaussian", "Two Gaussian blobs, 2-D.",
          "binary", (2,), 2, DEFAULT_GENERATED_SAMPLES, "generated"),
    _info("spiral", "Two interleaved spirals, 2-D.",
          "binary", (2,), 2, DEFAULT_GENERATED_SAMPLES, "generated"),
    _info("plane", "Regression on a tilted plane, y = 2*x1 - x2 + noise, 2-D.",
          "regression", (2,), None, DEFAULT_GENERATED_SAMPLES, "generated"),
    _info("mnist", "Handwritten digits, 28x28 grayscale images (Keras download, 11 MB).",
          "multiclass", (28, 28, 1), 10, 70000, "download"),
    _info("fashion_mnist", "Clothing, 28x28 grayscale images in 10 classes (Keras, 30 MB).",
          "multiclass", (28, 28, 1), 10, 70000, "download"),
    _info("cifar10", "Small colour photos, 32x32 RGB in 10 classes (Keras download, 163 MB).",
          "multiclass", (32, 32, 3), 10, 60000, "download"),
]  # fmt: skip

DATASETS: dict[str, DatasetInfo] = {info.name: info for info in _REGISTRY}


def list_datasets() -> list[DatasetInfo]:
    """The built-in datasets, in registry order."""
    return list(DATASETS.values())


def _registry_info(name: str) -> DatasetInfo:
    if not isinstance(name, str) or name not in DATASETS:
        raise DatasetError(
            f"Unknown dataset {name!r}. Choose one of: {', '.join(DATASETS)}; "
            "or load your own file with load_csv or load_npz."
        )
    return DATASETS[name]
