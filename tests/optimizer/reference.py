"""An independent NumPy reference for SGDPlus, written from the formulas of DESIGN §2.

It shares no code with `keras_sgdplus`. Rounding follows what a Keras optimizer does: the
learning rate lives in float32 (Keras's floatx) and is cast to the variable's dtype, the
decoupled weight decay runs before the step, the momentum slots start at zero.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


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
    step_count: int = 0
    slots: list[np.ndarray] = field(default_factory=list)

    def rate(self, t: int) -> np.float32:
        """lr_t = base(t) / (1 + decay * t), in float32 as the optimizer computes it."""
        base = self.learning_rate(t) if callable(self.learning_rate) else self.learning_rate
        base = np.float32(base)
        if self.decay == 0:
            return base
        return base / (np.float32(1.0) + np.float32(self.decay) * np.float32(t))

    def step(self, weights: list[np.ndarray], grads: list[np.ndarray]) -> list[np.ndarray]:
        """Returns the new weights; keeps the slots (v or b) in `self.slots`."""
        dtype = weights[0].dtype.type
        lr = dtype(self.rate(self.step_count))
        mu, tau = dtype(self.momentum), dtype(self.dampening)
        if not self.slots:
            self.slots = [np.zeros_like(w) for w in weights]
        new_weights = []
        for i, (w, g) in enumerate(zip(weights, grads, strict=True)):
            w, g = w.astype(dtype), g.astype(dtype)
            if self.weight_decay is not None:
                # Keras's base class casts the Python float through float32 (`ops.cast`).
                w = w - w * dtype(np.float32(self.weight_decay)) * lr
            if self.coupled_weight_decay:
                g = g + dtype(self.coupled_weight_decay) * w
            if self.momentum == 0:
                w = w - lr * g
            elif self.convention == "keras":
                v = mu * self.slots[i] - (dtype(1) - tau) * lr * g
                self.slots[i] = v
                w = w + (mu * v - lr * g) if self.nesterov else w + v
            else:
                if self.step_count == 0:
                    b = g.copy()
                else:
                    b = mu * self.slots[i] + (dtype(1) - tau) * g
                self.slots[i] = b
                w = w - lr * (g + mu * b) if self.nesterov else w - lr * b
            new_weights.append(w)
        self.step_count += 1
        return new_weights
