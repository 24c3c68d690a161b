"""What one refresh of the live training view costs as a run grows.

Run: `.venv/bin/python benchmarks/live_view.py` (`--quick` for a smoke run).

Each refresh of the Train page's live panel (once a second while a run trains) reads the
run's curves from the store and builds the three Vega-Lite specs it sends to the browser:
the mini-batch view (smoothed, downsampled to at most 2000 points), the epoch-averaged view
and the learning rate. This times exactly that, `RunStore.load_curve` + the `lab.charts`
builders + `to_dict()`, on runs of 1k to 1M recorded batches written into a temporary
store; the figure is the fastest of `--repeats` refreshes. The anchor, measured in the same
run, is the same refresh without downsampling at 1k batches (every point drawn).

It also times the Train page's check for a live run on every rerun, in a store of 300
finished runs: `list_runs(live_only=True)` (a lock test per run) against the anchor
`list_runs()` (every run's metadata and curve tails read).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from keras_sgdplus.lab import charts
from keras_sgdplus.lab.runs import RunStore

BATCHES_PER_EPOCH = 1000


def write_run(store: RunStore, n_batches: int) -> str:
    rng = np.random.default_rng(0)
    writer = store.create(f"{n_batches} batches", {"epochs": n_batches // BATCHES_PER_EPOCH}, {})
    step = np.arange(n_batches)
    loss = 2.0 / np.sqrt(1 + step) + 0.1 * rng.random(n_batches)
    chunk = 50_000
    for start in range(0, n_batches, chunk):
        stop = min(start + chunk, n_batches)
        writer.append_batches(
            [
                {
                    "step": int(i),
                    "epoch": int(i // BATCHES_PER_EPOCH),
                    "batch": int(i % BATCHES_PER_EPOCH),
                    "loss": float(loss[i]),
                    "learning_rate": 0.01,
                    "batch_size": 32,
                    "samples_seen": int(32 * (i + 1)),
                    "wall_time": float(i) * 1e-3,
                }
                for i in range(start, stop)
            ]
        )
    for epoch in range(n_batches // BATCHES_PER_EPOCH):
        end = (epoch + 1) * BATCHES_PER_EPOCH
        writer.append_epoch(
            {
                "epoch": epoch,
                "loss": float(loss[end - BATCHES_PER_EPOCH : end].mean()),
                "wall_time": end * 1e-3,
                "samples_seen": 32 * end,
                "val_loss": float(loss[end - 1]),
            }
        )
    writer.close()
    return writer.run_id


def refresh(store: RunStore, run_id: str, max_points: int) -> int:
    """One live-view refresh; returns the number of points drawn in the mini-batch view."""
    batches = store.load_curve(run_id, "batches")
    epochs = store.load_curve(run_id, "epochs")
    data = charts.batch_curve_data({"run": batches}, "step", 0.6, max_points=max_points)
    charts.batch_loss_chart(data).to_dict()
    epoch_data = charts.epoch_curve_data({"run": epochs}, "step", batches={"run": batches})
    charts.epoch_chart(epoch_data).to_dict()
    charts.learning_rate_chart({"run": batches}, "step", max_points=max_points).to_dict()
    return len(data)


def fastest(store: RunStore, run_id: str, max_points: int, repeats: int) -> tuple[float, int]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        points = refresh(store, run_id, max_points)
        times.append(time.perf_counter() - start)
    return min(times), points


def finished_runs(store: RunStore, count: int) -> None:
    for k in range(count):
        writer = store.create(f"finished {k}", {"epochs": 1}, {})
        writer.append_epoch({"epoch": 0, "loss": 1.0, "wall_time": 1.0, "samples_seen": 32})
        writer.update(status="completed")
        writer.close()


def fastest_call(call, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="1k and 10k batches only")
    args = parser.parse_args()
    sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000, 1_000_000]
    with tempfile.TemporaryDirectory() as folder:
        store = RunStore(folder)
        runs = {n: write_run(store, n) for n in sizes}
        refresh(store, runs[1_000], 10**9)  # warm-up: first use of Altair's schema
        anchor, anchor_points = fastest(store, runs[1_000], 10**9, args.repeats)
        print(f"anchor: 1,000 batches, all {anchor_points} points drawn: {anchor * 1e3:.1f} ms")
        print(f"{'batches':>10} {'points drawn':>13} {'refresh ms':>11} {'x anchor':>9}")
        for n, run_id in runs.items():
            seconds, points = fastest(store, run_id, charts.DEFAULT_MAX_POINTS, args.repeats)
            print(f"{n:>10,} {points:>13,} {seconds * 1e3:>11.1f} {seconds / anchor:>9.2f}")
    with tempfile.TemporaryDirectory() as folder:
        store = RunStore(folder)
        finished_runs(store, 300)
        full = fastest_call(store.list_runs, args.repeats)
        live = fastest_call(lambda: store.list_runs(live_only=True), args.repeats)
        print(
            f"live-run check, 300 finished runs: list_runs() {full * 1e3:.1f} ms (anchor), "
            f"list_runs(live_only=True) {live * 1e3:.1f} ms ({full / live:.1f}x faster)"
        )


if __name__ == "__main__":
    main()
