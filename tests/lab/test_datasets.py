"""Tests of keras_sgdplus.lab.datasets: the registry, the bundled and generated sets, splits and
standardisation. The downloadable sets are tested in test_datasets_downloads.py, the user's
files in test_datasets_user_files.py.

Expected values come from independent sources: scikit-learn's own loaders and the geometry of
the generated sets.
"""

import math

import numpy as np
import pytest
import sklearn.datasets

from keras_sgdplus.lab.datasets import (
    DATASETS,
    DatasetError,
    DatasetInfo,
    generate_2d,
    list_datasets,
    load_dataset,
)

BUNDLED = [i.name for i in list_datasets() if i.source == "bundled"]
GENERATED = [i.name for i in list_datasets() if i.source == "generated"]
DOWNLOADS = [i.name for i in list_datasets() if i.source == "download"]


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
