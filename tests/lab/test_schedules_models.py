"""Schedules' preview curves against their formulas; models, losses and optimizers per task.

Bad settings are refused when a spec is made: tests/lab/test_config.py."""

import math

import keras
import numpy as np
import pytest

from keras_sgdplus import SGDPlus
from keras_sgdplus.lab.config import ModelSpec, OptimizerSpec, ScheduleSpec
from keras_sgdplus.lab.models import build_model, loss_name
from keras_sgdplus.lab.optimizers import make_optimizer
from keras_sgdplus.lab.schedules import schedule_curve

pytestmark = pytest.mark.usefixtures("fresh_keras_state")

STEPS = 120
T = np.arange(STEPS)


def cosine_with_warmup(t, rate, warmup, total):
    if t < warmup:
        return rate * t / warmup
    return rate * 0.5 * (1 + math.cos(math.pi * (t - warmup) / (total - warmup)))


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (ScheduleSpec("constant"), np.full(STEPS, 0.1)),
        (ScheduleSpec("time_decay", decay=0.05), 0.1 / (1 + 0.05 * T)),
        (ScheduleSpec("step", drop=0.5, every_steps=30), 0.1 * 0.5 ** (T // 30)),
        (ScheduleSpec("exponential", rate=0.5, every_steps=40), 0.1 * 0.5 ** (T / 40)),
        (
            ScheduleSpec("cosine", warmup_steps=20),
            np.array([cosine_with_warmup(t, 0.1, 20, STEPS) for t in T]),
        ),
        (ScheduleSpec("cosine"), np.array([cosine_with_warmup(t, 0.1, 0, STEPS) for t in T])),
    ],
    ids=lambda value: getattr(value, "name", ""),
)
def test_schedule_curve_follows_its_formula(spec, expected):
    np.testing.assert_allclose(schedule_curve(spec, 0.1, STEPS), expected, rtol=2e-6, atol=1e-8)


def test_the_optimizer_follows_the_previewed_curve():
    spec = OptimizerSpec(
        learning_rate=0.1, momentum=0.9, schedule=ScheduleSpec("step", every_steps=3)
    )
    optimizer = make_optimizer(spec, total_steps=10)
    variable = keras.Variable(np.zeros(1, "float32"))
    seen = []
    for _ in range(10):
        seen.append(float(optimizer.learning_rate))
        optimizer.apply([keras.ops.ones(1)], [variable])
    np.testing.assert_allclose(seen, schedule_curve(spec.schedule, 0.1, 10), rtol=1e-6)


@pytest.mark.parametrize("name", ["sgdplus", "adam", "adamw", "rmsprop"])
def test_every_optimizer_is_made_with_its_rate(name):
    optimizer = make_optimizer(OptimizerSpec(name=name, learning_rate=0.05), total_steps=10)
    assert float(optimizer.learning_rate) == pytest.approx(0.05)


def test_sgdplus_modes():
    spec = OptimizerSpec(momentum=0.9, nesterov=True, convention="torch")
    optimizer = make_optimizer(spec, total_steps=10)
    assert isinstance(optimizer, SGDPlus)
    assert (optimizer.momentum, optimizer.nesterov, optimizer.convention) == (0.9, True, "torch")


@pytest.mark.parametrize(
    ("task", "shape", "classes", "units", "kinds"),
    [
        ("multiclass", (64,), 10, 10, {"Dense"}),
        ("binary", (2,), 2, 1, {"Dense"}),
        ("regression", (10,), None, 1, {"Dense"}),
        ("multiclass", (28, 28, 1), 10, 10, {"Conv2D", "MaxPooling2D", "Flatten", "Dense"}),
    ],
)
def test_models_fit_the_task(task, shape, classes, units, kinds):
    model = build_model(ModelSpec(depth=2, width=16), task, shape, classes)
    assert model.output_shape == (None, units)
    assert {type(layer).__name__ for layer in model.layers} == kinds
    out = model(np.zeros((3, *shape), "float32"))
    if task == "multiclass":
        np.testing.assert_allclose(keras.ops.convert_to_numpy(out).sum(axis=1), 1.0, rtol=1e-5)


def test_losses_per_task():
    assert loss_name(ModelSpec(), "multiclass") == "sparse_categorical_crossentropy"
    assert loss_name(ModelSpec(), "binary") == "binary_crossentropy"
    assert loss_name(ModelSpec(loss="mae"), "regression") == "mae"
