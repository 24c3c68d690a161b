"""SGDPlus(decay=...) against golden trajectories recorded from tf.keras 2.15's legacy SGD.

`decay=` exists for code ported from tf.keras 2, so `tf.keras.optimizers.legacy.SGD` of
tf.keras 2.15 is the reference. The goldens (`tests/golden/tf2_sgd_decay_trajectories.npz`)
were made by `tests/golden/make_tf2_golden.py`: a linear model trained with `model.fit`
under `ReduceLROnPlateau` or `LearningRateScheduler`, which read the learning rate, halve it
and set it back while the decay runs. tf.keras 2 read and set the base rate and kept
decaying it, so the step after the first halving (`t = 8`) runs at `0.05 / (1 + 0.05 * 8)`
= 0.0357 (it would be 0.0255 if the decayed rate were halved and decayed again). Each
config is replayed here with SGDPlus in Keras 3's `model.fit` with Keras 3's own
`ReduceLROnPlateau` and `LearningRateScheduler`, and compared at every step: the weights,
`learning_rate` against tf.keras 2's `optimizer.lr` (the base rate), and
`current_learning_rate` against the rate tf.keras 2 used (`_decayed_lr(var_dtype)`).

tf.keras 2 kept `momentum` as a float32 variable (0.9 became 0.8999999761581421 for
float64 variables) where SGDPlus, as `keras.optimizers.SGD`, uses the exact value: the
goldens use momentum 0.875, exact in float32, so that both use the same number.

Tolerances. The rates must agree exactly: in float32 both compute the same three IEEE
operations, `lr / (1 + decay * t)` with `decay` as a float32 constant, and in float64 the
same with the float32 `lr` and `decay` cast to float64. The weights: the two libraries
compute the same gradients and updates with their own kernels (summation order of the
matmuls, fused multiply-adds), a few ulps apart per step; the problem is well conditioned,
so the differences stay at that level. When written, the largest difference over all
configs, on both backends, with and without `jit_compile`, was 1.4e-7 (float32) and 4.1e-16
(float64) times the largest magnitude in the same record: about 2 ulps of that entry.
- float32: `rtol = 5e-7` (about 4 ulps), with an absolute floor of `5e-7` times the largest
  magnitude in the record, for entries that pass near zero.
- float64: `rtol = 1e-12`, floor `1e-12` times the largest magnitude. A decay computed in
  float32 for float64 variables (as SGDPlus did before; `lr_t` off by up to 1.2e-7
  relative) moves the weights by 0.5e-8 to 2e-8 of that magnitude and fails this by four
  orders of magnitude: `test_a_float32_decay_fails_the_float64_comparison` checks that.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import keras
import numpy as np
import pytest

from keras_sgdplus import SGDPlus

GOLDEN_DIR = pathlib.Path(__file__).resolve().parents[1] / "golden"
GOLDEN = dict(np.load(GOLDEN_DIR / "tf2_sgd_decay_trajectories.npz", allow_pickle=False))
CONFIGS = json.loads(str(GOLDEN["configs_json"]))
CONFIGS_BY_NAME = {config["name"]: config for config in CONFIGS}
PARAMS = ("W", "b")

TOLERANCE = {"float32": 5e-7, "float64": 1e-12}  # rtol, and the absolute floor's scale


pytestmark = pytest.mark.usefixtures("jax_float64")


def _rate_callback(spec: dict) -> keras.callbacks.Callback:
    """The Keras 3 callback of a golden config's `callback` entry."""
    if spec["kind"] == "ReduceLROnPlateau":
        return keras.callbacks.ReduceLROnPlateau(
            monitor=spec["monitor"],
            factor=spec["factor"],
            patience=spec["patience"],
            min_delta=spec["min_delta"],
            mode="min",
        )
    assert spec["kind"] == "LearningRateScheduler"
    halve_at, factor = set(spec["halve_at_epochs"]), spec["factor"]
    return keras.callbacks.LearningRateScheduler(
        lambda epoch, lr: lr * factor if epoch in halve_at else lr
    )


def _numpy(value: Any) -> np.ndarray:
    """A copy of a variable's or tensor's value (no Keras `convert_to_numpy`: it warns on
    NumPy 2)."""
    if isinstance(value, keras.Variable):
        value = value.value
    return np.asarray(value).copy()


class _Recorder(keras.callbacks.Callback):
    """What the golden records: the weights after every step (the initial ones first), and
    before each step `current_learning_rate` and `learning_rate`."""

    def __init__(self) -> None:
        super().__init__()
        self.record: dict[str, list[np.ndarray]] = {"lr": [], "lr_base": [], "W": [], "b": []}

    def _weights(self) -> None:
        layer = self.model.layers[-1]
        self.record["W"].append(_numpy(layer.kernel))
        self.record["b"].append(_numpy(layer.bias))

    def on_train_begin(self, logs: Any = None) -> None:
        self._weights()

    def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
        optimizer = self.model.optimizer
        self.record["lr"].append(_numpy(optimizer.current_learning_rate))
        self.record["lr_base"].append(_numpy(optimizer.learning_rate))

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        self._weights()


class _MeanSquaredError(keras.losses.Loss):
    """tf.keras 2's `"mse"` (mean over the outputs, then over the batch) in the loss's dtype.

    Keras 3's own `MeanSquaredError(dtype="float64")` would do, but on JAX (Keras 3.15)
    `keras.ops.mean` of a float64 tensor computes in float32, and the gradients lose
    float64's precision (5e-9 relative); `keras.ops.sum` keeps float64.
    """

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return keras.ops.sum(keras.ops.square(y_pred - y_true), axis=-1) / y_pred.shape[-1]


def _fit_sgdplus(
    config: dict, jit_compile: bool = True, optimizer_class: type = SGDPlus
) -> dict[str, np.ndarray]:
    """Replays one golden config with `model.fit`; returns records shaped as the golden's."""
    dtype = config["dtype"]
    model = keras.Sequential([keras.Input((GOLDEN["X"].shape[1],), dtype=dtype)])
    model.add(keras.layers.Dense(GOLDEN["Y"].shape[1], dtype=dtype))
    layer = model.layers[-1]
    layer.kernel.assign(GOLDEN["W0"].astype(dtype))
    layer.bias.assign(GOLDEN["b0"].astype(dtype))
    optimizer = optimizer_class(
        learning_rate=config["learning_rate"],
        momentum=config["momentum"],
        nesterov=config["nesterov"],
        decay=config["decay"],
    )
    # A loss in the model's dtype: Keras 3 losses compute in floatx (float32) by default.
    model.compile(
        optimizer=optimizer,
        loss=_MeanSquaredError(name="mse", dtype=dtype),
        jit_compile=jit_compile,
    )
    recorder = _Recorder()
    spec = config["callback"]
    model.fit(
        GOLDEN["X"].astype(dtype),
        GOLDEN["Y"].astype(dtype),
        batch_size=spec["batch_size"],
        epochs=spec["epochs"],
        shuffle=False,
        verbose=0,
        callbacks=[_rate_callback(spec), recorder],
    )
    assert int(_numpy(optimizer.iterations)) == config["steps"]
    out = {key: np.asarray(values) for key, values in recorder.record.items()}
    assert out["W"].dtype == np.dtype(dtype)
    return out


def _golden(name: str, key: str) -> np.ndarray:
    return GOLDEN[f"{name}__{key}"]


def _assert_weights_close(name: str, actual: dict[str, np.ndarray], rtol: float) -> None:
    """Fails with the first step at which a weight differs from tf.keras 2's."""
    for index in range(len(_golden(name, "W"))):
        for key in PARAMS:
            got, want = actual[key][index], _golden(name, key)[index]
            atol = rtol * float(np.max(np.abs(_golden(name, key))))
            if not np.allclose(got, want, rtol=rtol, atol=atol):
                worst = np.unravel_index(np.argmax(np.abs(got - want)), got.shape)
                pytest.fail(
                    f"{name}: {key} differs from tf.keras 2 after {index} steps: entry "
                    f"{tuple(int(i) for i in worst)}: SGDPlus {float(got[worst])!r}, "
                    f"tf.keras 2 {float(want[worst])!r}; rtol={rtol}, atol={atol:.3e}"
                )


def _halved_from_step(spec: dict) -> list[int]:
    """The steps (0-based) from which the callback has halved the base rate once more."""
    steps_per_epoch = len(GOLDEN["X"]) // spec["batch_size"]
    if spec["kind"] == "ReduceLROnPlateau":
        # epoch 0 sets the best loss; none after it improves by min_delta, so every
        # `patience` epochs the rate is halved at the epoch's end
        epochs = range(spec["patience"], spec["epochs"], spec["patience"])
        return [(epoch + 1) * steps_per_epoch for epoch in epochs]
    return [epoch * steps_per_epoch for epoch in spec["halve_at_epochs"]]


def test_goldens_are_consistent() -> None:
    """The npz's config table is the readable JSON one, and the goldens came from tf.keras
    2.15 with the headline numbers: halved after 8 steps, step 9 runs at 0.05 / 1.4."""
    assert json.loads((GOLDEN_DIR / "tf2_sgd_decay_configs.json").read_text()) == CONFIGS
    assert str(GOLDEN["tensorflow_version"]).startswith("2.15.")
    for name in ("X", "Y"):  # exact in float32, so Keras 3's cast of inputs loses nothing
        np.testing.assert_array_equal(GOLDEN[name].astype(np.float32), GOLDEN[name])
    for config in CONFIGS:
        name, steps = config["name"], config["steps"]
        assert (config["learning_rate"], config["decay"]) == (0.1, 0.05)
        assert np.float32(config["momentum"]) == config["momentum"]
        lr = _golden(name, "lr")
        assert lr.shape == (steps,)
        assert lr.dtype == np.dtype(config["dtype"])
        assert _golden(name, "W").shape == (steps + 1, *GOLDEN["W0"].shape)
        halved = _halved_from_step(config["callback"])
        assert halved[0] == 8
        base = 0.1 * 0.5 ** np.array([sum(h <= t for h in halved) for t in range(steps)])
        np.testing.assert_array_equal(_golden(name, "lr_base"), base.astype(np.float32))
        np.testing.assert_allclose(lr, base / (1 + 0.05 * np.arange(steps)), rtol=1e-6)
        assert lr[8] == pytest.approx(0.05 / 1.4, rel=1e-7)  # 0.0357, not 0.0255


@pytest.mark.parametrize("config", CONFIGS, ids=[c["name"] for c in CONFIGS])
def test_fit_with_lr_callbacks_matches_tf_keras_2(config: dict) -> None:
    name, dtype = config["name"], config["dtype"]
    actual = _fit_sgdplus(config)
    # `learning_rate` is what tf.keras 2's `optimizer.lr` reported: the base rate.
    np.testing.assert_array_equal(
        actual["lr_base"].astype(np.float32), _golden(name, "lr_base"), err_msg=f"{name}: base"
    )
    # `current_learning_rate` is the rate tf.keras 2 used, in the variables' dtype.
    assert actual["lr"].dtype == np.dtype(dtype)
    np.testing.assert_array_equal(actual["lr"], _golden(name, "lr"), err_msg=f"{name}: lr_t")
    _assert_weights_close(name, actual, TOLERANCE[dtype])


FIT_PATHS = [CONFIGS_BY_NAME["plateau_nesterov_float64"], CONFIGS_BY_NAME["scheduler_sgd_float32"]]


@pytest.mark.parametrize("config", FIT_PATHS, ids=[c["name"] for c in FIT_PATHS])
def test_fit_without_jit_compile_matches_tf_keras_2(config: dict) -> None:
    """`model.fit(jit_compile=False)`: SGDPlus compiles its own update (an XLA cluster in
    the train step's graph on TensorFlow, `_apply_with_jax_jit` on JAX), same results."""
    actual = _fit_sgdplus(config, jit_compile=False)
    np.testing.assert_array_equal(actual["lr"], _golden(config["name"], "lr"))
    _assert_weights_close(config["name"], actual, TOLERANCE[config["dtype"]])


class Float32DecaySGDPlus(SGDPlus):
    """The rounding SGDPlus had before: `lr_t` computed in float32, then cast."""

    def _decayed_learning_rate(self, base_rate: Any, dtype: str) -> Any:
        rate = super()._decayed_learning_rate(base_rate, "float32")
        return keras.ops.cast(rate, dtype)


def test_a_float32_decay_fails_the_float64_comparison() -> None:
    """The float64 tolerance tells tf.keras 2's float64 decay from a float32 one."""
    config = CONFIGS_BY_NAME["plateau_momentum_float64"]
    actual = _fit_sgdplus(config, optimizer_class=Float32DecaySGDPlus)
    assert not np.array_equal(actual["lr"], _golden(config["name"], "lr"))
    with pytest.raises(pytest.fail.Exception, match=r"differs from tf\.keras 2"):
        _assert_weights_close(config["name"], actual, TOLERANCE["float64"])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("jit_compile", [True, False], ids=["xla", "no-xla"])
def test_halving_after_8_steps_runs_step_9_at_0_0357(dtype: str, jit_compile: bool) -> None:
    """lr=0.1, decay=0.05, the rate read, halved and set back after 8 steps (as the
    callbacks do): step 9 runs at 0.05 / (1 + 0.05 * 8) = 0.0357, as in tf.keras 2, not
    at 0.0357 / 1.4 = 0.0255. Each step runs at `current_learning_rate` read before it."""
    name = f"scheduler_sgd_{dtype}"
    golden_lr = _golden(name, "lr")
    optimizer = SGDPlus(learning_rate=0.1, decay=0.05, jit_compile=jit_compile)
    variable = keras.Variable(np.zeros(2, dtype), dtype=dtype)
    gradient = keras.ops.ones(2, dtype=dtype)
    optimizer.build([variable])  # from here `current_learning_rate` is in the variable's dtype
    for step in range(10):
        if step == 8:
            optimizer.learning_rate = float(_numpy(optimizer.learning_rate)) * 0.5
        assert float(_numpy(optimizer.learning_rate)) == np.float32(0.1 * 0.5 ** (step // 8))
        expected = _numpy(optimizer.current_learning_rate)
        assert expected.dtype == np.dtype(dtype)
        assert expected == golden_lr[step], step
        variable.assign(np.zeros(2, dtype))
        optimizer.apply([gradient], [variable])
        # w = 0 - lr_t * 1: the step ran at exactly the rate read before it
        np.testing.assert_array_equal(_numpy(variable), [-expected] * 2, err_msg=f"step {step}")
    assert float(golden_lr[8]) == pytest.approx(0.0357142857, rel=1e-7)
