"""Layer 1: the pure formulas of `keras_sgdplus.update_rules` against values worked by hand."""

import numpy as np
import pytest

from keras_sgdplus import update_rules


def test_plain_step_moves_against_the_gradient():
    # w = 1 - 0.1 * 2
    assert 1.0 - update_rules.plain_decrement(2.0, 0.1) == pytest.approx(0.8)


@pytest.mark.parametrize(
    ("dampening", "nesterov", "expected_weight", "expected_velocity"),
    [
        # v = 0.9 * 0.5 - 0.1 * 2 = 0.25; w = 1 + 0.25
        (0.0, False, 1.25, 0.25),
        # w = 1 + (0.9 * 0.25 - 0.1 * 2) = 1.025
        (0.0, True, 1.025, 0.25),
        # v = 0.45 - (1 - 0.5) * 0.1 * 2 = 0.35; w = 1.35
        (0.5, False, 1.35, 0.35),
        # w = 1 + (0.9 * 0.35 - 0.1 * 2) = 1.115: the look-ahead uses the undamped gradient
        (0.5, True, 1.115, 0.35),
    ],
)
def test_keras_momentum_step_by_hand(dampening, nesterov, expected_weight, expected_velocity):
    increment, velocity = update_rules.keras_momentum_increment(
        2.0, 0.5, learning_rate=0.1, momentum=0.9, dampening=dampening, nesterov=nesterov
    )
    assert 1.0 + increment == pytest.approx(expected_weight)
    assert velocity == pytest.approx(expected_velocity)


@pytest.mark.parametrize(
    ("gradient_scale", "nesterov", "expected_weight", "expected_buffer"),
    [
        # first step: b = g = 2 (the buffer starts at 0); w = 1 - 0.1 * 2
        (1.0, False, 0.8, 2.0),
        # first step, Nesterov: w = 1 - 0.1 * (2 + 0.9 * 2) = 0.62
        (1.0, True, 0.62, 2.0),
    ],
)
def test_torch_first_step_by_hand(gradient_scale, nesterov, expected_weight, expected_buffer):
    decrement, buffer = update_rules.torch_momentum_decrement(
        2.0,
        0.0,
        learning_rate=0.1,
        momentum=0.9,
        gradient_scale=gradient_scale,
        nesterov=nesterov,
    )
    assert 1.0 - decrement == pytest.approx(expected_weight)
    assert buffer == pytest.approx(expected_buffer)


@pytest.mark.parametrize(
    ("nesterov", "expected_weight"),
    [
        # b = 0.9 * 0.5 + (1 - 0.5) * 2 = 1.45; w = 1 - 0.1 * 1.45
        (False, 0.855),
        # w = 1 - 0.1 * (2 + 0.9 * 1.45) = 0.6695
        (True, 0.6695),
    ],
)
def test_torch_later_step_with_dampening_by_hand(nesterov, expected_weight):
    scale = update_rules.torch_gradient_scale(0.5, first_step=0.0)
    decrement, buffer = update_rules.torch_momentum_decrement(
        2.0, 0.5, learning_rate=0.1, momentum=0.9, gradient_scale=scale, nesterov=nesterov
    )
    assert scale == pytest.approx(0.5)
    assert buffer == pytest.approx(1.45)
    assert 1.0 - decrement == pytest.approx(expected_weight)


@pytest.mark.parametrize("nesterov", [False, True])
def test_zero_dampening_and_unit_scale_take_the_same_numbers_as_tensors(nesterov):
    """The shortcuts for a dampening of 0 and a gradient scale of 1 give bit-identical
    results to the general formula with those values as arrays."""
    rng = np.random.default_rng(1)
    g, v = rng.normal(size=7).astype("float32"), rng.normal(size=7).astype("float32")
    lr, mu = np.float32(0.05), np.float32(0.9)
    fast = update_rules.keras_momentum_increment(g, v, lr, mu, 0.0, nesterov)
    general = update_rules.keras_momentum_increment(g, v, lr, mu, np.float32(0.0), nesterov)
    for a, b in zip(fast, general, strict=True):
        np.testing.assert_array_equal(a, b)
    fast = update_rules.torch_momentum_decrement(g, v, lr, mu, 1.0, nesterov)
    general = update_rules.torch_momentum_decrement(g, v, lr, mu, np.float32(1.0), nesterov)
    for a, b in zip(fast, general, strict=True):
        np.testing.assert_array_equal(a, b)


def test_torch_gradient_scale_is_one_on_the_first_step():
    assert update_rules.torch_gradient_scale(0.3, first_step=1.0) == pytest.approx(1.0)
    assert update_rules.torch_gradient_scale(0.3, first_step=0.0) == pytest.approx(0.7)


@pytest.mark.parametrize(
    ("base", "decay", "step", "expected"),
    [(0.1, 0.0, 7, 0.1), (0.1, 0.5, 0, 0.1), (0.1, 0.5, 2, 0.05), (0.3, 0.01, 100, 0.15)],
)
def test_decayed_learning_rate_by_hand(base, decay, step, expected):
    assert update_rules.decayed_learning_rate(base, decay, step) == pytest.approx(expected)


def test_coupled_weight_decay_adds_l2_gradient():
    # g + 0.01 * w = 2 + 0.01 * 3
    assert update_rules.with_coupled_weight_decay(2.0, 3.0, 0.01) == pytest.approx(2.03)


def test_classic_minimize_example_by_hand():
    # tf.keras 2 docs: loss = var**2 / 2 (gradient var), lr 0.1, momentum 0.9, var = 1.0.
    increment, velocity = update_rules.keras_momentum_increment(1.0, 0.0, 0.1, 0.9, 0.0, False)
    weight = 1.0 + increment
    assert 1.0 - weight == pytest.approx(0.1)
    increment, velocity = update_rules.keras_momentum_increment(
        weight, velocity, 0.1, 0.9, 0, False
    )
    assert -increment == pytest.approx(0.18)


@pytest.mark.parametrize("nesterov", [False, True])
def test_conventions_agree_for_a_constant_rate_without_dampening(nesterov):
    """v = -lr * b at every step, so both conventions walk the same path."""
    rng = np.random.default_rng(0)
    lr, mu = 0.05, 0.9
    w_keras = w_torch = rng.normal(size=5)
    v = b = np.zeros(5)
    for step in range(20):
        g = rng.normal(size=5)
        increment, v = update_rules.keras_momentum_increment(g, v, lr, mu, 0.0, nesterov)
        w_keras = w_keras + increment
        scale = update_rules.torch_gradient_scale(0.0, first_step=float(step == 0))
        decrement, b = update_rules.torch_momentum_decrement(g, b, lr, mu, scale, nesterov)
        w_torch = w_torch - decrement
        np.testing.assert_allclose(v, -lr * b, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(w_keras, w_torch, rtol=1e-12)
