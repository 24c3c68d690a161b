"""Training speed of the lab against the anchors that do the same work, in steps per second.

Run: `.venv/bin/python benchmarks/training_speed.py` (`--quick` for a smoke run; `--sets
digits` or `--sets mnist`; `--batches 1,32`; `--backends jax`). `--device gpu` runs every
figure on the GPU (the lab's run with `device="gpu"`, the anchors where the backend puts
them when it sees a GPU); the default `--device cpu` hides GPUs from every figure.

The same model everywhere: the lab's default MLP (two hidden Dense layers of 64, ReLU,
softmax), SGD with momentum 0.9 at 0.001, on `digits` (1,437 training samples) and on an
MNIST-shaped set (20,000 generated samples of 784 features, 10 classes, given to the lab
as an NPZ: 16,000 training samples). For each set and batch size (1 = online, 32):

- **recorded run**: the lab's own run (`run_training`, what `sgdplus train` does) on the
  compiled path of the backend (`jax_chunks` on JAX, `tf_chunks` on TensorFlow), each step's
  loss, learning rate and gradient norm recorded into `batches.csv`; steps/s over an
  epoch's steps (`batches.csv` wall times, so the validation pass at the epoch's end is
  not counted), and over the whole run (validation, compilation and start-up included:
  `elapsed_s` of the run's summary);
- **fit spe=1 / spe=epoch**: bare Keras `fit` of the same model with SGDPlus, no
  per-batch callbacks, `steps_per_execution` 1 and one whole epoch;
- **scan loop** (JAX): a hand-written `jax.lax.scan` over one epoch of steps, the model's
  `stateless_call`, momentum written out, every step's loss kept, the data on the device,
  the shuffle done there: the practical limit of this CPU for this work.

Each figure but "whole run" is the fastest of epochs 1-3 of a 4-epoch run (epoch 0
compiles). TensorFlow and JAX each run in their own process (`KERAS_BACKEND`). Every ratio is taken
against an anchor measured in the same run. What limits each figure: at batch 1 the
model's work is a few microseconds, so the recorded run and `fit` with
`steps_per_execution=1` are bound by launching one step (Python, the callbacks, one
executor or `jit` call per step); `fit` over a whole epoch and the scan loop are bound by
the per-step overhead inside one compiled program; at batch 32 the matrix products start
to count.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MOMENTUM = 0.9
LEARNING_RATE = 0.001  # 0.01 with momentum 0.9 diverges online on the MNIST-shaped set
MNIST_SAMPLES = 20_000
EPOCHS = 4  # every figure is the fastest of epochs 1-3 (epoch 0 compiles)


def mnist_shaped(path: Path, samples: int) -> None:
    """An NPZ of `samples` generated 784-feature rows with 10 classes (class means apart)."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, samples)
    centres = rng.normal(size=(10, 784)).astype("float32")
    x = centres[y] + rng.normal(size=(samples, 784)).astype("float32")
    np.savez(path, x=x.astype("float32"), y=y.astype("int64"))


DEVICE = "cpu"  # the device every figure runs on (--device); set before any backend loads


def lab_config(dataset: str, data_path: str | None, batch_size: int, epochs: int):
    from keras_sgdplus.lab.config import ModelSpec, OptimizerSpec, TrainingConfig

    return TrainingConfig(
        dataset=dataset,
        data_path=data_path,
        model=ModelSpec(depth=2, width=64),
        optimizer=OptimizerSpec(learning_rate=LEARNING_RATE, momentum=MOMENTUM),
        batch_size=batch_size,
        epochs=epochs,
        device=DEVICE,
    )


def recorded_run(dataset: str, data_path: str | None, batch_size: int) -> tuple[float, float]:
    """Steps/s of the lab's run over the steps of its fastest epoch after the first, and over
    the whole run (everything included)."""
    from keras_sgdplus.lab.runs import RunStore
    from keras_sgdplus.lab.training import run_training

    store = RunStore(tempfile.mkdtemp(prefix="sgdplus-speed-"))
    run = store.load(run_training(lab_config(dataset, data_path, batch_size, EPOCHS), store))
    rates = []
    for epoch in range(1, EPOCHS):  # epoch 0 compiles
        steps = run.batches[run.batches.epoch == epoch]
        rates.append((len(steps) - 1) / float(steps.wall_time.iloc[-1] - steps.wall_time.iloc[0]))
    whole = len(run.batches) / float(run.meta["summary"]["elapsed_s"])
    return max(rates), whole


def training_data(dataset: str, data_path: str | None):
    from keras_sgdplus.lab.training import load_data

    data = load_data(lab_config(dataset, data_path, 1, 1))
    return data.x_train.astype("float32"), data.y_train.astype("int32"), data.info.num_classes


def lab_model(input_shape, classes: int):
    import keras

    from keras_sgdplus.lab.config import ModelSpec
    from keras_sgdplus.lab.models import build_model

    keras.utils.set_random_seed(0)
    return build_model(ModelSpec(depth=2, width=64), "multiclass", input_shape, classes)


def bare_fit(x, y, classes: int, batch_size: int, steps_per_execution: int) -> float:
    """Steps/s over the fastest epoch after the first of a `fit`, timed from each epoch's
    start to its end by epoch-level hooks only (no per-batch callback)."""
    import keras

    from keras_sgdplus import SGDPlus

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.start)

    model = lab_model(x.shape[1:], classes)
    model.compile(
        optimizer=SGDPlus(LEARNING_RATE, momentum=MOMENTUM),
        loss="sparse_categorical_crossentropy",
        steps_per_execution=steps_per_execution,
    )
    timer = EpochTimer()
    model.fit(x, y, batch_size=batch_size, epochs=EPOCHS, verbose=0, callbacks=[timer])
    return -(-len(x) // batch_size) / min(timer.seconds[1:])


def scan_loop(x, y, classes: int, batch_size: int) -> float:
    """Steps/s of a hand-written `jax.lax.scan` epoch (the fastest after the first)."""
    import jax
    import jax.numpy as jnp

    model = lab_model(x.shape[1:], classes)
    steps = len(x) // batch_size
    x_device, y_device = jnp.asarray(x), jnp.asarray(y)

    def loss_of(trainable, non_trainable, xb, yb):
        probabilities, non_trainable = model.stateless_call(
            trainable, non_trainable, xb, training=True
        )
        picked = jnp.take_along_axis(probabilities, yb[:, None], axis=1)
        return -jnp.mean(jnp.log(jnp.clip(picked, 1e-7, 1.0))), non_trainable

    value_and_grad = jax.value_and_grad(loss_of, has_aux=True)

    def step(carry, indices):
        trainable, non_trainable, velocity = carry
        (loss, non_trainable), grads = value_and_grad(
            trainable, non_trainable, x_device[indices], y_device[indices]
        )
        velocity = [MOMENTUM * v - LEARNING_RATE * g for v, g in zip(velocity, grads, strict=True)]
        trainable = [w + v for w, v in zip(trainable, velocity, strict=True)]
        return (trainable, non_trainable, velocity), loss

    @jax.jit
    def epoch(carry, key):
        order = jax.random.permutation(key, len(x))[: steps * batch_size]
        return jax.lax.scan(step, carry, order.reshape(steps, batch_size))

    trainable = [v.value for v in model.trainable_variables]
    carry = (
        trainable,
        [v.value for v in model.non_trainable_variables],
        [jnp.zeros_like(w) for w in trainable],
    )
    carry, losses = epoch(carry, jax.random.PRNGKey(0))
    losses.block_until_ready()
    seconds = []
    for key in range(1, EPOCHS):
        start = time.perf_counter()
        carry, losses = epoch(carry, jax.random.PRNGKey(key))
        losses.block_until_ready()
        seconds.append(time.perf_counter() - start)
    return steps / min(seconds)


def device_name(backend: str) -> str:
    """What the figures of this process ran on: the GPU's name, or the CPU."""
    if DEVICE == "cpu":
        return "CPU"
    if backend == "jax":
        import jax

        return str(jax.devices()[0].device_kind)
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return str(tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU"))


def measure(backend: str, sets: list[str], batches: list[int], quick: bool) -> list[dict]:
    """Every figure of one backend, in a process set up as a training worker is
    (`accelerators.prepare_process`: the backend, the GPUs hidden for --device cpu, GPU
    memory grown as needed otherwise)."""
    from keras_sgdplus.lab.accelerators import prepare_process

    prepare_process(backend, DEVICE)
    device = device_name(backend)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        npz = Path(folder) / "mnist_shaped.npz"
        mnist_shaped(npz, 2_000 if quick else MNIST_SAMPLES)
        for name in sets:
            dataset, data_path = ("digits", None) if name == "digits" else ("npz", str(npz))
            x, y, classes = training_data(dataset, data_path)
            for batch_size in batches:
                steps = -(-len(x) // batch_size)
                row = {
                    "set": name,
                    "backend": backend,
                    "batch": batch_size,
                    "steps": steps,
                    "device": device,
                }
                row["fit spe=1"] = bare_fit(x, y, classes, batch_size, 1)
                row["fit spe=epoch"] = bare_fit(x, y, classes, batch_size, steps)
                row["recorded run"], row["recorded run, whole"] = recorded_run(
                    dataset, data_path, batch_size
                )
                if backend == "jax":
                    row["scan loop"] = scan_loop(x, y, classes, batch_size)
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", default="digits,mnist")
    parser.add_argument("--batches", default="1,32")
    parser.add_argument("--quick", action="store_true", help="a 2,000-sample MNIST-shaped set")
    parser.add_argument("--backends", default="tensorflow,jax")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--backend", help=argparse.SUPPRESS)  # the child process's backend
    args = parser.parse_args()
    sets, batches = args.sets.split(","), [int(b) for b in args.batches.split(",")]
    global DEVICE
    DEVICE = args.device
    if args.backend:
        print(json.dumps(measure(args.backend, sets, batches, args.quick)))
        return
    rows: list[dict] = []
    for backend in args.backends.split(","):
        environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        child = subprocess.run(
            [sys.executable, __file__, *sys.argv[1:], "--backend", backend],
            env=environment,
            stdout=subprocess.PIPE,
            text=True,
            check=True,
        )
        rows += json.loads(child.stdout.strip().splitlines()[-1])
    report(rows)


def report(rows: list[dict]) -> None:
    from importlib.metadata import version

    devices = ", ".join(sorted({r["device"] for r in rows}))
    print(f"# keras {version('keras')}, {os.cpu_count()} CPU cores, on {devices}, steps per second")
    print("| set | batch | steps/epoch | backend | recorded run (whole run) | fit spe=1 |"
          " fit spe=epoch | scan loop | recorded / best fit | recorded / scan |")  # fmt: skip
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    scan = {(r["set"], r["batch"]): r["scan loop"] for r in rows if "scan loop" in r}
    for r in rows:
        recorded = r.get("recorded run")
        best_fit = max(r["fit spe=1"], r["fit spe=epoch"])
        anchor = scan.get((r["set"], r["batch"]))
        cells = [
            r["set"],
            str(r["batch"]),
            f"{r['steps']:,}",
            r["backend"],
            f"{recorded:,.0f} ({r['recorded run, whole']:,.0f})",
            f"{r['fit spe=1']:,.0f}",
            f"{r['fit spe=epoch']:,.0f}",
            f"{r['scan loop']:,.0f}" if "scan loop" in r else "-",
            f"{recorded / best_fit:.2f}x" if recorded else "-",
            f"{recorded / anchor:.3f}x" if recorded and anchor else "-",
        ]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
