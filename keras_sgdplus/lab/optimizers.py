"""The optimizers a run can use: SGDPlus in its modes, and Keras's Adam, AdamW and RMSprop."""

from __future__ import annotations

from dataclasses import dataclass, field

import keras

from keras_sgdplus import SGDPlus
from keras_sgdplus.lab.schedules import ScheduleSpec, learning_rate_arguments

OPTIMIZERS = {
    "sgdplus": "SGDPlus: plain SGD, momentum or Nesterov, in the Keras or torch convention",
    "adam": "Keras Adam (baseline)",
    "adamw": "Keras AdamW (baseline)",
    "rmsprop": "Keras RMSprop (baseline)",
}


@dataclass(frozen=True)
class OptimizerSpec:
    """An optimizer by name with its hyperparameters, as a run's config stores it."""

    name: str = "sgdplus"
    learning_rate: float = 0.01
    momentum: float = 0.0
    nesterov: bool = False
    convention: str = "keras"
    schedule: ScheduleSpec = field(default_factory=ScheduleSpec)


def make_optimizer(spec: OptimizerSpec, total_steps: int) -> keras.optimizers.Optimizer:
    """A fresh optimizer; bad values raise ValueError naming the argument."""
    if spec.name not in OPTIMIZERS:
        raise ValueError(
            f"`optimizer` must be one of {', '.join(OPTIMIZERS)}. Received: optimizer={spec.name!r}"
        )
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
    if not callable(rate) and rate < 0:
        raise ValueError(f"`learning_rate` must be >= 0. Received: learning_rate={rate}")
    classes = {
        "adam": keras.optimizers.Adam,
        "adamw": keras.optimizers.AdamW,
        "rmsprop": keras.optimizers.RMSprop,
    }
    return classes[spec.name](learning_rate=rate)
