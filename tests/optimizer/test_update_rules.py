"""Layer 1: the pure formulas of `keras_sgdplus.update_rules` against values worked by hand."""

import numpy as np
import pytest

from keras_sgdplus import update_rules


def test_plain_step_moves_against_the_gradient():
    # w = 1 - 0.1 * 2
    assert update_rules.plain_step(1.0, 2.0, 0.1) == pytest.approx(0.8)


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
    weight, velocity = update_rules.keras_momentum_step(
        1.0, 2.0, 0.5, learning_rate=0.1, momentum=0.9, dampening=dampening, nesterov=nesterov
    )
    assert weight == pytest.approx(expected_weight)
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
    weight, buffer = update_rules.torch_momentum_step(
        1.0,
        2.0,
        0.0,
        learning_rate=0.1,
        momentum=0.9,
        gradient_scale=gradient_scale,
        nesterov=nesterov,
    )
    assert weight == pytest.approx(expected_weight)
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
    weight, buffer = update_rules.torch_momentum_step(
        1.0, 2.0, 0.5, learning_rate=0.1, momentum=0.9, gradient_scale=scale, nesterov=nesterov
    )
    assert scale == pytest.approx(0.5)
    assert buffer == pytest.approx(1.45)
    assert weight == pytest.approx(expected_weight)


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
    weight, velocity = update_rules.keras_momentum_step(1.0, 1.0, 0.0, 0.1, 0.9, 0.0, False)
    assert 1.0 - weight == pytest.approx(0.1)
    moved = weight
    weight, velocity = update_rules.keras_momentum_step(
        weight, weight, velocity, 0.1, 0.9, 0, False
    )
    assert moved - weight == pytest.approx(0.18)


@pytest.mark.parametrize("nesterov", [False, True])
def test_conventions_agree_for_a_constant_rate_without_dampening(nesterov):
    """v = -lr * b at every step, so both conventions walk the same path."""
    rng = np.random.default_rng(0)
    lr, mu = 0.05, 0.9
    w_keras = w_torch = rng.normal(size=5)
    v = b = np.zeros(5)
    for step in range(20):
        g = rng.normal(size=5)
        w_keras, v = update_rules.keras_momentum_step(w_keras, g, v, lr, mu, 0.0, nesterov)
        scale = update_rules.torch_gradient_scale(0.0, first_step=float(step == 0))
        w_torch, b = update_rules.torch_momentum_step(w_torch, g, b, lr, mu, scale, nesterov)
        np.testing.assert_allclose(v, -lr * b, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(w_keras, w_torch, rtol=1e-12)
