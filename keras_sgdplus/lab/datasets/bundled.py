"""The bundled sets, read offline from scikit-learn: digits, iris, wine, breast_cancer and
diabetes (`sklearn.datasets.load_<name>`). scikit-learn is imported on first use only.
"""

from __future__ import annotations

import numpy as np


def _load_bundled(
    name: str,
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], tuple[str, ...] | None]:
    """`(x, y, feature_names, class_names)` of a bundled set; class names None for regression."""
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, f"load_{name}")()
    class_names = None
    if "target_names" in bunch:
        class_names = tuple(str(c) for c in bunch.target_names)
    return bunch.data, bunch.target, tuple(str(f) for f in bunch.feature_names), class_names
