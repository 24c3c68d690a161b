"""Tests of keras_sgdplus/lab/datasets.py: the registry, splits, standardisation and every loader.

Expected values come from independent sources: scikit-learn's own loaders, the geometry of the
generated sets, and the small files these tests write themselves (into a temporary Keras cache
for the downloadable sets). Nothing here touches the network: the `offline` fixture installs a
urllib opener whose HTTP(S) handlers refuse every request, so Keras's real download code runs
and fails at once, exactly as it does on a computer without a connection.
"""

import gzip
import io
import math
import pickle
import struct
import tarfile
import urllib.error
import urllib.request
import urllib.response
from email.message import Message

import numpy as np
import pytest
import sklearn.datasets

from keras_sgdplus.lab.datasets import (
    DATASETS,
    Dataset,
    DatasetError,
    DatasetInfo,
    generate_2d,
    is_cached,
    keras_cache_dir,
    list_datasets,
    load_csv,
    load_dataset,
    load_npz,
)

BUNDLED = [i.name for i in list_datasets() if i.source == "bundled"]
GENERATED = [i.name for i in list_datasets() if i.source == "generated"]
DOWNLOADS = [i.name for i in list_datasets() if i.source == "download"]


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
# Registry and bundled sets


def test_registry_entries_are_consistent():
    assert list(DATASETS) == [info.name for info in list_datasets()]
    for name, info in DATASETS.items():
        assert isinstance(info, DatasetInfo)
        assert info.name == name
        assert info.description
        assert info.task in ("binary", "multiclass", "regression")
        assert info.source in ("bundled", "generated", "download")
        assert (info.num_classes is None) == (info.task == "regression")
        assert info.task != "binary" or info.num_classes == 2
    assert set(BUNDLED) == {"digits", "iris", "wine", "breast_cancer", "diabetes"}
    assert set(GENERATED) == {"circle", "xor", "gaussian", "spiral", "plane"}
    assert set(DOWNLOADS) == {"mnist", "fashion_mnist", "cifar10"}
    assert DATASETS["mnist"].input_shape == DATASETS["fashion_mnist"].input_shape == (28, 28, 1)
    assert DATASETS["cifar10"].input_shape == (32, 32, 3)


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_set_matches_sklearn(name):
    x_ref, y_ref = getattr(sklearn.datasets, f"load_{name}")(return_X_y=True)
    info = DATASETS[name]
    assert info.size == len(y_ref)
    assert info.input_shape == x_ref.shape[1:]
    if info.task == "regression":
        assert info.num_classes is None
    else:
        assert info.num_classes == len(np.unique(y_ref))

    ds = load_dataset(name, standardize=False)
    assert ds.info == info
    n_val = math.ceil(0.2 * len(y_ref))
    assert ds.x_train.shape == (len(y_ref) - n_val, *info.input_shape)
    assert ds.x_val.shape == (n_val, *info.input_shape)
    assert ds.x_train.dtype == ds.x_val.dtype == np.float32
    expected_y = np.float32 if info.task == "regression" else np.int64
    assert ds.y_train.dtype == ds.y_val.dtype == expected_y
    assert ds.y_train.shape == (len(y_ref) - n_val,)
    # the same samples, only shuffled: compare the sorted sums of rows
    x_all = np.concatenate([ds.x_train, ds.x_val])
    np.testing.assert_allclose(
        np.sort(x_all.sum(axis=1)), np.sort(x_ref.sum(axis=1)), rtol=1e-5, atol=1e-3
    )
    y_all = np.concatenate([ds.y_train, ds.y_val])
    np.testing.assert_allclose(np.sort(y_all), np.sort(y_ref), rtol=1e-6)
    if info.task != "regression":
        assert len(ds.class_names) == info.num_classes
    assert len(ds.feature_names) == info.input_shape[0]


def test_classification_split_is_stratified():
    y_ref = sklearn.datasets.load_iris().target
    ds = load_dataset("iris", validation_split=0.2, seed=3)
    _, counts = np.unique(y_ref, return_counts=True)
    np.testing.assert_array_equal(np.bincount(ds.y_val), counts * 0.2)


def test_validation_split_zero_gives_empty_validation_part():
    ds = load_dataset("wine", validation_split=0.0)
    assert ds.x_train.shape == (178, 13)
    assert ds.x_val.shape == (0, 13)
    assert ds.y_val.shape == (0,)


def test_n_samples_takes_a_seeded_subset():
    a = load_dataset("digits", n_samples=100, seed=5)
    b = load_dataset("digits", n_samples=100, seed=5)
    assert a.info.size == 100
    assert len(a.y_train) + len(a.y_val) == 100
    np.testing.assert_array_equal(a.x_train, b.x_train)
    with pytest.raises(DatasetError, match=r"'iris' has 150 samples; n_samples=151"):
        load_dataset("iris", n_samples=151)


# ---------------------------------------------------------------------------------------------
# Standardisation and seeds


def test_standardisation_uses_training_statistics_only():
    raw = load_dataset("digits", standardize=False, seed=1)
    std = load_dataset("digits", standardize=True, seed=1)
    np.testing.assert_array_equal(raw.y_train, std.y_train)  # same split
    mean = raw.x_train.astype(np.float64).mean(axis=0)
    sd = raw.x_train.astype(np.float64).std(axis=0)
    varying = sd > 0
    np.testing.assert_allclose(std.x_train.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(std.x_train.std(axis=0)[varying], 1.0, rtol=1e-4)
    np.testing.assert_allclose(std.x_train[:, ~varying], 0.0, atol=1e-6)  # constant pixels
    scale = np.where(varying, sd, 1.0)
    np.testing.assert_allclose(std.x_val, (raw.x_val - mean) / scale, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(std.x_mean, mean, rtol=1e-5)
    assert abs(float(std.x_val.mean())) > 1e-4  # the validation part is not re-centred


def test_regression_targets_are_standardised_with_training_statistics():
    raw = load_dataset("diabetes", standardize=False)
    std = load_dataset("diabetes")
    assert std.y_train.dtype == np.float32
    np.testing.assert_allclose(std.y_train.mean(), 0.0, atol=1e-5)
    np.testing.assert_allclose(std.y_train.std(), 1.0, rtol=1e-4)
    np.testing.assert_allclose(std.y_val * std.y_std + std.y_mean, raw.y_val, rtol=1e-4)
    assert raw.y_mean is None
    assert raw.x_mean is None


@pytest.mark.parametrize("name", ["iris", "spiral", "plane"])
def test_seeds_reproduce_and_differ(name):
    a, b = load_dataset(name, seed=7), load_dataset(name, seed=7)
    c = load_dataset(name, seed=8)
    for part in ("x_train", "y_train", "x_val", "y_val"):
        np.testing.assert_array_equal(getattr(a, part), getattr(b, part))
    assert not np.array_equal(a.x_train, c.x_train)


# ---------------------------------------------------------------------------------------------
# Generated 2-D sets


@pytest.mark.parametrize("name", GENERATED)
def test_generated_set_loads_as_registered(name):
    info = DATASETS[name]
    ds = load_dataset(name)
    assert ds.info == info
    assert info.input_shape == (2,)
    assert len(ds.y_train) + len(ds.y_val) == info.size == 500
    assert ds.x_train.shape == (400, 2)
    assert ds.x_val.shape == (100, 2)
    x, y = generate_2d(name, n_samples=123, seed=4)
    assert x.shape == (123, 2)
    assert x.dtype == np.float32
    assert np.isfinite(x).all()
    if info.task == "regression":
        assert y.dtype == np.float32
        assert ds.y_train.dtype == np.float32
    else:
        assert y.dtype == np.int64
        assert set(np.unique(y)) == {0, 1}
        assert abs(np.mean(y) - 0.5) < 0.15  # both classes well represented
        assert set(np.unique(ds.y_val)) == {0, 1}


def test_generated_shapes_follow_their_geometry():
    x, y = generate_2d("circle", 400, noise=0.0, seed=1)
    radius = np.hypot(x[:, 0], x[:, 1])
    np.testing.assert_allclose(radius[y == 0], 1.0, rtol=1e-5)  # the ring
    np.testing.assert_allclose(radius[y == 1], 0.5, rtol=1e-5)  # the disc's edge
    x, y = generate_2d("xor", 400, noise=0.0, seed=1)
    np.testing.assert_array_equal(y, (np.sign(x[:, 0]) == np.sign(x[:, 1])).astype(int))
    x, y = generate_2d("plane", 400, noise=0.0, seed=1)
    np.testing.assert_allclose(y, 2 * x[:, 0] - x[:, 1], atol=1e-5)
    x, y = generate_2d("gaussian", 400, noise=0.0, seed=1)
    assert (x[y == 0].mean(axis=0) < -0.8).all()
    assert (x[y == 1].mean(axis=0) > 0.8).all()
    x, y = generate_2d("spiral", 400, noise=0.0, seed=1)
    radius = np.hypot(x[:, 0], x[:, 1])
    assert radius.max() <= 1.0 + 1e-6
    # Archimedean spirals, 1.75 turns from the centre; the second is the first turned by pi
    angle = np.arctan2(x[:, 0], x[:, 1]) - 1.75 * 2 * np.pi * radius - np.pi * y
    np.testing.assert_allclose(np.cos(angle), 1.0, atol=1e-4)


def test_noise_spreads_the_points():
    x1, y1 = generate_2d("plane", 300, noise=0.5, seed=2)
    residual = y1 - (2 * x1[:, 0] - x1[:, 1])
    assert 0.4 < residual.std() < 0.6


def test_generate_2d_rejects_bad_arguments():
    with pytest.raises(DatasetError, match="circle, xor, gaussian, spiral, plane"):
        generate_2d("moons")
    with pytest.raises(DatasetError, match="noise"):
        generate_2d("xor", noise=-1)
    with pytest.raises(DatasetError, match="n_samples"):
        generate_2d("xor", n_samples=1)


def test_load_dataset_rejects_bad_arguments():
    with pytest.raises(DatasetError, match=r"Unknown dataset 'nope'.*digits.*cifar10"):
        load_dataset("nope")
    with pytest.raises(DatasetError, match="validation_split"):
        load_dataset("iris", validation_split=1.0)
    with pytest.raises(DatasetError, match="seed"):
        load_dataset("iris", seed=-1)
    assert issubclass(DatasetError, ValueError)


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


# ---------------------------------------------------------------------------------------------
# CSV files


def _csv(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_csv_with_text_target(tmp_path):
    species = ["setosa", "virginica", "versicolor"]
    lines = ["a,b,species,c"] + [f"{i},{i * 2},{species[i % 3]},{-i}" for i in range(30)]
    ds = load_csv(
        _csv(tmp_path, "\n".join(lines)), "species", standardize=False, validation_split=0.2
    )
    assert ds.info.task == "multiclass"
    assert ds.info.num_classes == 3
    assert ds.info.input_shape == (3,)
    assert ds.info.size == 30
    assert ds.info.source == "user"
    assert ds.class_names == ("setosa", "versicolor", "virginica")
    assert ds.feature_names == ("a", "b", "c")
    assert ds.y_train.dtype == np.int64
    assert ds.x_train.dtype == np.float32
    for x, y in zip(ds.x_train, ds.y_train, strict=True):  # labels stay with their rows
        row = int(x[0])
        assert ds.class_names[y] == species[row % 3]
        assert x[1] == 2 * row
        assert x[2] == -row
    assert np.bincount(ds.y_val).tolist() == [2, 2, 2]  # stratified


def test_csv_task_inference_and_explicit_task(tmp_path):
    rows = "\n".join(f"{i / 10},{i % 2}" for i in range(20))
    assert load_csv(_csv(tmp_path, "x,t\n" + rows), "t").info.task == "binary"
    rows = "\n".join(f"{i},{i * 0.37}" for i in range(30))
    ds = load_csv(_csv(tmp_path, "x,t\n" + rows), "t")
    assert ds.info.task == "regression"
    assert ds.info.num_classes is None
    assert ds.y_train.dtype == np.float32
    rows = "\n".join(f"{i},{i % 3 + 1}" for i in range(30))
    ds = load_csv(_csv(tmp_path, "x,t\n" + rows), "t")
    assert ds.info.task == "multiclass"
    assert ds.class_names == ("1", "2", "3")
    assert load_csv(_csv(tmp_path, "x,t\n" + rows), "t", task="regression").info.num_classes is None
    with pytest.raises(DatasetError, match="3 classes; task='binary' needs exactly 2"):
        load_csv(_csv(tmp_path, "x,t\n" + rows), "t", task="binary")
    with pytest.raises(DatasetError, match="task"):
        load_csv(_csv(tmp_path, "x,t\n" + rows), "t", task="clustering")


def test_csv_missing_value_names_column_and_row(tmp_path):
    path = _csv(tmp_path, "height,weight,label\n1,2,a\n3,,b\n5,6,a\n7,8,b\n")
    with pytest.raises(DatasetError, match=r"column 'weight' has a missing value in row 2"):
        load_csv(path, "label")
    path = _csv(tmp_path, "height,weight,label\n1,2,a\n3,4,\n5,6,a\n7,8,b\n")
    with pytest.raises(DatasetError, match=r"column 'label' has a missing value in row 2"):
        load_csv(path, "label")


def test_csv_non_numeric_value_names_column_and_row(tmp_path):
    path = _csv(tmp_path, "height,weight,label\n1,2,a\n3,4,b\n5,heavy,a\n7,8,b\n")
    with pytest.raises(DatasetError, match=r"column 'weight' has a non-numeric value 'heavy'"):
        load_csv(path, "label")
    with pytest.raises(DatasetError, match="row 3"):
        load_csv(path, "label")
    with pytest.raises(DatasetError, match="text, so it cannot be a regression target"):
        load_csv(_csv(tmp_path, "a,t\n1,x\n2,y\n"), "t", task="regression")


def test_csv_unknown_target_lists_columns(tmp_path):
    path = _csv(tmp_path, "height,weight,label\n1,2,a\n3,4,b\n")
    with pytest.raises(DatasetError, match=r"no column 'Label'.*'height', 'weight', 'label'"):
        load_csv(path, "Label")


def test_csv_bad_files(tmp_path):
    with pytest.raises(DatasetError, match="There is no file"):
        load_csv(tmp_path / "absent.csv", "t")
    with pytest.raises(DatasetError, match="is a folder"):
        load_csv(tmp_path, "t")
    with pytest.raises(DatasetError, match="is empty"):
        load_csv(_csv(tmp_path, ""), "t")
    with pytest.raises(DatasetError, match="no data rows"):
        load_csv(_csv(tmp_path, "a,t\n"), "t")
    with pytest.raises(DatasetError, match="only the target column"):
        load_csv(_csv(tmp_path, "t\n1\n2\n"), "t")
    with pytest.raises(DatasetError, match="single class"):
        load_csv(_csv(tmp_path, "a,t\n1,x\n2,x\n"), "t")
    npz = tmp_path / "arrays.npz"
    np.savez(npz, x=np.arange(10.0), y=np.arange(10))
    with pytest.raises(DatasetError):
        load_csv(npz, "t")  # binary content is a DatasetError, whatever pandas makes of it
    binary = tmp_path / "binary.csv"
    binary.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(DatasetError):
        load_csv(binary, "t")


# ---------------------------------------------------------------------------------------------
# NPZ files


def test_npz_table_and_images(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "table.npz"
    np.savez(path, x=rng.normal(size=(40, 3)), y=np.arange(40) % 4)
    ds = load_npz(path)
    assert ds.info.task == "multiclass"
    assert ds.info.num_classes == 4
    assert ds.info.input_shape == (3,)
    assert ds.x_train.shape == (32, 3)

    path = tmp_path / "images.npz"
    images = rng.integers(0, 256, size=(30, 6, 6, 2)).astype(np.uint8)
    np.savez(path, x=images, y=rng.normal(size=(30, 2)))
    ds = load_npz(path)
    assert ds.info.task == "regression"
    assert ds.y_train.shape == (24, 2)
    assert ds.x_train.shape == (24, 6, 6, 2)
    assert ds.x_mean.shape == (2,)
    np.testing.assert_allclose(ds.x_train.mean(axis=(0, 1, 2)), 0.0, atol=1e-5)

    path = tmp_path / "labels.npz"
    np.savez(path, x=np.arange(10.0), y=np.array(["cat", "dog"] * 5))
    ds = load_npz(path, standardize=False, validation_split=0.0)
    assert ds.info.task == "binary"
    assert ds.class_names == ("cat", "dog")
    assert ds.info.input_shape == (1,)
    np.testing.assert_array_equal(ds.y_train, ds.x_train[:, 0].astype(int) % 2)


def test_npz_bad_files(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, x=np.array([[1], [2, 3]], dtype=object), y=np.array([0, 1]))
    with pytest.raises(DatasetError, match=r"array 'x'.*objects"):
        load_npz(path)

    np.savez(path, inputs=np.zeros((4, 2)), y=np.zeros(4))
    with pytest.raises(DatasetError, match=r"no array named x; it holds: inputs, y"):
        load_npz(path)

    np.savez(path, x=np.zeros((4, 2)), y=np.zeros(5))
    with pytest.raises(DatasetError, match="'x' has 4 samples but 'y' has 5"):
        load_npz(path)

    np.savez(path, x=np.array([["a", "b"]] * 4), y=np.zeros(4))
    with pytest.raises(DatasetError, match="must hold numbers"):
        load_npz(path)

    pickled = tmp_path / "pickled.npz"
    pickled.write_bytes(pickle.dumps({"x": [1, 2], "y": [0, 1]}))
    with pytest.raises(DatasetError, match=r"could not be read as a NumPy \.npz file"):
        load_npz(pickled)

    npy = tmp_path / "single.npy"
    np.save(npy, np.zeros(3))
    with pytest.raises(DatasetError, match="single array"):
        load_npz(npy)

    text = tmp_path / "text.npz"
    text.write_text("x,y\n1,2\n")
    with pytest.raises(DatasetError):
        load_npz(text)
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(DatasetError, match="is empty"):
        load_npz(tmp_path / "empty.npz")
    with pytest.raises(DatasetError, match="is a folder"):
        load_npz(tmp_path)
