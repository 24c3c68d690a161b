"""Which suggestion rule of the learning-rate range test to trust: each rule's rate against
the best rate of a grid, by the validation accuracy of 5 epochs of plain SGD.

For every bundled classification set and every generated 2-D set (all classification), and
seeds 0, 1, 2: the lab's default model (the MLP, 2 x 64 relu), batch 32, plain SGDPlus
(momentum 0); the range test with fastai's and Lightning's defaults (`lab/lr_find.py`: 1e-7
to 10 in 100 steps, beta 0.98, stop at 4x the best smoothed loss); each rule of
`lr_find.RULES` read off the same curve; then 5 epochs from the same initial weights at each
rule's rate and at every rate of a half-decade grid (1e-4 .. 10), and the validation
accuracy after them. The best rate is the best of all these rates.

Prints a table (accuracy at each rule's rate, and its gap to the best), then per rule the
worst and mean gap and how many cases are within `--target` points of the best, and writes
every figure as JSON (`--out`). Run it with the backend of your choice, e.g.

    KERAS_BACKEND=jax nice .venv/bin/python benchmarks/lr_find_rules.py

(on a 2-core CPU: about 20 minutes).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

SETS = ("digits", "iris", "wine", "breast_cancer", "circle", "xor", "gaussian", "spiral")
SEEDS = (0, 1, 2)
GRID = tuple(float(10.0 ** (k / 2)) for k in range(-8, 3))  # 1e-4, 3.2e-4, ..., 10
EPOCHS = 5


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(SETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--target", type=float, default=3.0, help="points of accuracy")
    parser.add_argument("--out", default="benchmarks/lr_find_rules.json")
    args = parser.parse_args(argv)

    from keras_sgdplus.lab.accelerators import prepare_process

    backend = prepare_process("auto", "cpu")
    from keras_sgdplus.lab import lr_find
    from keras_sgdplus.lab.config import OptimizerSpec, TrainingConfig
    from keras_sgdplus.lab.range_test import find_learning_rate

    cases = []
    began = time.perf_counter()
    for dataset in args.datasets:
        for seed in args.seeds:
            config = TrainingConfig(
                dataset=dataset,
                seed=seed,
                epochs=EPOCHS,
                optimizer=OptimizerSpec(name="sgdplus", momentum=0.0),
            )
            result = find_learning_rate(config)
            suggested = {rule: result.suggestion_by(rule) for rule in lr_find.RULES}
            rates = sorted({*GRID, *(r for r in suggested.values() if r is not None)})
            accuracy = {rate: validation_accuracy(config, rate) for rate in rates}
            best = max(rates, key=lambda r: accuracy[r])
            cases.append(
                {
                    "dataset": dataset,
                    "seed": seed,
                    "curve": result.to_dict(),
                    "suggested": suggested,
                    "accuracy": {repr(rate): accuracy[rate] for rate in rates},
                    "best_rate": best,
                    "best_accuracy": accuracy[best],
                }
            )
            print(
                f"{dataset} seed {seed}: best {best:.3g} ({accuracy[best]:.3f}); "
                + ", ".join(f"{k} {v:.3g} ({accuracy[v]:.3f})" for k, v in suggested.items())
                + f"  [{time.perf_counter() - began:.0f} s]",
                file=sys.stderr,
                flush=True,
            )
    rules = list(lr_find.RULES)
    print(f"backend {backend}; 5 epochs of plain SGD, batch 32, the default MLP")
    print(table(cases, rules))
    print()
    print(summary(cases, rules, args.target))
    Path(args.out).write_text(json.dumps({"grid": GRID, "cases": cases}, indent=1))
    return 0


def validation_accuracy(config, rate: float) -> float:  # type: ignore[no-untyped-def]
    """Validation accuracy after `config.epochs` epochs at `rate` (from the initial weights
    of `config.seed`); a run whose loss became non-finite scores what its weights score."""
    from keras_sgdplus.lab import engine
    from keras_sgdplus.lab.config import OptimizerSpec
    from keras_sgdplus.lab.engine.order import batch_sizes_of
    from keras_sgdplus.lab.engine.recorder import StepRecorder
    from keras_sgdplus.lab.range_test import model_and_arrays

    config = dataclasses.replace(config, optimizer=OptimizerSpec(learning_rate=rate))
    model, arrays, batch_size = model_and_arrays(config)

    class Ignore:
        requested = False

        def put(self, columns: object) -> None:
            pass

        def flush(self, *, sync: bool = True) -> None:
            pass

    sink = Ignore()
    recorder = StepRecorder(
        sink, lambda row: None, batch_sizes_of(arrays.n_train, batch_size), sink
    )
    import keras

    path = "jax_chunks" if keras.backend.backend() == "jax" else "tf_chunks"
    engine.train_function(path)(
        model, arrays, batch_size, range(config.epochs), config.seed, recorder
    )
    logs = model.evaluate(arrays.x_val, arrays.y_val, verbose=0, return_dict=True)
    value = float(logs["accuracy"])
    return value if math.isfinite(value) else 0.0


def table(cases: list[dict], rules: list[str]) -> str:
    header = ["dataset", "seed", "best rate", "best acc"]
    for rule in rules:
        header += [f"{rule} rate", "acc", "gap"]
    rows = [header]
    for case in cases:
        row = [
            case["dataset"],
            str(case["seed"]),
            f"{case['best_rate']:.3g}",
            f"{100 * case['best_accuracy']:.1f}",
        ]
        for rule in rules:
            rate = case["suggested"][rule]
            acc = case["accuracy"][repr(rate)]
            row += [f"{rate:.3g}", f"{100 * acc:.1f}", f"{100 * (case['best_accuracy'] - acc):.1f}"]
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def summary(cases: list[dict], rules: list[str], target: float) -> str:
    lines = [f"gap to the best rate's accuracy, in points (target: within {target:g})"]
    met = []
    for rule in rules:
        gaps = np.array(
            [100 * (c["best_accuracy"] - c["accuracy"][repr(c["suggested"][rule])]) for c in cases]
        )
        within = int((gaps <= target).sum())
        lines.append(
            f"  {rule}: worst {gaps.max():.1f}, mean {gaps.mean():.1f}, "
            f"within target {within}/{len(gaps)}"
        )
        if within == len(gaps):
            met.append(rule)
    lines.append(f"rules that meet the target everywhere: {', '.join(met) or 'none'}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
