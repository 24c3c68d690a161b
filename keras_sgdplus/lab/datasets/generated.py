"""The generated 2-D sets, like TensorFlow Playground's: circle, xor, gaussian, spiral (binary)
and the regression "plane". Seeded; `noise` controls how much the classes overlap.

Owns `generate_2d` (the raw points, unsplit); `load_dataset` splits them.
"""

from __future__ import annotations

import math

import numpy as np

from keras_sgdplus.lab.datasets.checks import _check_float, _check_int
from keras_sgdplus.lab.datasets.registry import _REGISTRY, DEFAULT_GENERATED_SAMPLES, DatasetError

#: Coefficients of the "plane" regression set: y = a*x1 + b*x2 + noise.
PLANE_COEFFICIENTS = (2.0, -1.0)


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
