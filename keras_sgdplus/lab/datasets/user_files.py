"""The user's own files: `load_csv` (one column is the target) and `load_npz` (arrays `x` and
`y`, as `np.savez` writes them).

Owns reading and checking the file, and turning its targets into class ids or regression
values (`_encode_target`, which infers the task when none is given); the split and the
standardisation are `splits._finish`'s, as for the built-in sets.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from keras_sgdplus.lab.datasets.checks import _check_common, _check_task
from keras_sgdplus.lab.datasets.registry import Dataset, DatasetError, DatasetInfo
from keras_sgdplus.lab.datasets.splits import _finish

#: A numeric target with whole-number values and at most this many distinct values is taken
#: as class labels when no task is given; anything else is regression.
MAX_INFERRED_CLASSES = 20


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
