"""Records golden tf.keras 2.15 `SGD(decay=...)` trajectories for
`tests/optimizer/test_tf2_decay_parity.py`.

`decay=` is in SGDPlus for code ported from tf.keras 2, so tf.keras 2.15's legacy optimizer
(`tf.keras.optimizers.legacy.SGD`, the class that `decay=` belongs to) is its reference.
For every config of `CONFIGS` this trains a linear model (`Dense(K)`) with `model.fit` on one
fixed least-squares problem, under a callback that reads the learning rate, changes it and
sets it back while the decay runs:

- `ReduceLROnPlateau(monitor="loss", factor=0.5, patience=3, min_delta=1e9)`, with two
  steps per epoch: no epoch after the first counts as an improvement, so it halves the rate
  at the end of epochs 3, 6, 9, ... (0-based), after 8, 14, 20 and 26 steps;
- `LearningRateScheduler(lambda epoch, lr: lr * 0.5 if epoch in (8, 16, 24) else lr)`, with
  one step (the full batch) per epoch: halved before steps 8, 16 and 24 (0-based).

Both halve the base rate after 8 steps, and with `lr=0.1, decay=0.05` step 9 (`t = 8`) runs
at `0.05 / (1 + 0.05 * 8) = 0.0357`: the base rate is halved and the decay goes on.

Each runs in float32 and in float64 (the layer built with `dtype="float64"`), with plain
SGD, momentum and Nesterov momentum. Momentum is 0.875, exact in float32: tf.keras 2 kept
`momentum` as a float32 variable and cast it to float64 (0.9 -> 0.8999999761581421), where
Keras 3's `keras.optimizers.SGD` (and so SGDPlus) uses the exact Python float; with 0.875
both use the same number. The data is drawn once from a fixed NumPy seed and stored.
oneDNN is switched off (`TF_ENABLE_ONEDNN_OPTS=0`): TensorFlow's own kernels compute.

Recorded per step (a callback reads them before each batch):
- `lr`: the rate the step used, `optimizer._decayed_lr(var_dtype)` (float32 or float64);
- `lr_base`: what `optimizer.lr` reported (the float32 base rate, without the decay);
and the kernel `W` and bias `b` after every step, the initial values first.

Outputs, both committed:
- `tf2_sgd_decay_trajectories.npz`: numeric and unicode arrays only (loads with
  `allow_pickle=False`). Keys: `X`, `Y`, `W0`, `b0` (float64), `tensorflow_version`,
  `numpy_version`, `configs_json`, and per config `<name>__lr`, `<name>__lr_base` (steps,),
  `<name>__W` (steps+1, D, K) and `<name>__b` (steps+1, K), in the config's dtype.
- `tf2_sgd_decay_configs.json`: the same config table as `configs_json`, for reading.

Regenerate (tf.keras 2 is deliberately not in the project's virtualenv):
```
python3.11 -m venv /tmp/tf215
/tmp/tf215/bin/pip install tensorflow-cpu==2.15.1 "numpy<2"
/tmp/tf215/bin/python tests/golden/make_tf2_golden.py
```
"""

from __future__ import annotations

import json
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np
import tensorflow as tf

HERE = pathlib.Path(__file__).resolve().parent
OUTPUT = HERE / "tf2_sgd_decay_trajectories.npz"
CONFIG_OUTPUT = HERE / "tf2_sgd_decay_configs.json"

SEED = 20240815
N, D, K = 16, 4, 3
STEPS = 32
LEARNING_RATE = 0.1
DECAY = 0.05
MOMENTUM = 0.875  # exact in float32, see the docstring

CALLBACKS = {
    "plateau": {
        "kind": "ReduceLROnPlateau",
        "monitor": "loss",
        "factor": 0.5,
        "patience": 3,
        "min_delta": 1e9,
        "batch_size": N // 2,
        "epochs": STEPS // 2,
    },
    "scheduler": {
        "kind": "LearningRateScheduler",
        "factor": 0.5,
        "halve_at_epochs": [8, 16, 24],
        "batch_size": N,
        "epochs": STEPS,
    },
}
OPTIMIZERS = {
    "sgd": {"momentum": 0.0, "nesterov": False},
    "momentum": {"momentum": MOMENTUM, "nesterov": False},
    "nesterov": {"momentum": MOMENTUM, "nesterov": True},
}

CONFIGS = [
    {
        "name": f"{callback}_{optimizer}_{dtype}",
        "dtype": dtype,
        "learning_rate": LEARNING_RATE,
        "decay": DECAY,
        **OPTIMIZERS[optimizer],
        "callback": CALLBACKS[callback],
        "steps": STEPS,
    }
    for callback in CALLBACKS
    for optimizer in OPTIMIZERS
    for dtype in ("float32", "float64")
]


def make_problem() -> dict[str, np.ndarray]:
    """The fixed data and initial weights, float64, from `SEED`.

    `X` and `Y` are rounded to float32 values: Keras 3's `fit` casts float64 NumPy inputs
    to float32 (its floatx), which then loses nothing.
    """
    rng = np.random.default_rng(SEED)
    x = rng.normal(size=(N, D))
    w_true = rng.normal(size=(D, K))
    b_true = rng.normal(size=(K,))
    y = x @ w_true + b_true + 0.1 * rng.normal(size=(N, K))
    return {
        "X": x.astype(np.float32).astype(np.float64),
        "Y": y.astype(np.float32).astype(np.float64),
        "W0": rng.normal(size=(D, K)),
        "b0": rng.normal(size=(K,)),
    }


def rate_callback(spec: dict) -> tf.keras.callbacks.Callback:
    """The tf.keras 2 callback of a config's `callback` entry."""
    if spec["kind"] == "ReduceLROnPlateau":
        return tf.keras.callbacks.ReduceLROnPlateau(
            monitor=spec["monitor"],
            factor=spec["factor"],
            patience=spec["patience"],
            min_delta=spec["min_delta"],
            mode="min",
        )
    halve_at, factor = set(spec["halve_at_epochs"]), spec["factor"]
    return tf.keras.callbacks.LearningRateScheduler(
        lambda epoch, lr: lr * factor if epoch in halve_at else lr
    )


class Recorder(tf.keras.callbacks.Callback):
    """The weights after every step; the rate each step uses and what `optimizer.lr` says."""

    def __init__(self, dtype: tf.DType) -> None:
        super().__init__()
        self.dtype = dtype
        self.record: dict[str, list[np.ndarray]] = {"lr": [], "lr_base": [], "W": [], "b": []}

    def _weights(self) -> None:
        kernel, bias = self.model.layers[-1].get_weights()
        self.record["W"].append(kernel.copy())
        self.record["b"].append(bias.copy())

    def on_train_begin(self, logs=None) -> None:
        self._weights()

    def on_train_batch_begin(self, batch, logs=None) -> None:
        optimizer = self.model.optimizer
        self.record["lr"].append(optimizer._decayed_lr(self.dtype).numpy())
        self.record["lr_base"].append(optimizer.lr.numpy())

    def on_train_batch_end(self, batch, logs=None) -> None:
        self._weights()


def run_config(config: dict, problem: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Trains one config with `model.fit`; returns the per-step records."""
    dtype = config["dtype"]
    tf.keras.backend.clear_session()
    model = tf.keras.Sequential(
        [tf.keras.Input((D,), dtype=dtype), tf.keras.layers.Dense(K, dtype=dtype)]
    )
    model.layers[-1].set_weights([problem["W0"].astype(dtype), problem["b0"].astype(dtype)])
    optimizer = tf.keras.optimizers.legacy.SGD(
        learning_rate=config["learning_rate"],
        momentum=config["momentum"],
        nesterov=config["nesterov"],
        decay=config["decay"],
    )
    model.compile(optimizer=optimizer, loss="mse")
    recorder = Recorder(tf.as_dtype(dtype))
    spec = config["callback"]
    model.fit(
        problem["X"].astype(dtype),
        problem["Y"].astype(dtype),
        batch_size=spec["batch_size"],
        epochs=spec["epochs"],
        shuffle=False,
        verbose=0,
        callbacks=[rate_callback(spec), recorder],
    )
    out = {key: np.asarray(values) for key, values in recorder.record.items()}
    assert out["lr"].shape == (config["steps"],)
    assert out["lr"].dtype == np.dtype(dtype)
    assert out["lr_base"].dtype == np.float32
    assert out["W"].shape == (config["steps"] + 1, D, K)
    assert out["W"].dtype == np.dtype(dtype)
    assert int(optimizer.iterations.numpy()) == config["steps"]
    return out


def main() -> None:
    tf.config.experimental.enable_op_determinism()
    problem = make_problem()
    arrays: dict[str, np.ndarray] = dict(problem)
    arrays["tensorflow_version"] = np.array(tf.__version__)
    arrays["numpy_version"] = np.array(np.__version__)
    arrays["configs_json"] = np.array(json.dumps(CONFIGS, sort_keys=True))
    for config in CONFIGS:
        for key, value in run_config(config, problem).items():
            arrays[f"{config['name']}__{key}"] = value
    np.savez_compressed(OUTPUT, **arrays)
    CONFIG_OUTPUT.write_text(json.dumps(CONFIGS, indent=2, sort_keys=True) + "\n")
    headline = arrays["scheduler_sgd_float64__lr"][8]
    print(f"step 9 (t = 8) of the schedule configs ran at {headline!r} (0.05 / 1.4)")
    print(
        f"tensorflow {tf.__version__}: wrote {len(CONFIGS)} configs to {OUTPUT} and {CONFIG_OUTPUT}"
    )


if __name__ == "__main__":
    main()
