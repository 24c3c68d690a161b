"""The optimizers a run can use: SGDPlus in its modes, and Keras's Adam, AdamW and RMSprop.

The settings (`OptimizerSpec`, the `OPTIMIZERS` by name) live in `lab/config.py`.
"""

from __future__ import annotations

import keras

from keras_sgdplus import SGDPlus
from keras_sgdplus.lab.config import OptimizerSpec
from keras_sgdplus.lab.schedules import learning_rate_arguments


def make_optimizer(spec: OptimizerSpec, total_steps: int) -> keras.optimizers.Optimizer:
    """A fresh optimizer for a run of `total_steps` steps (`spec` was checked when it was made)."""
    arguments = learning_rate_arguments(spec.schedule, spec.learning_rate, total_steps)
    if spec.name == "sgdplus":
        return SGDPlus(
            **arguments,
            momentum=spec.momentum,
            nesterov=spec.nesterov and spec.momentum > 0,
            convention=spec.convention,
        )
    rate, decay = arguments["learning_rate"], arguments["decay"]
    if decay:  # Keras's own optimizers dropped decay=; the same curve as a schedule
        rate = keras.optimizers.schedules.InverseTimeDecay(rate, 1, decay)
    classes = {
        "adam": keras.optimizers.Adam,
        "adamw": keras.optimizers.AdamW,
        "rmsprop": keras.optimizers.RMSprop,
    }
    return classes[spec.name](learning_rate=rate)
