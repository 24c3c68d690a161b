"""Constructor arguments: Keras-style errors for bad values, and what is accepted."""

import math
import re
import warnings

import numpy as np
import pytest

from keras_sgdplus import SGDPlus

BAD_ARGUMENTS = [
    ("learning_rate", -0.1, "`learning_rate` must be a finite number >= 0"),
    ("learning_rate", math.nan, "`learning_rate` must be a finite number >= 0"),
    ("learning_rate", math.inf, "`learning_rate` must be a finite number >= 0"),
    ("learning_rate", "fast", "`learning_rate` must be a real number"),
    ("momentum", 1.5, "`momentum` must be in [0, 1]"),
    ("momentum", -0.1, "`momentum` must be in [0, 1]"),
    ("momentum", math.nan, "`momentum` must be in [0, 1]"),
    ("momentum", None, "`momentum` must be a real number"),
    ("dampening", 1.01, "`dampening` must be in [0, 1]"),
    ("dampening", -1, "`dampening` must be in [0, 1]"),
    ("decay", -1e-4, "`decay` must be a finite number >= 0"),
    ("decay", math.nan, "`decay` must be a finite number >= 0"),
    ("coupled_weight_decay", -0.01, "`coupled_weight_decay` must be a finite number >= 0"),
    ("convention", "pytorch", "`convention` must be one of 'keras', 'torch'"),
    ("nesterov", "yes", "`nesterov` must be True or False"),
    ("jit_compile", 1, "`jit_compile` must be True or False"),
]


@pytest.mark.parametrize(
    ("name", "value", "message"), BAD_ARGUMENTS, ids=[f"{n}={v!r}" for n, v, _ in BAD_ARGUMENTS]
)
def test_bad_argument_is_a_value_error_naming_it(name, value, message):
    with pytest.raises(ValueError, match=re.escape(message)) as error:
        SGDPlus(**{name: value})
    assert f"Received: {name}={value!r}" in str(error.value)


def test_unknown_keyword_is_rejected_as_keras_does():
    with pytest.raises(ValueError, match="not recognized"):
        SGDPlus(momentun=0.9)


def test_base_class_arguments_are_still_checked():
    with pytest.raises(ValueError, match="Only one of `clipnorm`, `clipvalue`"):
        SGDPlus(clipnorm=1.0, clipvalue=1.0)


@pytest.mark.parametrize(
    "arguments",
    [
        {"learning_rate": 1, "momentum": 0},
        {"learning_rate": np.float32(0.1), "momentum": np.float64(0.9)},
        {"momentum": np.int64(1), "dampening": np.float16(0.5), "decay": 0},
        {"coupled_weight_decay": np.float32(1e-4), "nesterov": np.bool_(False)},
    ],
)
def test_ints_and_numpy_scalars_are_accepted_as_floats(arguments):
    config = SGDPlus(**arguments).get_config()
    for name, value in arguments.items():
        assert config[name] == pytest.approx(float(value))
        assert type(config[name]) in (float, bool)


def test_boundaries_are_accepted():
    SGDPlus(learning_rate=0.0, momentum=1.0, dampening=1.0, decay=0.0)


def test_nesterov_without_momentum_warns_and_runs_plain_sgd():
    import keras

    with pytest.warns(UserWarning, match="`nesterov=True` has no effect with `momentum=0`"):
        optimizer = SGDPlus(learning_rate=0.1, nesterov=True)
    variable = keras.Variable(np.ones(3, "float32"))
    optimizer.apply([keras.ops.ones(3)], [variable])
    optimizer.apply([keras.ops.ones(3)], [variable])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(variable), [0.8] * 3, rtol=1e-6)
    assert optimizer.momentums == []


def test_dampening_without_momentum_warns():
    with pytest.warns(UserWarning, match="`dampening=0.5` has no effect"):
        SGDPlus(dampening=0.5)


def test_valid_arguments_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SGDPlus(learning_rate=0.1, momentum=0.9, nesterov=True, dampening=0.1)
