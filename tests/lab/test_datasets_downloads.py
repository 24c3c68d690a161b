"""Tests of keras_sgdplus.lab.datasets.downloads: mnist, fashion_mnist and cifar10 through Keras's
download cache.

The files are small stand-ins these tests write themselves, in the formats keras.datasets
reads, into a temporary Keras cache. Nothing here touches the network: the `offline` fixture
installs a urllib opener whose HTTP(S) handlers refuse every request, so Keras's real download
code runs and fails at once, exactly as it does on a computer without a connection.
"""

import gzip
import io
import pickle
import struct
import tarfile
import urllib.error
import urllib.request
import urllib.response
from email.message import Message

import numpy as np
import pytest

from keras_sgdplus.lab.datasets import (
    Dataset,
    DatasetError,
    is_cached,
    keras_cache_dir,
    load_dataset,
)

# ---------------------------------------------------------------------------------------------
# Fixtures: no network, and a temporary Keras cache


class _RefuseHTTP(urllib.request.HTTPHandler):
    def http_open(self, req):
        raise urllib.error.URLError("network disabled in tests")


class _RefuseHTTPS(urllib.request.HTTPSHandler):
    def https_open(self, req):
        raise urllib.error.URLError("network disabled in tests")


class _GarbageHTTPS(urllib.request.HTTPSHandler):
    """Answers every request with a small HTML page, like a captive portal."""

    def https_open(self, req):
        body = b"<html>please log in</html>"
        headers = Message()
        headers["Content-Length"] = str(len(body))
        response = urllib.response.addinfourl(io.BytesIO(body), headers, req.full_url, 200)
        response.msg = "OK"
        return response


@pytest.fixture
def offline():
    """Every urllib request (what keras.utils.get_file uses) fails at once."""
    urllib.request.install_opener(urllib.request.build_opener(_RefuseHTTP, _RefuseHTTPS))
    yield
    urllib.request.install_opener(None)  # back to the default opener


@pytest.fixture
def cache(tmp_path, monkeypatch, offline):
    """A fresh, empty Keras home; returns its datasets folder."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    folder = tmp_path / "keras_home" / "datasets"
    assert keras_cache_dir() == folder
    return folder


def _files_under(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


# ---------------------------------------------------------------------------------------------
# Tiny stand-ins for the Keras dataset files, in the formats keras.datasets reads


def _images(n, shape, seed):
    """n random uint8 images; image i carries its id i in its first byte."""
    x = np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)
    x.reshape(n, -1)[:, 0] = np.arange(n)
    return x


def _check_images(ds: Dataset, x_all: np.ndarray, y_all: np.ndarray, image_shape):
    """Loaded (unstandardised) images equal the written ones /255, labels follow them."""
    assert ds.x_train.shape[1:] == image_shape
    assert ds.x_train.dtype == np.float32
    assert ds.y_train.dtype == np.int64
    x = np.concatenate([ds.x_train, ds.x_val])
    y = np.concatenate([ds.y_train, ds.y_val])
    assert len(x) == len(x_all) == ds.info.size
    ids = np.rint(x.reshape(len(x), -1)[:, 0] * 255).astype(int)
    assert sorted(ids) == list(range(len(x_all)))  # every image exactly once
    np.testing.assert_allclose(x, x_all[ids].reshape(x.shape) / 255.0, atol=1e-6)
    np.testing.assert_array_equal(y, y_all[ids])
    assert x.min() >= 0.0
    assert x.max() <= 1.0


def _write_mnist(folder, n_train=40, n_test=10):
    x = _images(n_train + n_test, (28, 28), seed=1)
    y = (np.arange(n_train + n_test) % 10).astype(np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(
        folder / "mnist.npz",
        x_train=x[:n_train],
        y_train=y[:n_train],
        x_test=x[n_train:],
        y_test=y[n_train:],
    )
    return x, y


def _write_idx(path, array, magic):
    header = struct.pack(">" + "I" * (1 + array.ndim), magic, *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())


def _write_fashion(folder, n_train=40, n_test=10):
    x = _images(n_train + n_test, (28, 28), seed=2)
    y = (np.arange(n_train + n_test) * 7 % 10).astype(np.uint8)
    sub = folder / "fashion-mnist"
    sub.mkdir(parents=True, exist_ok=True)
    _write_idx(sub / "train-labels-idx1-ubyte.gz", y[:n_train], 2049)
    _write_idx(sub / "train-images-idx3-ubyte.gz", x[:n_train], 2051)
    _write_idx(sub / "t10k-labels-idx1-ubyte.gz", y[n_train:], 2049)
    _write_idx(sub / "t10k-images-idx3-ubyte.gz", x[n_train:], 2051)
    return x, y


def _write_cifar_batches(batches_dir, per_batch=8):
    """CIFAR-10's python format: pickled dicts with bytes keys, rows of 3072 = 3x32x32 bytes."""
    n = 6 * per_batch
    rows = _images(n, (3 * 32 * 32,), seed=3)
    y = (np.arange(n) * 3 % 10).astype(np.uint8)
    batches_dir.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for k, name in enumerate(names):
        part = slice(k * per_batch, (k + 1) * per_batch)
        batch = {b"batch_label": name.encode(), b"labels": [int(v) for v in y[part]]}
        batch[b"data"] = rows[part]
        with open(batches_dir / name, "wb") as f:
            pickle.dump(batch, f, protocol=4)  # bytes and arrays without _codecs (protocol 2)
    # channels first in the file, channels last in the dataset
    return rows.reshape(n, 3, 32, 32).transpose(0, 2, 3, 1), y


# ---------------------------------------------------------------------------------------------
# Downloadable sets, from a temporary Keras cache


def test_mnist_loads_from_the_keras_cache(cache):
    x, y = _write_mnist(cache)
    assert is_cached("mnist")
    assert not is_cached("cifar10")
    ds = load_dataset("mnist", standardize=False, validation_split=0.2)
    _check_images(ds, x[..., None], y, (28, 28, 1))
    assert ds.info.size == 50
    assert ds.info.input_shape == (28, 28, 1)
    assert ds.class_names == tuple(str(d) for d in range(10))


def test_fashion_mnist_loads_from_the_keras_cache(cache):
    x, y = _write_fashion(cache)
    ds = load_dataset("fashion_mnist", standardize=False)
    _check_images(ds, x[..., None], y, (28, 28, 1))
    assert ds.class_names[9] == "Ankle boot"


def test_cifar10_loads_from_the_archive_keras_would_have_downloaded(cache, tmp_path):
    x, y = _write_cifar_batches(tmp_path / "src" / "cifar-10-batches-py")
    cache.mkdir(parents=True)
    with tarfile.open(cache / "cifar-10-batches-py-target_archive", "w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    ds = load_dataset("cifar10", standardize=False)  # keras.utils.get_file extracts it
    _check_images(ds, x, y, (32, 32, 3))
    assert (cache / "cifar-10-batches-py-target" / "cifar-10-batches-py" / "test_batch").is_file()


def test_cifar10_loads_from_an_extracted_folder(cache):
    batches = cache / "cifar-10-batches-py-target" / "cifar-10-batches-py"
    x, y = _write_cifar_batches(batches)
    # the files are in the format Keras's own (private) CIFAR reader expects
    from keras.src.datasets.cifar import load_batch

    data, labels = load_batch(str(batches / "data_batch_2"))
    np.testing.assert_array_equal(data.transpose(0, 2, 3, 1), x[8:16])
    np.testing.assert_array_equal(labels, y[8:16])
    assert is_cached("cifar10")
    ds = load_dataset("cifar10", standardize=False, validation_split=0.25)
    _check_images(ds, x, y, (32, 32, 3))


def test_images_are_standardised_per_channel(cache):
    _write_cifar_batches(cache / "cifar-10-batches-py-target" / "cifar-10-batches-py")
    ds = load_dataset("cifar10")
    assert ds.x_train.ndim == 4
    assert ds.x_mean.shape == (3,)
    np.testing.assert_allclose(ds.x_train.mean(axis=(0, 1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(ds.x_train.std(axis=(0, 1, 2)), 1.0, rtol=1e-4)


@pytest.mark.parametrize(
    ("name", "file_named", "folder"),
    [
        ("mnist", "mnist.npz", ""),
        ("fashion_mnist", "train-images-idx3-ubyte.gz", "fashion-mnist"),
        ("cifar10", "cifar-10-python.tar.gz", "cifar-10-batches-py-target"),
    ],
)
def test_offline_without_cache_names_file_and_folder(cache, name, file_named, folder):
    assert not is_cached(name)
    with pytest.raises(DatasetError) as caught:
        load_dataset(name)
    message = str(caught.value)
    assert file_named in message
    assert str(cache / folder) in message
    assert "network disabled in tests" in message  # the error keras reported
    assert _files_under(cache) == []  # nothing half-written left behind


def test_a_bad_download_is_not_kept(cache):
    """A captive portal's HTML instead of mnist.npz fails Keras's hash check and is removed,
    so the next attempt downloads again instead of reading a corrupt cache."""
    urllib.request.install_opener(urllib.request.build_opener(_RefuseHTTP, _GarbageHTTPS))
    with pytest.raises(DatasetError, match="hash"):
        load_dataset("mnist")
    assert _files_under(cache) == []
    # fashion_mnist has no hash: the unreadable download is found on reading, and removed
    with pytest.raises(DatasetError, match="could not be read"):
        load_dataset("fashion_mnist")
    assert _files_under(cache) == []


def test_a_corrupt_cached_file_gets_a_clear_error(cache):
    cache.mkdir(parents=True)
    (cache / "mnist.npz").write_bytes(b"not a zip file")
    with pytest.raises(DatasetError, match=r"mnist\.npz.*could not be read.*Delete it"):
        load_dataset("mnist")
