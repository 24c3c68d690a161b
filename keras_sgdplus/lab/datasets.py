"""Datasets for the lab: a registry of built-in sets, and loaders for the user's own files.

Every loader returns a `Dataset`: float32 inputs, integer class ids (int64) for classification
or float32 targets for regression, already split into a training and a validation part.

- **bundled** (offline, from scikit-learn): digits, iris, wine, breast_cancer, diabetes.
- **generated** 2-D sets like TensorFlow Playground's: circle, xor, gaussian, spiral, and the
  regression "plane". Seeded; `noise` controls how much the classes overlap.
- **download** (through Keras, cached in `$KERAS_HOME/datasets`, `~/.keras/datasets` by
  default): mnist, fashion_mnist, cifar10. The same file names and folders as
  `keras.datasets.*.load_data()`, so files either one cached are used by both. Images stay
  images, `(28, 28, 1)` and `(32, 32, 3)` (channels last), scaled to [0, 1].
- **user**: `load_csv` (one column is the target) and `load_npz` (arrays `x` and `y`).

Splitting is seeded and deterministic, stratified by class for classification where every
class has enough samples. With `standardize=True`, inputs are shifted and scaled to mean 0 and
standard deviation 1 with the statistics of the *training part only* (applied to both parts):
per feature for tables, per colour channel for images (4-D inputs); constant features are only
shifted. Regression targets are standardised the same way (so losses have a comparable scale
across datasets); `Dataset.y_mean` and `Dataset.y_std` map predictions back.

Every problem with the input (an unknown name, a missing file, a bad value) raises
`DatasetError`, a `ValueError` whose message names the dataset, file or column and says what
to do.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import math
import operator
import os
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DATASETS",
    "Dataset",
    "DatasetError",
    "DatasetInfo",
    "generate_2d",
    "is_cached",
    "keras_cache_dir",
    "list_datasets",
    "load_csv",
    "load_dataset",
    "load_npz",
]

TASKS = ("binary", "multiclass", "regression")
#: A numeric target with whole-number values and at most this many distinct values is taken
#: as class labels when no task is given; anything else is regression.
MAX_INFERRED_CLASSES = 20
#: Default number of points of the generated 2-D sets.
DEFAULT_GENERATED_SAMPLES = 500
#: Coefficients of the "plane" regression set: y = a*x1 + b*x2 + noise.
PLANE_COEFFICIENTS = (2.0, -1.0)


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


# ---------------------------------------------------------------------------------------------
# The registry


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

_CLASS_NAMES = {
    "mnist": tuple(str(d) for d in range(10)),
    "fashion_mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                      "Sneaker", "Bag", "Ankle boot"),
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                "truck"),
}  # fmt: skip


def list_datasets() -> list[DatasetInfo]:
    """The built-in datasets, in registry order."""
    return list(DATASETS.values())


# ---------------------------------------------------------------------------------------------
# Argument checks


def _check_task(task: str | None) -> None:
    if task is not None and task not in TASKS:
        raise DatasetError(f"`task` must be one of {', '.join(TASKS)} or None. Received: {task!r}")


def _check_int(name: str, value: Any, minimum: int, maximum: int | None = None) -> int:
    try:
        if isinstance(value, bool):
            raise TypeError
        value = operator.index(value)
    except TypeError:
        raise DatasetError(f"`{name}` must be an integer. Received: {name}={value!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise DatasetError(f"`{name}` must be {bound}. Received: {name}={value}")
    return value


def _check_float(name: str, value: Any, low: float, high: float, high_open: bool) -> float:
    try:
        if isinstance(value, bool):
            raise TypeError
        value = float(value)
    except (TypeError, ValueError):
        raise DatasetError(f"`{name}` must be a number. Received: {name}={value!r}") from None
    if not (low <= value < high if high_open else low <= value <= high):
        bracket = ")" if high_open else "]"
        raise DatasetError(f"`{name}` must be in [{low}, {high}{bracket}. Received: {name}={value}")
    return value


def _check_common(validation_split: Any, seed: Any) -> tuple[float, int]:
    split = _check_float("validation_split", validation_split, 0.0, 1.0, high_open=True)
    return split, _check_int("seed", seed, 0, 2**32 - 1)


# ---------------------------------------------------------------------------------------------
# Generated 2-D sets


def generate_2d(
    kind: str, n_samples: int = DEFAULT_GENERATED_SAMPLES, noise: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Generate one of the 2-D sets (unsplit, unstandardised), e.g. for a scatter preview.

    Args:
        kind: "circle", "xor", "gaussian", "spiral" (binary) or "plane" (regression).
        n_samples: number of points (default 500).
        noise: standard deviation of the Gaussian noise added to the points (for "plane": to
            the target; for "gaussian": added to the blobs' spread of 0.4). Default 0.1.
        seed: seed of the random generator; the same seed gives the same points.

    Returns:
        `(x, y)`: x float32 of shape (n, 2); y int64 class ids 0/1, or float32 for "plane".
    """
    kinds = [info.name for info in _REGISTRY if info.source == "generated"]
    if kind not in kinds:
        raise DatasetError(f"Unknown 2-D set {kind!r}. Choose one of: {', '.join(kinds)}.")
    n = _check_int("n_samples", n_samples, 2)
    noise = _check_float("noise", noise, 0.0, math.inf, high_open=True)
    seed = _check_int("seed", seed, 0, 2**32 - 1)
    rng = np.random.default_rng(seed)

    if kind == "circle":
        from sklearn.datasets import make_circles

        x, y = make_circles(n_samples=n, noise=noise, factor=0.5, random_state=seed)
    elif kind == "gaussian":
        from sklearn.datasets import make_blobs

        x, y = make_blobs(
            n_samples=n,
            centers=[[-1.0, -1.0], [1.0, 1.0]],
            cluster_std=0.4 + noise,
            random_state=seed,
        )
    elif kind == "xor":
        x = rng.uniform(-1.0, 1.0, size=(n, 2))
        y = (x[:, 0] * x[:, 1] > 0).astype(np.int64)
        x = x + rng.normal(0.0, noise, size=x.shape)
    elif kind == "spiral":
        y = np.arange(n) % 2
        t = rng.uniform(0.0, 1.0, size=n)  # position along the spiral, 0 = centre
        angle = 1.75 * 2 * np.pi * t + np.pi * y  # the second spiral is the first turned by pi
        x = np.stack([t * np.sin(angle), t * np.cos(angle)], axis=1)
        x = x + rng.normal(0.0, noise, size=x.shape)
    else:  # plane
        x = rng.uniform(-1.0, 1.0, size=(n, 2))
        a, b = PLANE_COEFFICIENTS
        y = (a * x[:, 0] + b * x[:, 1] + rng.normal(0.0, noise, size=n)).astype(np.float32)
        return x.astype(np.float32), y
    return x.astype(np.float32), np.asarray(y, dtype=np.int64)


# ---------------------------------------------------------------------------------------------
# Keras downloads

_KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
# File names, origins and hashes as in keras/src/datasets/{mnist,fashion_mnist,cifar10}.py, so
# that a file cached by keras.datasets is found here and the other way round.
_MNIST_FILE = "mnist.npz"
_MNIST_HASH = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
_FASHION_SUBDIR = "fashion-mnist"
_FASHION_FILES = (
    "train-labels-idx1-ubyte.gz",
    "train-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
)
_CIFAR_ORIGIN = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
_CIFAR_HASH = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
_CIFAR_TARGET = "cifar-10-batches-py-target"  # keras extracts <target>_archive into <target>/
_CIFAR_BATCHES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")


def _keras_home() -> Path:
    """The Keras home folder, resolved now (Keras itself reads KERAS_HOME once, at import)."""
    home = os.environ.get("KERAS_HOME")
    if home:
        path = Path(home).expanduser()
    else:
        base = Path.home()
        path = (base if os.access(base, os.W_OK) else Path("/tmp")) / ".keras"
    with contextlib.suppress(OSError):
        path.mkdir(parents=True, exist_ok=True)
    if not os.access(path, os.W_OK):  # keras.utils.get_file falls back the same way
        path = Path("/tmp") / ".keras"
    return path


def keras_cache_dir() -> Path:
    """The folder Keras caches datasets in: `$KERAS_HOME/datasets` (`~/.keras/datasets`)."""
    return _keras_home() / "datasets"


def _cifar_batches_dir(folder: Path) -> Path:
    return folder / _CIFAR_TARGET / "cifar-10-batches-py"


def is_cached(name: str) -> bool:
    """Whether a dataset can be loaded without a download (always True for non-downloads)."""
    info = _registry_info(name)
    if info.source != "download":
        return True
    folder = keras_cache_dir()
    if name == "mnist":
        return (folder / _MNIST_FILE).is_file()
    if name == "fashion_mnist":
        return all((folder / _FASHION_SUBDIR / f).is_file() for f in _FASHION_FILES)
    batches = _cifar_batches_dir(folder)
    return (
        all((batches / f).is_file() for f in _CIFAR_BATCHES)
        or (folder / f"{_CIFAR_TARGET}_archive").is_file()
    )


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink(missing_ok=True)


def _download(
    *,
    dataset: str,
    fname: str,
    origin: str,
    subdir: str,
    file_hash: str | None,
    extract: bool,
    created: list[Path],
    advice: str,
) -> None:
    """Fetch a file with `keras.utils.get_file` (Keras's own download and cache code).

    Paths in `created` that do not exist yet are removed again if anything fails, so that an
    interrupted or corrupted download never looks cached to the next attempt.
    """
    import keras

    home = _keras_home()
    new = [path for path in created if not path.exists()]
    try:
        keras.utils.get_file(
            fname=fname,
            origin=origin,
            cache_dir=str(home),
            cache_subdir=subdir,
            file_hash=file_hash,
            extract=extract,
        )
    except BaseException as exc:
        for path in new:
            _remove(path)
        if not isinstance(exc, Exception):
            raise
        # Keras raises a bare Exception for network errors and ValueError for a bad hash.
        raise DatasetError(
            f"Could not download the {dataset!r} dataset ({exc}). {advice}. "
            "(Keras keeps datasets in $KERAS_HOME/datasets, ~/.keras/datasets by default.)"
        ) from exc


def _unreadable(dataset: str, path: Path, exc: BaseException, origin: str) -> DatasetError:
    return DatasetError(
        f"The cached file {path} of the {dataset!r} dataset could not be read ({exc}). "
        f"Delete it and load the dataset again to download it anew, or replace it with a good "
        f"copy from {origin}."
    )


def _load_mnist(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    path = folder / _MNIST_FILE
    origin = _KERAS_ORIGIN + _MNIST_FILE
    if not path.is_file():
        # The hash is checked for a download only: keras.utils.get_file re-downloads (and,
        # offline, deletes) a cached file whose hash differs, which we leave to the user.
        _download(
            dataset="mnist",
            fname=_MNIST_FILE,
            origin=origin,
            subdir="datasets",
            file_hash=_MNIST_HASH,
            extract=False,
            created=[path],
            advice=f"If this computer is offline, download {origin} elsewhere and put "
            f"{_MNIST_FILE} in the folder {folder}",
        )
    try:
        with np.load(path, allow_pickle=False) as f:  # the same keys keras.datasets.mnist reads
            x = np.concatenate([f["x_train"], f["x_test"]])
            y = np.concatenate([f["y_train"], f["y_test"]])
        if x.ndim != 3 or x.shape[1:] != (28, 28) or len(x) != len(y):
            raise ValueError(f"x has shape {x.shape} and y {y.shape}, expected (n, 28, 28), (n,)")
    except Exception as exc:
        raise _unreadable("mnist", path, exc, origin) from exc
    return x[..., None], y


def _read_idx(path: Path, header: int) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), np.uint8, offset=header)


def _load_fashion_mnist(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    sub = folder / _FASHION_SUBDIR
    missing = [f for f in _FASHION_FILES if not (sub / f).is_file()]
    for fname in missing:
        _download(
            dataset="fashion_mnist",
            fname=fname,
            origin=_KERAS_ORIGIN + fname,
            subdir=os.path.join("datasets", _FASHION_SUBDIR),
            file_hash=None,  # keras.datasets.fashion_mnist checks none either
            extract=False,
            created=[sub / fname],
            advice=f"If this computer is offline, download {', '.join(missing)} from "
            f"{_KERAS_ORIGIN} elsewhere and put them in the folder {sub}",
        )
    parts = {}
    for fname in _FASHION_FILES:
        path = sub / fname
        try:
            if "labels" in fname:  # idx format: 8-byte header for labels, 16 for images
                parts[fname] = _read_idx(path, 8)
            else:
                labels = parts[fname.replace("images-idx3", "labels-idx1")]
                parts[fname] = _read_idx(path, 16).reshape(len(labels), 28, 28)
        except Exception as exc:
            for just_downloaded in missing:  # unreadable: don't keep what came with it
                _remove(sub / just_downloaded)
            raise _unreadable("fashion_mnist", path, exc, _KERAS_ORIGIN + fname) from exc
    y_train, x_train, y_test, x_test = (parts[f] for f in _FASHION_FILES)
    return np.concatenate([x_train, x_test])[..., None], np.concatenate([y_train, y_test])


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles NumPy arrays and plain containers only (as keras's RestrictedUnpickler)."""

    _ALLOWED = frozenset(
        {
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
        }
    )

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR batch")


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as f:
        batch = _ArrayUnpickler(f, encoding="bytes").load()
    batch = {k.decode("utf8") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    data = np.asarray(batch["data"], dtype=np.uint8)
    labels = np.asarray(batch["labels"], dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise ValueError(f"data of shape {data.shape} with {len(labels)} labels")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels  # channels last


def _load_cifar10(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    batches = _cifar_batches_dir(folder)
    archive = folder / f"{_CIFAR_TARGET}_archive"
    extracted = folder / _CIFAR_TARGET
    if not all((batches / f).is_file() for f in _CIFAR_BATCHES):
        had_archive = archive.is_file()
        # keras.utils.get_file downloads the archive (hash-checked) unless it is there, and
        # extracts it; an archive put there by hand is extracted as it is.
        _download(
            dataset="cifar10",
            fname=_CIFAR_TARGET,
            origin=_CIFAR_ORIGIN,
            subdir="datasets",
            file_hash=None if had_archive else _CIFAR_HASH,
            extract=True,
            created=[archive, extracted],
            advice=f"If this computer is offline, download {_CIFAR_ORIGIN} elsewhere and "
            f"save it as {archive} (it is extracted on the next load), or extract it into the "
            f"folder {extracted}{os.sep} so that {batches}{os.sep}data_batch_1 exists",
        )
        absent = [f for f in _CIFAR_BATCHES if not (batches / f).is_file()]
        if absent:
            raise DatasetError(
                f"The archive {archive} of the 'cifar10' dataset did not give "
                f"{', '.join(absent)} in {batches}{os.sep}. Delete {archive} and {extracted} "
                f"and load the dataset again, or extract {_CIFAR_ORIGIN} into {extracted}{os.sep}."
            )
    xs, ys = [], []
    for fname in _CIFAR_BATCHES:
        try:
            x, y = _read_cifar_batch(batches / fname)
        except Exception as exc:
            raise _unreadable("cifar10", batches / fname, exc, _CIFAR_ORIGIN) from exc
        xs.append(x)
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)


_KERAS_LOADERS = {
    "mnist": _load_mnist,
    "fashion_mnist": _load_fashion_mnist,
    "cifar10": _load_cifar10,
}


# ---------------------------------------------------------------------------------------------
# Splitting and standardisation


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


def _registry_info(name: str) -> DatasetInfo:
    if not isinstance(name, str) or name not in DATASETS:
        raise DatasetError(
            f"Unknown dataset {name!r}. Choose one of: {', '.join(DATASETS)}; "
            "or load your own file with load_csv or load_npz."
        )
    return DATASETS[name]


# ---------------------------------------------------------------------------------------------
# Built-in datasets


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
            import sklearn.datasets

            bunch = getattr(sklearn.datasets, f"load_{name}")()
            x, y = bunch.data, bunch.target
            feature_names = tuple(str(f) for f in bunch.feature_names)
            if "target_names" in bunch:
                class_names = tuple(str(c) for c in bunch.target_names)
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


# ---------------------------------------------------------------------------------------------
# The user's own files


def _check_file(path: Any, kind: str) -> Path:
    try:
        p = Path(os.fspath(path)).expanduser()
    except TypeError:
        raise DatasetError(f"Expected the path of a {kind} file. Received: {path!r}") from None
    if not p.exists():
        raise DatasetError(f"There is no file {p}. Check the path of your {kind} file.")
    if p.is_dir():
        raise DatasetError(f"{p} is a folder; give the path of a {kind} file in it.")
    try:
        empty = p.stat().st_size == 0
    except OSError as exc:
        raise DatasetError(f"The {kind} file {p} could not be read ({exc}).") from exc
    if empty:
        raise DatasetError(f"The {kind} file {p} is empty.")
    return p


def _format_label(value: Any) -> str:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _user_dataset(
    name: str,
    description: str,
    x: np.ndarray,
    encoded: tuple[np.ndarray, str, int | None, tuple[str, ...] | None],
    *,
    validation_split: float,
    standardize: bool,
    seed: int,
    feature_names: tuple[str, ...] | None = None,
) -> Dataset:
    """A user's file as a Dataset: `encoded` is what `_encode_target` made of its targets."""
    y, task, num_classes, class_names = encoded
    info = DatasetInfo(
        name=name,
        description=description,
        task=task,
        input_shape=tuple(x.shape[1:]),
        num_classes=num_classes,
        size=len(y),
        source="user",
    )
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


def _encode_target(
    y: np.ndarray, numeric: bool, task: str | None, what: str
) -> tuple[np.ndarray, str, int | None, tuple[str, ...] | None]:
    """Turn raw targets into (y, task, num_classes, class_names), inferring the task if None.

    Numeric whole-number targets with at most MAX_INFERRED_CLASSES distinct values, and any
    text targets, are classes (ids 0..k-1 in sorted order of the values); the rest regression.
    """
    inferred = task is None
    if numeric:
        y = y.astype(np.float64)
        if not np.isfinite(y).all():
            raise DatasetError(f"{what} holds an infinite or NaN value; every target must be set.")
        if inferred:
            whole = bool(np.all(y == np.round(y)))
            few = y.ndim == 1 and len(np.unique(y)) <= MAX_INFERRED_CLASSES
            if not (whole and few):
                return y.astype(np.float32), "regression", None, None
        elif task == "regression":
            return y.astype(np.float32), task, None, None
    elif task == "regression":
        raise DatasetError(f"{what} holds text, so it cannot be a regression target.")
    else:
        y = y.astype(str)
    if y.ndim != 1:
        raise DatasetError(
            f"{what} has shape {y.shape}; for classification give one label per sample, "
            "shape (n,) (class ids, not one-hot rows)."
        )
    classes, ids = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise DatasetError(
            f"{what} has a single class ({_format_label(classes[0])!r}); "
            "classification needs at least two."
        )
    if task == "binary" and len(classes) != 2:
        raise DatasetError(
            f"{what} has {len(classes)} classes; task='binary' needs exactly 2. "
            "Use task='multiclass' or leave task=None."
        )
    if inferred:
        task = "binary" if len(classes) == 2 else "multiclass"
    names = tuple(_format_label(c) for c in classes)
    return ids.reshape(-1).astype(np.int64), str(task), len(classes), names


def load_csv(
    path: str | os.PathLike,
    target_column: str,
    *,
    task: str | None = None,
    validation_split: float = 0.2,
    standardize: bool = True,
    seed: int = 0,
) -> Dataset:
    """Load a CSV file with a header row; `target_column` is the target, the rest inputs.

    Every other column must hold numbers, with no missing values. The target may hold numbers
    or text (class names, mapped to class ids in sorted order). With `task=None` the task is
    inferred: whole numbers with at most 20 distinct values or text -> classification ("binary"
    for two classes), anything else -> regression. Row numbers in messages count data rows
    from 1 (the header is not counted).

    Raises:
        DatasetError: missing, empty or unreadable file; unknown target column (the message
            lists the columns); a missing or non-numeric value (names the column and row).
    """
    _check_task(task)
    validation_split, seed = _check_common(validation_split, seed)
    p = _check_file(path, "CSV")
    import pandas as pd

    try:
        frame = pd.read_csv(p)
    except Exception as exc:  # pandas raises many types; all mean "not a readable CSV"
        raise DatasetError(f"{p} could not be read as a CSV file ({exc}).") from exc
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    if target_column not in columns:
        raise DatasetError(
            f"{p.name} has no column {target_column!r}. Its columns are: "
            f"{', '.join(repr(c) for c in columns)}."
        )
    if len(frame) == 0:
        raise DatasetError(f"{p.name} has a header but no data rows.")
    features = [c for c in columns if c != target_column]
    if not features:
        raise DatasetError(f"{p.name} has only the target column {target_column!r}; no inputs.")

    def numeric_column(name: str, allow_text: bool) -> tuple[np.ndarray, bool]:
        column = frame[name]
        missing = column.isna().to_numpy()
        if missing.any():
            row = int(np.argmax(missing)) + 1
            raise DatasetError(
                f"{p.name}: column {name!r} has a missing value in row {row} "
                f"({int(missing.sum())} missing in all). Fill in or drop those rows."
            )
        values = pd.to_numeric(column, errors="coerce")
        bad = values.isna().to_numpy()
        if bad.any():
            if allow_text:
                return column.to_numpy(dtype=object), False
            row = int(np.argmax(bad))
            raise DatasetError(
                f"{p.name}: column {name!r} has a non-numeric value {column.iloc[row]!r} in "
                f"row {row + 1}. Every column except the target must hold numbers."
            )
        values = values.to_numpy(dtype=np.float64)
        if not allow_text and not np.isfinite(values).all():
            row = int(np.argmax(~np.isfinite(values))) + 1
            raise DatasetError(f"{p.name}: column {name!r} has an infinite value in row {row}.")
        return values, True

    x = np.stack([numeric_column(c, allow_text=False)[0] for c in features], axis=1)
    y_raw, numeric = numeric_column(target_column, allow_text=True)
    encoded = _encode_target(y_raw, numeric, task, f"{p.name}: target column {target_column!r}")
    return _user_dataset(
        p.name,
        f"CSV file {p.name}, target column {target_column!r}.",
        x,
        encoded,
        validation_split=validation_split,
        standardize=standardize,
        seed=seed,
        feature_names=tuple(features),
    )


def load_npz(
    path: str | os.PathLike,
    *,
    task: str | None = None,
    validation_split: float = 0.2,
    standardize: bool = True,
    seed: int = 0,
) -> Dataset:
    """Load an `.npz` file with arrays `x` (inputs) and `y` (targets), as `np.savez` writes.

    Read with `allow_pickle=False`: object arrays are refused. `x` holds numbers, one sample
    per row along the first axis (a 1-D `x` is one feature); 4-D `x` is taken as images
    (n, height, width, channels) and standardised per channel. `y` holds numbers or text, shape
    (n,) or (n, k) (k > 1: regression only). The task is inferred as for `load_csv`.

    Raises:
        DatasetError: missing, empty or unreadable file; missing `x` or `y` (lists the arrays
            found); object, text or non-finite inputs; lengths that differ.
    """
    _check_task(task)
    validation_split, seed = _check_common(validation_split, seed)
    p = _check_file(path, "NPZ")
    try:
        loaded = np.load(p, allow_pickle=False)
    except Exception as exc:
        raise DatasetError(
            f"{p} could not be read as a NumPy .npz file ({exc}). "
            "Save your arrays with numpy.savez(path, x=inputs, y=targets)."
        ) from exc
    if isinstance(loaded, np.ndarray):
        raise DatasetError(
            f"{p} holds a single array (.npy), not arrays named x and y. "
            "Save them with numpy.savez(path, x=inputs, y=targets)."
        )
    arrays = {}
    with loaded:
        absent = [key for key in ("x", "y") if key not in loaded.files]
        if absent:
            raise DatasetError(
                f"{p.name} has no array named {' or '.join(absent)}; it holds: "
                f"{', '.join(loaded.files) or 'nothing'}. "
                "Save with numpy.savez(path, x=inputs, y=targets)."
            )
        for key in ("x", "y"):
            try:
                arrays[key] = loaded[key]
            except Exception as exc:
                raise DatasetError(
                    f"{p.name}: array {key!r} could not be read ({exc}). Arrays of Python "
                    "objects (pickled) are refused; save plain numeric arrays."
                ) from exc
    x, y = arrays["x"], arrays["y"]
    if x.dtype.kind not in "biuf" or x.ndim == 0:
        raise DatasetError(
            f"{p.name}: array 'x' must hold numbers, one sample per row; it has dtype "
            f"{x.dtype} and shape {x.shape}."
        )
    if y.dtype.kind not in "biufUS" or y.ndim == 0:
        raise DatasetError(
            f"{p.name}: array 'y' must hold numbers or class names; it has dtype {y.dtype} "
            f"and shape {y.shape}."
        )
    if len(x) != len(y):
        raise DatasetError(
            f"{p.name}: 'x' has {len(x)} samples but 'y' has {len(y)}; they must match."
        )
    if x.ndim == 1:
        x = x[:, None]
    if len(x) < 2:
        raise DatasetError(f"{p.name} has {len(x)} sample(s); at least 2 are needed.")
    if not np.isfinite(x.astype(np.float64, copy=False)).all():
        raise DatasetError(f"{p.name}: array 'x' holds NaN or infinite values.")
    if y.ndim == 2 and y.shape[1] == 1 and task != "regression":
        y = y[:, 0]
    encoded = _encode_target(y, y.dtype.kind in "biuf", task, f"{p.name}: array 'y'")
    return _user_dataset(
        p.name,
        f"NumPy file {p.name}.",
        x,
        encoded,
        validation_split=validation_split,
        standardize=standardize,
        seed=seed,
    )
