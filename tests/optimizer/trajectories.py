"""Run an optimizer over a fixed gradient sequence and record weights and slots per step."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np


@dataclass
class Trajectory:
    weights: list[list[np.ndarray]]  # [step][variable]
    slots: list[list[np.ndarray]]


def gradient_sequence(shapes, steps, seed=0):
    """Random gradients, the same for every optimizer compared: [step][variable]."""
    rng = np.random.default_rng(seed)
    return [[rng.normal(size=shape) for shape in shapes] for _ in range(steps)]


def initial_weights(shapes, seed=1):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=shape) for shape in shapes]


def run_keras_optimizer(optimizer, weights, gradients, dtype) -> Trajectory:
    """Applies `gradients` step by step with `optimizer.apply`, eagerly."""
    variables = [keras.Variable(w.astype(dtype), dtype=dtype) for w in weights]
    trajectory = Trajectory([], [])
    for step_gradients in gradients:
        tensors = [keras.ops.convert_to_tensor(g.astype(dtype)) for g in step_gradients]
        optimizer.apply(tensors, variables)
        trajectory.weights.append([keras.ops.convert_to_numpy(v) for v in variables])
        trajectory.slots.append(
            [keras.ops.convert_to_numpy(m) for m in getattr(optimizer, "momentums", [])]
        )
    return trajectory


def run_reference(reference, weights, gradients, dtype) -> Trajectory:
    current = [w.astype(dtype) for w in weights]
    trajectory = Trajectory([], [])
    for step_gradients in gradients:
        current = reference.step(current, [g.astype(dtype) for g in step_gradients])
        trajectory.weights.append(current)
        trajectory.slots.append(list(reference.slots) if reference.momentum else [])
    return trajectory


TOLERANCE = {"float32": {"rtol": 2e-5, "atol": 1e-6}, "float64": {"rtol": 1e-12, "atol": 1e-13}}


def assert_trajectories_close(actual: Trajectory, expected: Trajectory, dtype) -> None:
    tolerance = TOLERANCE[dtype]
    for step, (got, want) in enumerate(zip(actual.weights, expected.weights, strict=True)):
        for got_w, want_w in zip(got, want, strict=True):
            np.testing.assert_allclose(got_w, want_w, **tolerance, err_msg=f"weights, step {step}")
    for step, (got, want) in enumerate(zip(actual.slots, expected.slots, strict=True)):
        assert len(got) == len(want)
        for got_s, want_s in zip(got, want, strict=True):
            np.testing.assert_allclose(got_s, want_s, **tolerance, err_msg=f"slots, step {step}")
