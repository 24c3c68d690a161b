"""Times a run's loss landscape: the default 31x31 grid of a `digits` run, batched, against
one Keras `evaluate` per grid point and one compiled call per grid point.

Run: `.venv/bin/python benchmarks/landscape_speed.py` (JAX by default; `KERAS_BACKEND=
tensorflow` for TensorFlow; `--quick` for a smoke run).

It trains a run of the lab's default MLP (64-64, batch 32, momentum 0.9, 3 epochs) on
`digits` into a temporary store, then, in the same process, the 961 losses of the grid over
the 1,437 training samples:

- **batched**: `run_landscape.LossEvaluator`, many grid points per compiled call (best of
  `--repeats`, compiled before);
- **evaluate per point**: `model.set_weights` and `model.evaluate` of the whole subset at
  `--sample` grid points, scaled to the 961 points (a loop over the grid with Keras's API);
- **one compiled call per point**: the same compiled program on one point a call, at
  `--sample` points, scaled to 961 (the launch cost of a call per point).

and the whole of `run_landscape.compute` with the default options (the data loaded, the
path's PCA, the grid and the 1-D line): the first call, which compiles, and the best of
`--repeats`. Printed: seconds, how many times the batched grid's time each anchor takes,
and the GFLOP/s of the batched grid's matrix products (961 x 1,437 forward passes of a
64-64-64-10 MLP, about 24 GFLOP): that is what limits it, the CPU's arithmetic.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

from keras_sgdplus.lab import run_landscape
from keras_sgdplus.lab.config import OptimizerSpec, TrainingConfig
from keras_sgdplus.lab.models import build_model, make_loss
from keras_sgdplus.lab.run_landscape import LandscapeOptions, LossEvaluator, split
from keras_sgdplus.lab.runs import RunStore
from keras_sgdplus.lab.training import load_data, run_training, training_arrays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sample", type=int, default=60, help="grid points timed one by one")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.sample = 1, 5

    store = RunStore(tempfile.mkdtemp(prefix="landscape-speed-"))
    config = TrainingConfig(
        dataset="digits",
        batch_size=32,
        epochs=3,
        optimizer=OptimizerSpec(learning_rate=0.05, momentum=0.9),
    )
    run_id = run_training(config, store)
    keras.backend.clear_session()
    options = LandscapeOptions()
    points = options.resolution**2

    began = time.perf_counter()
    result, details = run_landscape.compute(store, run_id, options)
    first = time.perf_counter() - began
    batched = []
    for _ in range(args.repeats):
        began = time.perf_counter()
        run_landscape.compute(store, run_id, options)
        batched.append(time.perf_counter() - began)
    best = min(batched)

    # the anchors: a model with the run's weights, one grid point at a time
    data = load_data(config)
    arrays = training_arrays(data, details["loss_name"])
    model = build_model(config.model, data.info.task, data.info.input_shape, data.info.num_classes)
    model.compile(loss=details["loss_name"])
    shapes = [tuple(v.shape) for v in model.trainable_variables]
    final = store.load_snapshots(run_id).vectors[-1]
    center = split(final.astype("float64"), shapes)
    d1 = split(result["direction_1"], shapes)
    d2 = split(result["direction_2"], shapes)
    grid = np.stack(np.meshgrid(result["alpha"], result["beta"]), axis=-1).reshape(-1, 2)
    chosen = grid[np.linspace(0, len(grid) - 1, args.sample).astype(int)]
    x, y = arrays.x_train, arrays.y_train

    def weights_at(a: float, b: float) -> list[np.ndarray]:
        return [
            (w + a * p + b * q).astype("float32") for w, p, q in zip(center, d1, d2, strict=True)
        ]

    model.set_weights(weights_at(*chosen[0]))
    model.evaluate(x, y, batch_size=len(x), verbose=0)  # compiled once, outside the timing
    began = time.perf_counter()
    for a, b in chosen:
        model.set_weights(weights_at(a, b))
        model.evaluate(x, y, batch_size=len(x), verbose=0)
    per_evaluate = (time.perf_counter() - began) / len(chosen)

    evaluator = LossEvaluator(model, make_loss(details["loss_name"]))
    evaluator.loss_at(center, d1, d2, chosen[:1], x, y)  # compiled once
    program = evaluator._program(1)
    as32 = [[np.asarray(a, dtype="float32") for a in group] for group in (center, d1, d2)]
    began = time.perf_counter()
    for row in chosen:
        np.asarray(program(*as32, row[None].astype("float32"), x, y))
    per_call = (time.perf_counter() - began) / len(chosen)

    evaluator.loss_at(center, d1, d2, grid, x, y)  # compiled for the batches of the grid
    grid_times = []
    for _ in range(args.repeats):
        began = time.perf_counter()
        evaluator.loss_at(center, d1, d2, grid, x, y)
        grid_times.append(time.perf_counter() - began)
    grid_best = min(grid_times)

    print(
        f"# keras {keras.__version__}, backend {keras.backend.backend()}, "
        f"{os.cpu_count()} CPU cores, python {platform.python_version()}"
    )
    print(
        f"# digits run ({details['snapshots']} snapshots), {options.resolution}x"
        f"{options.resolution} grid + line, {details['train_samples']} training samples"
    )
    flops = 2 * points * len(x) * sum(int(np.prod(s)) for s in shapes if len(s) == 2)
    print(f"{'the grid (961 losses)':<44} {'s':>7} {'x batched':>10}")
    print(f"{'batched, best of ' + str(args.repeats):<44} {grid_best:7.3f} {1.0:10.2f}")
    rows = [
        (f"evaluate per point (x{points} from {len(chosen)})", per_evaluate * points),
        (f"compiled call per point (x{points} from {len(chosen)})", per_call * points),
    ]
    for name, seconds in rows:
        print(f"{name:<44} {seconds:7.3f} {seconds / grid_best:10.2f}")
    print(f"batched: {flops / grid_best / 1e9:.1f} GFLOP/s of the forward passes' matrix products")
    print(f"{'the whole landscape (compute)':<44} {'s':>7}")
    print(f"{'first call (loads the data, compiles)':<44} {first:7.2f}")
    print(f"{'best of ' + str(args.repeats):<44} {best:7.2f}")


if __name__ == "__main__":
    main()
