"""An independent NumPy reference for SGDPlus, written from the update rule in the docstring
of `SGDPlus` (keras_sgdplus/sgd_plus.py) and in README.md.

It shares no code with `keras_sgdplus`. Rounding follows what a Keras optimizer does: the
base learning rate lives in float32 (Keras's floatx) and is cast to the variable's dtype,
the decoupled weight decay runs before the step, the momentum slots start at zero. The
decay follows tf.keras 2's `_decayed_lr(var_dtype)`: `decay` is a float32 constant, and
`base / (1 + decay * t)` is computed in the variable's dtype (float64 for float64 weights).
In the torch convention the buffer starts at `b = g` on each variable's first step with a
gradient; a `None` gradient leaves the variable and its slot as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import keras
import numpy as np


def keras_weight_decay(weight_decay: float) -> float:
    """The decoupled weight decay as Keras's base class applies it: `ops.cast(wd, dtype)`
    goes through float32 on TensorFlow, and is exact on JAX."""
    if keras.backend.backend() == "tensorflow":
        return float(np.float32(weight_decay))
    return weight_decay


@dataclass
class ReferenceSGD:
    """State and arithmetic of one optimizer, for a list of weights of one dtype."""

    learning_rate: float | Callable[[int], float] = 0.01
    momentum: float = 0.0
    nesterov: bool = False
    dampening: float = 0.0
    decay: float = 0.0
    coupled_weight_decay: float = 0.0
    weight_decay: float | None = None
    convention: str = "keras"
    rate_dtype: type = np.float32  # Keras keeps a float rate in float32; a schedule may differ
    step_count: int = 0
    slots: list[np.ndarray] = field(default_factory=list)
    started: list[bool] = field(default_factory=list)  # torch: has the variable had a step

    def base_rate(self, t: int) -> np.floating:
        """base(t), in the dtype Keras keeps it in."""
        base = self.learning_rate(t) if callable(self.learning_rate) else self.learning_rate
        return self.rate_dtype(base)

    def rate(self, t: int, dtype: type | None = None) -> np.floating:
        """lr_t = base(t) / (1 + decay * t) for variables of `dtype` (default: the rate's)."""
        dtype = dtype or self.rate_dtype
        lr = dtype(self.base_rate(t))
        if self.decay == 0:
            return lr
        decay = dtype(np.float32(self.decay))  # tf.keras 2 kept it as a float32 constant
        return lr / (dtype(1.0) + decay * dtype(t))

    def step(self, weights: list[np.ndarray], grads: list[np.ndarray | None]) -> list[np.ndarray]:
        """Returns the new weights; keeps the slots (v or b) in `self.slots`. A `None`
        gradient leaves its weight and slot unchanged (the step still counts)."""
        dtype = weights[0].dtype.type
        lr = self.rate(self.step_count, dtype)
        mu, tau = dtype(self.momentum), dtype(self.dampening)
        if not self.slots:
            self.slots = [np.zeros_like(w) for w in weights]
            self.started = [False] * len(weights)
        new_weights = []
        for i, (w, g) in enumerate(zip(weights, grads, strict=True)):
            if g is None:
                new_weights.append(w)
                continue
            w, g = w.astype(dtype), g.astype(dtype)
            if self.weight_decay is not None:
                w = w - w * dtype(keras_weight_decay(self.weight_decay)) * lr
            if self.coupled_weight_decay:
                g = g + dtype(self.coupled_weight_decay) * w
            if self.momentum == 0:
                w = w - lr * g
            elif self.convention == "keras":
                v = mu * self.slots[i] - (dtype(1) - tau) * lr * g
                self.slots[i] = v
                w = w + (mu * v - lr * g) if self.nesterov else w + v
            else:
                first_step = not self.started[i]
                b = g.copy() if first_step else mu * self.slots[i] + (dtype(1) - tau) * g
                self.started[i] = True
                self.slots[i] = b
                w = w - lr * (g + mu * b) if self.nesterov else w - lr * b
            new_weights.append(w)
        self.step_count += 1
        return new_weights
