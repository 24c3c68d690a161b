"""Learning-rate schedules for the dashboard and the `sgdplus` command, with their curves.

Each schedule is made of Keras parts (a `LearningRateSchedule` or a float) plus SGDPlus's
`decay=`, so the curve shown before training is the one the optimizer will follow:
`lr_t = base(t) / (1 + decay * t)` at step `t` (the first step has t = 0). The settings
(`ScheduleSpec`, the `SCHEDULES` by name) live in `lab/config.py`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from keras_sgdplus.lab.config import ScheduleSpec


def learning_rate_arguments(spec: ScheduleSpec, base_rate: float, total_steps: int) -> dict:
    """`learning_rate` (float or Keras schedule) and `decay` to give SGDPlus."""
    import keras

    if spec.name == "constant":
        return {"learning_rate": base_rate, "decay": 0.0}
    if spec.name == "time_decay":
        return {"learning_rate": base_rate, "decay": spec.decay}
    schedules = keras.optimizers.schedules
    if spec.name == "step":
        schedule: Any = schedules.ExponentialDecay(
            base_rate, spec.every_steps, spec.drop, staircase=True
        )
    elif spec.name == "exponential":
        schedule = schedules.ExponentialDecay(base_rate, spec.every_steps, spec.rate)
    else:
        warmup = min(spec.warmup_steps, max(total_steps - 1, 0))
        schedule = schedules.CosineDecay(
            0.0 if warmup else base_rate,
            decay_steps=max(total_steps - warmup, 1),
            warmup_steps=warmup,
            warmup_target=base_rate if warmup else None,
        )
    return {"learning_rate": schedule, "decay": 0.0}


def schedule_curve(spec: ScheduleSpec, base_rate: float, total_steps: int) -> np.ndarray:
    """The rate of steps 0 .. total_steps - 1, as the optimizer will compute it.

    The same Keras parts in float32, then `lr_t = base(t) / (1 + decay * t)` in float32
    with `decay` rounded to float32, as `SGDPlus.current_learning_rate` does for float32
    weights: this is the `learning_rate` column a run records for each step, equal to the
    rate each step used (tests/lab/test_training.py reads it back from the optimizer).
    """
    import keras

    arguments = learning_rate_arguments(spec, base_rate, total_steps)
    steps = np.arange(total_steps, dtype="float32")
    rate = arguments["learning_rate"]
    if callable(rate):
        # vectorized_map: CosineDecay branches on the step, so it can't take all at once
        base = np.asarray(
            keras.ops.convert_to_numpy(keras.ops.vectorized_map(rate, steps)), dtype="float32"
        )
    else:
        base = np.full(total_steps, rate, dtype="float32")
    decay = np.float32(arguments["decay"])
    return (base / (np.float32(1.0) + decay * steps)).astype("float64")
