"""The downloadable sets: mnist, fashion_mnist and cifar10, through Keras's download cache.

Files are fetched with `keras.utils.get_file` into `$KERAS_HOME/datasets` (`~/.keras/datasets`
by default), under the same file names and folders as `keras.datasets.*.load_data()`, so files
either one cached are used by both. Owns the cache location (`keras_cache_dir`, `is_cached`),
the download with clean-up of partial files, and the readers of the three formats (NumPy
`.npz`, gzipped idx, CIFAR's pickled batches read with a restricted unpickler). The readers
return raw uint8 images, channels last, train and test parts pooled; `load_dataset` scales
them to [0, 1] and splits them.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import pickle
import shutil
from pathlib import Path

import numpy as np

from keras_sgdplus.lab.datasets.registry import DatasetError, _registry_info

#: The class names of the downloadable sets, by class id.
_CLASS_NAMES = {
    "mnist": tuple(str(d) for d in range(10)),
    "fashion_mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                      "Sneaker", "Bag", "Ankle boot"),
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                "truck"),
}  # fmt: skip

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
