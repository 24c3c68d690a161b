"""Argument checks shared by the loaders: the one place a loader's arguments are validated.

Each check returns the value it accepted (an `int`, a `float`) or raises `DatasetError` with
a message in Keras's style, e.g. "`seed` must be >= 0. Received: seed=-1".
"""

from __future__ import annotations

import operator
from typing import Any

from keras_sgdplus.lab.datasets.registry import TASKS, DatasetError


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
