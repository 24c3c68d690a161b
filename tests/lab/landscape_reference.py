"""The independent reference for the landscape paths: README.md's update rule (Keras
convention) in NumPy with the landscape's hand-written gradient, for
tests/lab/test_landscapes.py and test_landscape_charts.py."""

from __future__ import annotations

import numpy as np

from keras_sgdplus.lab.landscapes import Landscape


def numpy_reference(
    landscape: Landscape,
    method: str,
    learning_rate: float,
    momentum: float,
    steps: int,
    start: tuple[float, float],
) -> np.ndarray:
    """README.md's update rule (Keras convention) with the NumPy gradient: the points,
    shape (steps+1, 2).

    SGDPlus keeps its learning rate in a float32 variable, so the rate is rounded to float32.
    """
    lr = float(np.float32(learning_rate))
    mu = 0.0 if method == "sgd" else momentum
    w = np.array(start, dtype=np.float64)
    v = np.zeros(2)
    points = [w.copy()]
    for _ in range(steps):
        g = np.array(landscape.gradient(w[0], w[1]), dtype=np.float64)
        if method == "sgd":
            w = w - lr * g
        else:
            v = mu * v - lr * g
            w = w + mu * v - lr * g if method == "nesterov" else w + v
        points.append(w.copy())
    return np.array(points)
