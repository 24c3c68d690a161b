"""Tests of keras_sgdplus.lab.datasets.user_files: the user's CSV and NPZ files, written by the
tests themselves.
"""

import pickle

import numpy as np
import pytest

from keras_sgdplus.lab.datasets import DatasetError, load_csv, load_npz

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
