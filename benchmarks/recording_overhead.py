"""What recording each batch's loss costs: `model.fit` with and without the run recording.

Run: `.venv/bin/python benchmarks/recording_overhead.py` (`--quick` for a smoke run).

"plain" is `model.fit` with no callbacks and only the task's metric; "recorded" adds what
a dashboard run adds: the BatchLoss metric and the RecordingCallback writing into a real
run store (a temporary folder). Both train the same model from the same weights, epochs
interleaved; each figure is the fastest of `--repeats` timed `fit` calls of about a second
(10 epochs of digits, 1 of the larger set); on the 2-core machine times jump between
levels for both alike, so the fastest is the stable figure. Overhead = 1 - recorded / plain
throughput; the target is at most 10%.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

from keras_sgdplus import SGDPlus
from keras_sgdplus.lab.config import ModelSpec
from keras_sgdplus.lab.datasets import load_dataset
from keras_sgdplus.lab.models import build_model, make_loss
from keras_sgdplus.lab.runs import RunStore
from keras_sgdplus.lab.training import BatchLoss, RecordingCallback, StopSignal, batch_sizes_of


def compiled(spec: ModelSpec, input_shape, classes: int, recorded: bool) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = build_model(spec, "multiclass", input_shape, classes)
    loss = "sparse_categorical_crossentropy"
    metrics: list = ["accuracy"] + ([BatchLoss(loss)] if recorded else [])
    model.compile(optimizer=SGDPlus(0.01, momentum=0.9), loss=make_loss(loss), metrics=metrics)
    return model


def bench(
    name: str, x, y, spec: ModelSpec, classes: int, batch_size: int, repeats: int, epochs: int
) -> None:
    store = RunStore(tempfile.mkdtemp(prefix="sgdplus-bench-"))
    writer = store.create(name, {}, {})
    sizes = batch_sizes_of(len(x), batch_size)
    callback = RecordingCallback(
        writer, np.full(len(sizes) * (repeats + 1), 0.01), sizes, StopSignal()
    )
    models = {
        "plain": (compiled(spec, x.shape[1:], classes, False), []),
        "recorded": (compiled(spec, x.shape[1:], classes, True), [callback]),
    }
    best = {key: float("inf") for key in models}
    for repeat in range(repeats + 1):
        for key, (model, callbacks) in models.items():
            start = time.perf_counter()
            model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0, callbacks=callbacks)
            elapsed = time.perf_counter() - start
            if repeat:  # the first epoch compiles
                best[key] = min(best[key], elapsed)
    writer.close()
    plain, recorded = epochs * len(x) / best["plain"], epochs * len(x) / best["recorded"]
    params = models["plain"][0].count_params()
    print(
        f"| {name} | {params:,} | {batch_size} | {len(sizes)} | {plain:,.0f} | "
        f"{recorded:,.0f} | {100 * (1 - recorded / plain):.1f}% |",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    print(
        f"# keras {keras.__version__}, backend {keras.backend.backend()}, "
        f"{os.cpu_count()} CPU cores"
    )
    print(
        "| model | parameters | batch | batches/epoch | plain samples/s | recorded samples/s "
        "| overhead |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    digits = load_dataset("digits")
    bench(
        "digits MLP 64-64-64-10",
        digits.x_train,
        digits.y_train,
        ModelSpec(depth=2, width=64),
        10,
        32,
        repeats,
        epochs=10,
    )
    rng = np.random.default_rng(0)
    samples = 2048 if args.quick else 16384
    x = rng.normal(size=(samples, 784)).astype("float32")
    y = rng.integers(0, 10, size=samples)
    bench("1M MLP 784-1264-10", x, y, ModelSpec(depth=1, width=1264), 10, 32, repeats, epochs=1)


if __name__ == "__main__":
    main()
