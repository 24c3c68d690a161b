"""Times one optimizer update of all variables: SGDPlus against keras.optimizers.SGD.

Run: `.venv/bin/python benchmarks/update_step.py` (add `--quick` for a smoke run).

Both optimizers are timed in the same process, interleaved, on the same variables and
gradients; each figure is the median of `--repeats` timed calls after warm-up. Printed:
milliseconds per update and the speed-up, SGD time / SGDPlus time (> 1: SGDPlus faster).

Cases: one tensor of 10M parameters, and 200 tensors of 50k; the update called eagerly,
inside a plain `tf.function`, and inside `tf.function(jit_compile=True)`; for plain SGD and
for momentum 0.9. Then one `model.fit` epoch of a multi-million-parameter MLP with default
compile settings, and `fit` epochs of the lab's small MLP (784-64-64-10) at batch 1 and 32
with `steps_per_execution` 1 and one whole epoch (fastest of `--fit-repeats`). On the JAX
backend (`KERAS_BACKEND=jax`) the eager and `jax.jit` calls
of `stateless_apply` and the `model.fit` epoch are timed.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

from keras_sgdplus import SGDPlus

BACKEND = keras.backend.backend()
CASES = {"1 x 10M": [(10_000_000,)], "200 x 50k": [(50_000,)] * 200}
CONFIGS = {"plain": {}, "momentum 0.9": {"momentum": 0.9}}


def median_ms(
    calls: dict[str, Callable[[], object]],
    repeats: int,
    warmup: int = 3,
    summary: Callable[[list[float]], float] = statistics.median,
) -> dict:
    """Median (or `summary`) wall time of each call in ms, calls interleaved round by round,
    alternating which goes first."""
    for call in calls.values():
        for _ in range(warmup):
            block(call())
    times: dict[str, list[float]] = {name: [] for name in calls}
    for round_ in range(repeats):
        # every other round in reverse order: on this machine a call's place in the round
        # shifts its time by a few percent (the same code measured 0.90x first, 1.02x second)
        order = list(calls.items()) if round_ % 2 == 0 else list(calls.items())[::-1]
        for name, call in order:
            start = time.perf_counter()
            block(call())
            times[name].append(time.perf_counter() - start)
    return {name: 1e3 * summary(values) for name, values in times.items()}


def block(result: object) -> None:
    """Waits for asynchronous work (JAX dispatch) to finish."""
    if BACKEND == "jax":
        import jax

        jax.block_until_ready(result)


def update_calls(optimizer, shapes, mode):
    """A zero-argument call that applies one update of all variables in `mode`."""
    rng = np.random.default_rng(0)
    variables = [keras.Variable(rng.normal(size=s).astype("float32")) for s in shapes]
    grads = [keras.ops.convert_to_tensor(rng.normal(size=s).astype("float32")) for s in shapes]
    optimizer.build(variables)
    if mode == "eager":
        return lambda: optimizer.apply(grads, variables)
    if BACKEND == "tensorflow":
        import tensorflow as tf

        # The gradients are captured, as when a train step computes them inside the function:
        # passing 200 tensors as arguments would time tf.function's argument matching.
        step = tf.function(lambda: optimizer.apply(grads, variables), jit_compile=mode == "xla")
        return step
    import jax

    @jax.jit
    def stateless(optimizer_values, weights):
        return optimizer.stateless_apply(optimizer_values, grads, weights)

    state = {"opt": [v.value for v in optimizer.variables], "w": [v.value for v in variables]}

    def call():
        state["w"], state["opt"] = stateless(state["opt"], state["w"])
        return state["w"]

    return call


def modes():
    if BACKEND == "tensorflow":
        return {"eager": "eager", "tf.function": "graph", "tf.function(jit_compile)": "xla"}
    return {"eager": "eager", "jax.jit(stateless_apply)": "jit"}


def bench_updates(repeats: int, cases: dict) -> list[tuple[str, ...]]:
    rows = []
    for case, shapes in cases.items():
        for config_name, config in CONFIGS.items():
            for mode_name, mode in modes().items():
                timed = median_ms(
                    {
                        "SGD": update_calls(keras.optimizers.SGD(**config), shapes, mode),
                        "SGDPlus": update_calls(SGDPlus(**config), shapes, mode),
                    },
                    repeats,
                )
                rows.append((case, config_name, mode_name, timed["SGD"], timed["SGDPlus"]))
                print_row(rows[-1])
    return rows


def mlp_fit_calls(optimizer, samples, batch_size, hidden=(2048, 2048), steps_per_execution=1):
    """A `model.fit` epoch of a 784-`hidden`-10 MLP, default compile settings but
    `steps_per_execution` (784-2048-2048-10: 5.8M parameters)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(samples, 784)).astype("float32")
    y = rng.integers(0, 10, size=samples)
    keras.utils.set_random_seed(0)
    layers = [keras.layers.Dense(width, activation="relu") for width in hidden]
    model = keras.Sequential([keras.Input((784,)), *layers, keras.layers.Dense(10)])
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        steps_per_execution=steps_per_execution,
    )
    return lambda: model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)


def bench_fit(repeats: int, samples: int) -> list[tuple[str, ...]]:
    rows = []
    for config_name, config in CONFIGS.items():
        timed = median_ms(
            {
                "SGD": mlp_fit_calls(keras.optimizers.SGD(**config), samples, 128),
                "SGDPlus": mlp_fit_calls(SGDPlus(**config), samples, 128),
            },
            repeats,
            warmup=1,
            # the fastest epoch: on the 2-core CI machine whole epochs jump between two
            # speeds (about 2.7 s and 5.2 s here) for both optimizers alike
            summary=min,
        )
        rows.append(
            (
                f"fit MLP 5.8M, {samples} samples",
                config_name,
                "model.fit",
                timed["SGD"],
                timed["SGDPlus"],
            )
        )
        print_row(rows[-1])
    return rows


#: The small-model `fit` cases: (batch size, samples, steps per execution; "epoch" = all).
SMALL_FIT_CASES = [(1, 2_000, 1), (1, 8_000, "epoch"), (32, 16_000, 1), (32, 16_000, "epoch")]


def bench_small_fit(repeats: int, quick: bool) -> list[tuple[str, ...]]:
    """`model.fit` epochs of the lab's small MLP (784-64-64-10, 55k parameters), where the
    update is a small part of a step and any overhead around it shows."""
    rows = []
    for batch_size, samples, per_execution in SMALL_FIT_CASES:
        samples = samples // 8 if quick else samples
        steps = -(-samples // batch_size)
        spe = steps if per_execution == "epoch" else per_execution
        for config_name, config in CONFIGS.items():
            timed = median_ms(
                {
                    name: mlp_fit_calls(optimizer, samples, batch_size, (64, 64), spe)
                    for name, optimizer in (
                        ("SGD", keras.optimizers.SGD(**config)),
                        ("SGDPlus", SGDPlus(**config)),
                    )
                },
                repeats,
                warmup=1,
                summary=min,
            )
            case = f"fit MLP 55k, batch {batch_size}, {steps} steps"
            rows.append((case, config_name, f"fit spe={spe}", timed["SGD"], timed["SGDPlus"]))
            print_row(rows[-1])
    return rows


def print_row(row) -> None:
    case, config, mode, sgd, plus = row
    print(
        f"| {case} | {config} | {mode} | {sgd:.2f} | {plus:.2f} | {sgd / plus:.2f}x |", flush=True
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--fit-repeats", type=int, default=5)
    parser.add_argument("--fit-samples", type=int, default=8192)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check it runs")
    args = parser.parse_args()
    cases = CASES
    if args.quick:
        cases = {"1 x 10k": [(10_000,)], "20 x 500": [(500,)] * 20}
        args.repeats, args.fit_repeats, args.fit_samples = 3, 1, 256
    devices = "cpu"
    if BACKEND == "jax":
        import jax

        devices = ", ".join(str(d) for d in jax.devices())
    else:
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        devices = ", ".join(g.name for g in gpus) or f"CPU ({os.cpu_count()} cores)"
    print(
        f"# keras {keras.__version__}, backend {BACKEND}, {devices}, "
        f"python {platform.python_version()}"
    )
    print("| case | optimizer | called | SGD ms | SGDPlus ms | speed-up |")
    print("|---|---|---|---:|---:|---:|")
    bench_updates(args.repeats, cases)
    bench_fit(args.fit_repeats, args.fit_samples)
    bench_small_fit(max(args.fit_repeats, 9) if not args.quick else 1, args.quick)


if __name__ == "__main__":
    main()
