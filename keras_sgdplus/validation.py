"""Checks of SGDPlus's constructor arguments, with errors in the Keras message style."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

CONVENTIONS = ("keras", "torch")


def as_float(name: str, value: Any) -> float:
    """``value`` as a Python float; ints, bools excepted, and NumPy scalars are accepted."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"`{name}` must be a real number. Received: {name}={value!r}")
    return float(value)


def check_non_negative(name: str, value: Any) -> float:
    """A float that is finite and >= 0 (NaN fails: the comparison is written to catch it)."""
    number = as_float(name, value)
    if not (0.0 <= number < math.inf):
        raise ValueError(f"`{name}` must be a finite number >= 0. Received: {name}={value!r}")
    return number


def check_unit_interval(name: str, value: Any) -> float:
    """A float in [0, 1] (NaN fails)."""
    number = as_float(name, value)
    if not (0.0 <= number <= 1.0):
        raise ValueError(f"`{name}` must be in [0, 1]. Received: {name}={value!r}")
    return number


def check_bool(name: str, value: Any) -> bool:
    """A bool, or a NumPy bool."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"`{name}` must be True or False. Received: {name}={value!r}")
    return bool(value)


def check_convention(value: Any) -> str:
    """``"keras"`` or ``"torch"``."""
    if value not in CONVENTIONS:
        raise ValueError(
            f"`convention` must be one of {', '.join(map(repr, CONVENTIONS))}. "
            f"Received: convention={value!r}"
        )
    return str(value)


def check_learning_rate(value: Any) -> Any:
    """A float >= 0 is returned as a float; schedules and callables pass through."""
    if callable(value):
        return value
    return check_non_negative("learning_rate", value)
