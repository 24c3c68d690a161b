"""Layer 2: SGDPlus against the independent NumPy reference, weights and slots, many steps."""

import keras
import numpy as np
import pytest

from keras_sgdplus import SGDPlus
from tests.optimizer.reference import ReferenceSGD
from tests.optimizer.trajectories import (
    TOLERANCE,
    assert_trajectories_close,
    gradient_sequence,
    initial_weights,
    run_keras_optimizer,
    run_reference,
)

SHAPES = [(3, 4), (5,), ()]
STEPS = 40


def staircase(t):
    """0.125 halved every 8 steps: ExponentialDecay(0.125, 8, 0.5, staircase=True); exact."""
    return 0.125 * 0.5 ** (t // 8)


def staircase_schedule():
    return keras.optimizers.schedules.ExponentialDecay(0.125, 8, 0.5, staircase=True)


# (id, SGDPlus keyword arguments, reference keyword arguments)
CONFIGS = [
    ("plain", {}, {}),
    ("momentum", {"momentum": 0.9}, {}),
    ("nesterov", {"momentum": 0.9, "nesterov": True}, {}),
    ("dampening", {"momentum": 0.9, "dampening": 0.3}, {}),
    ("nesterov-dampening", {"momentum": 0.8, "nesterov": True, "dampening": 0.5}, {}),
    ("coupled-wd", {"momentum": 0.9, "coupled_weight_decay": 0.05}, {}),
    ("decoupled-wd", {"momentum": 0.9, "weight_decay": 0.04}, {}),
    ("both-wd", {"momentum": 0.5, "weight_decay": 0.04, "coupled_weight_decay": 0.02}, {}),
    ("decay", {"momentum": 0.9, "decay": 0.05}, {}),
    ("decay-plain", {"decay": 0.2}, {}),
    ("decay-decoupled-wd", {"momentum": 0.9, "decay": 0.05, "weight_decay": 0.04}, {}),
    ("schedule", {"momentum": 0.9, "learning_rate": "staircase"}, {}),
    ("schedule-nesterov", {"momentum": 0.9, "nesterov": True, "learning_rate": "staircase"}, {}),
    (
        "schedule-decay-dampening",
        {"momentum": 0.7, "dampening": 0.2, "decay": 0.1, "learning_rate": "staircase"},
        {},
    ),
]


def build(config, convention):
    kwargs = dict(config)
    if kwargs.get("learning_rate") == "staircase":
        optimizer = SGDPlus(
            **{**kwargs, "learning_rate": staircase_schedule()},
            convention=convention,
            jit_compile=False,
        )
        # the dtype Keras computes this schedule in (float64 on JAX with x64 enabled)
        rate_dtype = np.dtype(keras.ops.convert_to_numpy(staircase_schedule()(0)).dtype).type
        reference = ReferenceSGD(
            **{**kwargs, "learning_rate": staircase}, convention=convention, rate_dtype=rate_dtype
        )
        return optimizer, reference
    kwargs.setdefault("learning_rate", 0.05)
    return SGDPlus(**kwargs, convention=convention), ReferenceSGD(**kwargs, convention=convention)


@pytest.mark.parametrize("jit_compile", [True, False], ids=["xla", "no-xla"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("convention", ["keras", "torch"])
@pytest.mark.parametrize(("name", "config", "_"), CONFIGS, ids=[c[0] for c in CONFIGS])
def test_matches_reference(name, config, _, convention, dtype, jit_compile):
    optimizer, reference = build(config, convention)
    optimizer.jit_compile = jit_compile
    weights, gradients = initial_weights(SHAPES), gradient_sequence(SHAPES, STEPS)
    actual = run_keras_optimizer(optimizer, weights, gradients, dtype)
    expected = run_reference(reference, weights, gradients, dtype)
    assert_trajectories_close(actual, expected, dtype)


@pytest.mark.parametrize("convention", ["keras", "torch"])
def test_conventions_differ_when_the_rate_changes(convention):
    """The reference tells the two conventions apart, so the comparison above has teeth."""
    config = {"momentum": 0.9, "learning_rate": "staircase"}
    other = "torch" if convention == "keras" else "keras"
    optimizer, _ = build(config, convention)
    _, wrong_reference = build(config, other)
    weights, gradients = initial_weights(SHAPES), gradient_sequence(SHAPES, STEPS)
    actual = run_keras_optimizer(optimizer, weights, gradients, "float64")
    wrong = run_reference(wrong_reference, weights, gradients, "float64")
    with pytest.raises(AssertionError):
        assert_trajectories_close(actual, wrong, "float64")


@pytest.mark.parametrize("jit_compile", [True, False])
def test_learning_rate_is_the_base_rate_and_current_learning_rate_the_next_steps(jit_compile):
    """As tf.keras 2's `optimizer.lr`: `learning_rate` is the base rate, without the decay;
    `current_learning_rate` is `lr_t`, the rate the next step uses."""
    optimizer = SGDPlus(learning_rate=0.1, decay=0.5, momentum=0.9, jit_compile=jit_compile)
    variable = keras.Variable(np.ones(2, "float32"))
    reference = ReferenceSGD(learning_rate=0.1, decay=0.5)
    for step in range(5):
        assert float(optimizer.learning_rate) == np.float32(0.1)
        assert float(optimizer.current_learning_rate) == reference.rate(step, np.float32)
        optimizer.apply([keras.ops.ones(2)], [variable])
    assert float(optimizer.learning_rate) == np.float32(0.1)
    # 0.1 / (1 + 0.5 * 5)
    assert float(optimizer.current_learning_rate) == pytest.approx(0.1 / 3.5, rel=1e-7)


@pytest.mark.parametrize(
    ("convention", "dampening", "expected"),
    [("keras", 0.5, 0), ("torch", 0.0, 0), ("torch", 0.5, 2)],
)
def test_torch_convention_tracks_first_steps_only_where_dampening_needs_it(
    convention, dampening, expected
):
    """One `buffer_started` scalar per variable, only with torch's convention and
    dampening (without dampening `b = g` and `b = mu * 0 + g` agree)."""
    optimizer = SGDPlus(0.1, momentum=0.9, dampening=dampening, convention=convention)
    optimizer.build([keras.Variable(np.ones((2, 3))), keras.Variable(np.ones(3))])
    assert len(optimizer.buffer_started) == expected
    assert len(optimizer.variables) == 2 + 2 + expected  # iterations, rate, slots, flags
    for flag in optimizer.buffer_started:
        assert tuple(flag.shape) == ()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("jit_compile", [True, False], ids=["xla", "no-xla"])
def test_torch_buffer_starts_on_each_variables_first_gradient(dtype, jit_compile):
    """Variables joining late (left out of `apply`, or with a `None` gradient) start their
    buffers at `b = g` then, as torch does; the NumPy reference does the same."""
    weights, gradients = initial_weights(SHAPES), gradient_sequence(SHAPES, 12)
    optimizer = SGDPlus(
        0.05, momentum=0.9, dampening=0.4, decay=0.1, convention="torch", jit_compile=jit_compile
    )
    reference = ReferenceSGD(
        learning_rate=0.05, momentum=0.9, dampening=0.4, decay=0.1, convention="torch"
    )
    variables = [keras.Variable(w.astype(dtype), dtype=dtype) for w in weights]
    optimizer.build(variables)
    expected = [w.astype(dtype) for w in weights]
    for step, step_gradients in enumerate(gradients):
        grads = [g.astype(dtype) for g in step_gradients]
        tensors = [keras.ops.convert_to_tensor(g) for g in grads]
        if step < 3:  # only the first variable
            optimizer.apply(tensors[:1], variables[:1])
            grads = [grads[0], None, None]
        elif step < 6:  # the third one has no gradient
            with pytest.warns(UserWarning, match="Gradients do not exist"):
                optimizer.apply([*tensors[:2], None], variables)
            grads[2] = None
        else:
            optimizer.apply(tensors, variables)
        expected = reference.step(expected, grads)
        for variable, want in zip(variables, expected, strict=True):
            np.testing.assert_allclose(
                keras.ops.convert_to_numpy(variable), want, **TOLERANCE[dtype]
            )
    flags = [float(keras.ops.convert_to_numpy(f)) for f in optimizer.buffer_started]
    assert flags == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("jit_compile", [True, False])
def test_a_callable_learning_rate_is_read_at_every_step(jit_compile):
    """A zero-argument callable is asked for the rate before each step, eagerly."""
    rates = [0.1, 0.2, 0.4]
    current = {"rate": rates[0]}
    optimizer = SGDPlus(learning_rate=lambda: current["rate"], jit_compile=jit_compile)
    variable = keras.Variable(np.zeros(1, "float32"))
    for rate in rates:
        current["rate"] = rate
        optimizer.apply([keras.ops.ones(1)], [variable])
    # w = -(0.1 + 0.2 + 0.4) * 1
    np.testing.assert_allclose(keras.ops.convert_to_numpy(variable), [-0.7], rtol=1e-6)


def test_weights_follow_a_loss_gradient_on_rosenbrock():
    """Gradients that depend on the weights: the trajectories stay together for 200 steps."""

    def rosenbrock_gradient(point):
        x, y = point
        return np.array([-2 * (1 - x) - 400 * x * (y - x**2), 200 * (y - x**2)])

    start = np.array([-1.2, 1.0])
    for convention in ("keras", "torch"):
        optimizer = SGDPlus(
            learning_rate=0.0005, momentum=0.9, nesterov=True, convention=convention
        )
        reference = ReferenceSGD(
            learning_rate=0.0005, momentum=0.9, nesterov=True, convention=convention
        )
        variable = keras.Variable(start, dtype="float64")
        expected = start.copy()
        for _ in range(200):
            gradient = rosenbrock_gradient(keras.ops.convert_to_numpy(variable))
            optimizer.apply([keras.ops.convert_to_tensor(gradient)], [variable])
            (expected,) = reference.step([expected], [rosenbrock_gradient(expected)])
        np.testing.assert_allclose(keras.ops.convert_to_numpy(variable), expected, rtol=1e-10)
        # and it did descend: Rosenbrock(-1.2, 1) = 24.2
        x, y = expected
        assert (1 - x) ** 2 + 100 * (y - x**2) ** 2 < 24.2
