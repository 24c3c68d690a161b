"""The order a run visits its training samples: one permutation per epoch, from (seed, epoch).

Every engine path (`keras_fit`, `tf_chunks`, `jax_chunks`) takes its batches from
`epoch_order`, so the same run sees the same batches on every path and backend, and a
resumed run sees the batches it would have seen.
"""

from __future__ import annotations

import numpy as np


def epoch_order(seed: int, epoch: int, n_samples: int) -> np.ndarray:
    """The sample indices of epoch `epoch` (0-based) in the order the batches take them.

    A permutation of `0 .. n_samples - 1` drawn by NumPy's PCG64 generator seeded with the
    pair `(seed, epoch)` (`numpy.random.default_rng([seed, epoch])`), so it depends on those
    two numbers alone: not on the backend, the path, or what ran before. int32, for the
    device-side gather.
    """
    return np.random.default_rng([seed, epoch]).permutation(n_samples).astype("int32")


def batch_sizes_of(n_samples: int, batch_size: int) -> list[int]:
    """The sizes of an epoch's batches: full batches, then the rest (as Keras's `fit`)."""
    full, rest = divmod(n_samples, batch_size)
    return [batch_size] * full + ([rest] if rest else [])
