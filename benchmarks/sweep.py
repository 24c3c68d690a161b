"""A sweep against the same runs one after another: what running a grid in parallel buys.

Run: `.venv/bin/python benchmarks/sweep.py` (`--repeats 2`; `--epochs 5`; `--quick`: a 2x1
grid, one seed, one epoch). About 3 minutes on an idle 2-core machine.

The issue's target: a 3x3 grid (learning rate x momentum) x 2 seeds on `digits` (18 runs of
5 epochs, batches of 32: 225 steps each) takes at most 0.6x as long through a sweep as the
same 18 runs trained one after another in one process. Both are measured as a user meets
them, each in a fresh Python process of its own (its imports included), on its own
temporary runs folder:

- **one process**: `training.run_training` on each of the 18 configs in a loop (the Keras
  session cleared between runs, as a sweep's worker clears it), the backend chosen as
  `sgdplus train` chooses it (`accelerators.prepare_process`): the runs as the lab trains
  them one by one;
- **one process, compile cache**: the same, with the JAX compilation cache a sweep's
  workers use (`sweep_runner.share_compiled_programs`), empty at the start: the strongest
  anchor, the same work as the sweep but for the parallel workers;
- **sweep**: `sweep_runner.run_sweep` on the same `SweepSpec` on this machine: a
  LocalCluster of as many worker processes as cores, each run a Dask task in a worker,
  the compile cache empty at the start.

Both must store 18 completed runs with the same final losses config by config (a run's
losses depend on its config alone, wherever it trains). The wall time of each process is
printed, and their ratio; the order of the two alternates between repetitions and the best
time of each is kept (the machine may be shared).

What limits the ratio: compiling (about 3.5 s of a 4 s run here; without the cache every
run compiles its programs again, with it a program is compiled once per sweep, and then
the sweep's fixed costs weigh more), the cores (2 here: two runs at once at best, and each
run's compiled loop and its CSV writer already use more than one core,
`benchmarks/dashboard_vs_cli.py`; other work on a shared machine takes its share), and
starting the worker processes (a new interpreter importing Dask, Keras and JAX, about 5 s,
paid once per worker, not per run).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

MODES = ("sequential", "sequential-cached", "sweep")
LEARNING_RATES = (0.01, 0.03, 0.1)
MOMENTA = (0.0, 0.5, 0.9)
SEEDS = (0, 1)


def spec_of(epochs: int, quick: bool):
    from keras_sgdplus.lab.config import TrainingConfig
    from keras_sgdplus.lab.sweeps import SweepSpec

    base = TrainingConfig(dataset="digits", epochs=epochs, batch_size=32)
    if quick:
        return SweepSpec("benchmark", base, {"learning_rate": (0.01, 0.1)}, (0,))
    axes = {"learning_rate": LEARNING_RATES, "momentum": MOMENTA}
    return SweepSpec("benchmark", base, axes, SEEDS)


def final_losses(runs_dir: str, sweep_id: str) -> dict[str, float]:
    """{settings and seed as text: final loss} of the sweep's runs; every run completed."""
    from keras_sgdplus.lab.runs import RunStore
    from keras_sgdplus.lab.sweeps import runs_of

    losses = {}
    for row in runs_of(RunStore(runs_dir).list_runs(), sweep_id):
        if row.status != "completed":
            raise SystemExit(f"run {row.run_id} ended {row.status}: {row.error}")
        optimizer = row.config["optimizer"]
        key = f"lr={optimizer['learning_rate']} m={optimizer['momentum']} seed={row.config['seed']}"
        losses[key] = row.summary["final_loss"]
    return losses


def child_sequential(runs_dir: str, epochs: int, quick: bool, cached: bool = False) -> dict:
    """One process: the sweep's configs trained one after another with run_training
    (`cached`: with the compile cache of a sweep's workers)."""
    from keras_sgdplus.lab.accelerators import prepare_process
    from keras_sgdplus.lab.sweep_runner import share_compiled_programs
    from keras_sgdplus.lab.sweeps import expand

    spec = spec_of(epochs, quick)
    backend = prepare_process(spec.base.backend, spec.base.device)  # before Keras loads
    if cached and backend == "jax":
        share_compiled_programs()
    import keras

    from keras_sgdplus.lab.runs import RunStore
    from keras_sgdplus.lab.training import run_training

    store = RunStore(runs_dir)
    sweep_id = "sweep-20000101-000000-000000"  # the configs' tags, as the sweep gives them
    for config in expand(spec, sweep_id):
        keras.utils.clear_session()
        run_training(config, store)
    return {"losses": final_losses(runs_dir, sweep_id), "backend": keras.backend.backend()}


def child_sweep(runs_dir: str, epochs: int, quick: bool) -> dict:
    """One process: run_sweep on this machine (its own LocalCluster)."""
    from keras_sgdplus.lab.sweep_runner import run_sweep

    sweep_id = run_sweep(spec_of(epochs, quick), runs_dir)
    return {"losses": final_losses(runs_dir, sweep_id), "workers": os.cpu_count()}


def measure(mode: str, epochs: int, quick: bool) -> tuple[float, dict]:
    """The wall time of a fresh process that does `mode`, and what it reports; the compile
    cache (where used) starts empty, in a folder of its own."""
    with (
        tempfile.TemporaryDirectory(prefix=f"sweep-bench-{mode}-") as runs_dir,
        tempfile.TemporaryDirectory(prefix="sweep-bench-jax-cache-") as cache,
    ):
        command = [sys.executable, __file__, "--child", mode, "--runs-dir", runs_dir]
        command += ["--epochs", str(epochs), *(["--quick"] if quick else [])]
        environment = {**os.environ, "SGDPLUS_JAX_CACHE_DIR": cache}
        start = time.perf_counter()
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=1800, env=environment
        )
        elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{result.stderr[-3000:]}")
    return elapsed, json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="a 2x1 grid, one seed, 1 epoch")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--runs-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    epochs = 1 if args.quick else args.epochs
    if args.child:
        if args.child == "sweep":
            report = child_sweep(args.runs_dir, epochs, args.quick)
        else:
            cached = args.child == "sequential-cached"
            report = child_sequential(args.runs_dir, epochs, args.quick, cached)
        print(json.dumps(report))
        return

    runs = spec_of(epochs, args.quick).run_count
    print(f"{runs} runs on digits, {epochs} epochs each, batches of 32; {os.cpu_count()} cores")
    times: dict[str, list[float]] = {mode: [] for mode in MODES}
    reports: dict[str, dict] = {}
    for repeat in range(args.repeats):
        for mode in MODES if repeat % 2 == 0 else MODES[::-1]:
            elapsed, reports[mode] = measure(mode, epochs, args.quick)
            times[mode].append(elapsed)
            print(f"  {mode:<18} {elapsed:6.1f} s", flush=True)
    losses = reports["sweep"]["losses"]
    if len(losses) != runs or any(reports[mode]["losses"] != losses for mode in MODES):
        raise SystemExit("the sweep's runs differ from the same runs trained one by one")
    best = {mode: min(found) for mode, found in times.items()}
    print(f"backend {reports['sequential']['backend']}; the same final losses, run for run")
    print(f"best of {args.repeats}:")
    print(f"  one process, one run after another:  {best['sequential']:6.1f} s")
    print(f"  the same with the compile cache:     {best['sequential-cached']:6.1f} s")
    print(
        f"  sweep, {reports['sweep']['workers']} local Dask workers:        {best['sweep']:6.1f} s"
    )
    print(
        f"sweep / one process: {best['sweep'] / best['sequential']:.2f}x (target <= 0.6x); "
        f"sweep / one process with the cache: {best['sweep'] / best['sequential-cached']:.2f}x"
    )


if __name__ == "__main__":  # Dask's worker processes start by `spawn`: the guard is needed
    main()
