"""Layer 3: SGDPlus against keras.optimizers.SGD over every argument they share."""

import warnings

import keras
import numpy as np
import pytest

from keras_sgdplus import SGDPlus
from tests.optimizer.trajectories import (
    assert_trajectories_close,
    gradient_sequence,
    initial_weights,
    run_keras_optimizer,
)

SHAPES = [(4, 3), (3,)]
SHARED_ARGUMENTS = [
    {},
    {"learning_rate": 0.05},
    {"learning_rate": 0.05, "momentum": 0.9},
    {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True},
    {"momentum": 0.5, "weight_decay": 0.01},
    {"momentum": 0.9, "clipnorm": 0.5},
    {"momentum": 0.9, "clipvalue": 0.3},
    {"momentum": 0.9, "global_clipnorm": 0.7},
    {"momentum": 0.9, "use_ema": True, "ema_momentum": 0.9},
    {"momentum": 0.9, "use_ema": True, "ema_overwrite_frequency": 3},
    {"momentum": 0.9, "loss_scale_factor": 128.0},
    {"momentum": 0.9, "gradient_accumulation_steps": 3},
    {"momentum": 0.9, "learning_rate": "cosine"},
    {"momentum": 0.9, "nesterov": True, "learning_rate": "exponential"},
]


def with_schedule(arguments):
    schedules = {
        "cosine": lambda: keras.optimizers.schedules.CosineDecay(0.1, decay_steps=20),
        "exponential": lambda: keras.optimizers.schedules.ExponentialDecay(0.1, 5, 0.7),
    }
    rate = arguments.get("learning_rate")
    if rate in schedules:
        return {**arguments, "learning_rate": schedules[rate]()}
    return arguments


def argument_id(arguments):
    return "-".join(f"{k}={v}" for k, v in arguments.items()) or "defaults"


def test_defaults_are_those_of_keras_sgd():
    ours, theirs = SGDPlus().get_config(), keras.optimizers.SGD().get_config()
    for key, value in theirs.items():
        if key != "name":
            assert ours[key] == value, key


@pytest.mark.parametrize("jit_compile", [True, False], ids=["xla", "no-xla"])
@pytest.mark.parametrize("arguments", SHARED_ARGUMENTS, ids=argument_id)
def test_apply_matches_keras_sgd(arguments, jit_compile):
    weights, gradients = initial_weights(SHAPES), gradient_sequence(SHAPES, 25)
    ours = run_keras_optimizer(
        SGDPlus(**with_schedule(arguments), jit_compile=jit_compile), weights, gradients, "float32"
    )
    theirs = run_keras_optimizer(
        keras.optimizers.SGD(**with_schedule(arguments)), weights, gradients, "float32"
    )
    assert_trajectories_close(ours, theirs, "float32")


def small_regression_problem(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(96, 8)).astype("float32")
    y = (x @ rng.normal(size=(8, 2)) + 0.1 * rng.normal(size=(96, 2))).astype("float32")
    return x, y


def mlp(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(16, activation="tanh"), keras.layers.Dense(2)]
    )


def fit_weights(optimizer, jit_compile, epochs=3, batch_size=16):
    x, y = small_regression_problem()
    model = mlp()
    model.compile(optimizer=optimizer, loss="mse", jit_compile=jit_compile)
    history = model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=False, verbose=0)
    return model.get_weights(), history.history["loss"]


@pytest.mark.parametrize("jit_compile", [True, False], ids=["fit-xla", "fit-graph"])
@pytest.mark.parametrize(
    "arguments",
    [
        {"learning_rate": 0.05},
        {"learning_rate": 0.05, "momentum": 0.9},
        {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
    ],
    ids=argument_id,
)
def test_model_fit_matches_keras_sgd(arguments, jit_compile):
    ours, our_loss = fit_weights(SGDPlus(**arguments), jit_compile)
    theirs, their_loss = fit_weights(keras.optimizers.SGD(**arguments), jit_compile)
    for got, want in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(our_loss, their_loss, rtol=1e-5)
    assert our_loss[-1] < our_loss[0]


@pytest.mark.tensorflow_only
@pytest.mark.parametrize("in_tf_function", [False, True], ids=["eager", "tf.function"])
def test_gradient_tape_loop_matches_keras_sgd(in_tf_function):
    import tensorflow as tf

    x, y = small_regression_problem()

    def train(optimizer):
        model = mlp()
        loss_fn = keras.losses.MeanSquaredError()

        def step(xb, yb):
            with tf.GradientTape() as tape:
                loss = loss_fn(yb, model(xb, training=True))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
            return loss

        step = tf.function(step) if in_tf_function else step
        for start in range(0, 96, 16):
            step(x[start : start + 16], y[start : start + 16])
        return model.get_weights()

    ours = train(SGDPlus(0.05, momentum=0.9, nesterov=True))
    theirs = train(keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True))
    for got, want in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def embedding_model(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((5,), dtype="int32"),
            keras.layers.Embedding(50, 4),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(1),
        ]
    )


@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("jit_compile", [True, False], ids=["xla", "no-xla"])
def test_sparse_embedding_gradients_match_keras_sgd(momentum, jit_compile):
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 50, size=(64, 5)).astype("int32")
    ids[:, 0] = ids[:, 1]  # duplicate rows inside a batch: sums of IndexedSlices
    target = rng.normal(size=(64, 1)).astype("float32")

    def train(optimizer):
        model = embedding_model()
        model.compile(optimizer=optimizer, loss="mse", jit_compile=False)
        model.fit(ids, target, batch_size=16, epochs=2, shuffle=False, verbose=0)
        return model.get_weights()

    ours = train(SGDPlus(0.5, momentum=momentum, jit_compile=jit_compile))
    theirs = train(keras.optimizers.SGD(0.5, momentum=momentum))
    for got, want in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.tensorflow_only
def test_embedding_gradient_reaches_sgdplus_as_indexed_slices():
    import tensorflow as tf

    model = embedding_model()
    optimizer = SGDPlus(0.5)
    with tf.GradientTape() as tape:
        loss = keras.ops.mean(model(np.array([[1, 2, 2, 3, 4]], "int32")))
    grads = tape.gradient(loss, model.trainable_variables)
    assert isinstance(grads[0], tf.IndexedSlices)
    before = model.trainable_variables[0].numpy().copy()
    optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
    after = model.trainable_variables[0].numpy()
    changed_rows = sorted(np.flatnonzero(np.any(before != after, axis=1)))
    assert changed_rows == [1, 2, 3, 4]


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_mixed_float16_fit_matches_keras_sgd(momentum):
    x, y = small_regression_problem()

    def train(optimizer):
        keras.mixed_precision.set_dtype_policy("mixed_float16")
        model = mlp()
        model.compile(optimizer=optimizer, loss="mse", jit_compile=False)
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
        keras.mixed_precision.set_dtype_policy("float32")
        return model.get_weights()

    ours = train(SGDPlus(0.05, momentum=momentum))
    theirs = train(keras.optimizers.SGD(0.05, momentum=momentum))
    for got, want in zip(ours, theirs, strict=True):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)


@pytest.mark.tensorflow_only  # on JAX, an eager LossScaleOptimizer.apply fails in Keras
# itself (a tracer leaks out of its lax.cond), with keras.optimizers.SGD as well; model.fit
# in mixed precision, the way it is used there, is tested above.
def test_loss_scale_optimizer_skips_steps_with_overflowing_gradients():
    optimizer = keras.optimizers.LossScaleOptimizer(SGDPlus(0.1, momentum=0.9))
    variable = keras.Variable(np.ones(2, "float32"))
    optimizer.apply([keras.ops.convert_to_tensor(np.array([np.inf, 1.0], "float32"))], [variable])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable), [1.0, 1.0])
    scale = float(keras.ops.convert_to_numpy(optimizer.dynamic_scale))
    assert scale == 2.0**14  # halved from its initial 2**15 by the overflow
    optimizer.apply([keras.ops.ones(2) * scale], [variable])  # gradients of the scaled loss
    np.testing.assert_allclose(keras.ops.convert_to_numpy(variable), [0.9, 0.9], rtol=1e-6)


@pytest.mark.tensorflow_only
@pytest.mark.parametrize(
    "arguments",
    [
        {"nesterov": True},
        # decay with decoupled weight decay, and torch's per-variable first steps
        {"decay": 0.1, "weight_decay": 0.01, "convention": "torch", "dampening": 0.3},
    ],
    ids=argument_id,
)
def test_mirrored_strategy_gives_the_weights_of_single_device_training(arguments):
    import tensorflow as tf

    devices = [d.name for d in tf.config.list_logical_devices("CPU")][:2]
    assert len(devices) == 2, "tests/conftest.py sets up two logical CPU devices"
    x, y = small_regression_problem()

    def train(strategy):
        with strategy.scope():
            model = mlp()
            model.compile(optimizer=SGDPlus(0.05, momentum=0.9, **arguments), loss="mse")
        model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
        return model.get_weights()

    single = train(tf.distribute.get_strategy())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mirrored = train(tf.distribute.MirroredStrategy(devices))
    for got, want in zip(mirrored, single, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    fallback = [w for w in caught if "not XLA-compiling" in str(w.message)]
    assert len(fallback) == 1
    assert "MirroredStrategy" in str(fallback[0].message)


@pytest.mark.parametrize("jit_compile", [True, False], ids=["xla", "no-xla"])
def test_constraints_and_missing_gradients_as_keras_sgd(jit_compile):
    """The cases Keras's `apply` handles around the update: both optimizers agree."""

    def run(optimizer):
        layer = keras.layers.Dense(1, kernel_constraint=keras.constraints.NonNeg())
        layer.build((None, 3))
        layer.kernel.assign(np.ones((3, 1), "float32"))
        constrained = layer.kernel
        free = keras.Variable(np.ones(2, "float32"))
        for _ in range(3):
            optimizer.apply([keras.ops.ones((3, 1)) * 4.0, keras.ops.ones(2)], [constrained, free])
        with pytest.warns(UserWarning, match="Gradients do not exist"):
            optimizer.apply([None, keras.ops.ones(2)], [constrained, free])
        return [keras.ops.convert_to_numpy(v) for v in (constrained, free)]

    ours = run(SGDPlus(0.1, momentum=0.5, jit_compile=jit_compile))
    theirs = run(keras.optimizers.SGD(0.1, momentum=0.5))
    np.testing.assert_array_equal(ours[0], [[0.0]] * 3)  # clipped at zero by NonNeg
    for got, want in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6)
