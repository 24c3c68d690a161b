"""What one refresh of the live training view costs as a run grows, and how fast a run's
batches are written.

Run: `.venv/bin/python benchmarks/live_view.py` (`--quick` for a smoke run).

Each refresh of the Train page's live charts (every 2-8 s while a run trains) gets the run's
curves and builds the three Vega-Lite specs it sends to the browser: the mini-batch view
(smoothed, downsampled to at most 2000 points), the epoch-averaged view and the learning
rate. All figures are the fastest of `--repeats`, each against an anchor measured in the
same run:

1. Full refresh, what the page did before it followed the curves: `RunStore.load_curve` of
   both curves + the `lab.charts` builders + `to_dict()`, on runs of 1k to 1M recorded
   batches. Anchor: the same refresh without downsampling at 1k batches.
2. Incremental refresh, what the page does now: the session's `lab.live.CurveFollower`s
   read only what was appended since the last refresh, here 1 s of training at 100k
   batches/s (100,000 new batches, 100 new epochs), + the same charts; at 100k and 1M
   batches recorded before. Against the full refresh of the same run, and split into the
   read and the charts (what is left of the refresh).
3. Writing batches, 9 columns of a realistic run (float32 losses and gradient norms, a
   learning rate that decays every step): `RunWriter.append_batches` (rows, anchor),
   `append_batch_columns`, the formatting alone (`repr`/`str` of every value, joined: the
   limit), and `BackgroundBatchWriter`: rows/s until `close` returns, what `put` costs when
   chunks come as fast as they can (the thread formats meanwhile, holding the GIL), and
   what it adds to a training loop at 100k batches/s whose steps run without the GIL.
4. The Train page's check for a live run on every rerun, in a store of 300 finished runs:
   `list_runs(live_only=True)` (a lock test per run) against `list_runs()` (anchor).
"""

from __future__ import annotations

import argparse
import copy
import math
import tempfile
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from keras_sgdplus.lab import charts, live
from keras_sgdplus.lab.runs import (
    _ROWS_PER_PIECE,
    BATCH_COLUMNS,
    BackgroundBatchWriter,
    RunStore,
    RunWriter,
    _batch_arrays,
    _batch_lines,
)

BATCHES_PER_EPOCH = 1000
NEW_PER_REFRESH = 100_000  # 1 s of training at 100k batches/s


def curve_columns(start: int, count: int) -> dict[str, np.ndarray]:
    """Batches `start .. start + count` of the refresh runs."""
    step = np.arange(start, start + count, dtype=np.int64)
    rng = np.random.default_rng(start)
    loss = 2.0 / np.sqrt(1 + step) + 0.1 * rng.random(count)
    return {
        "step": step,
        "epoch": step // BATCHES_PER_EPOCH,
        "batch": step % BATCHES_PER_EPOCH,
        "loss": loss,
        "learning_rate": np.full(count, 0.01),
        "batch_size": np.full(count, 32),
        "samples_seen": 32 * (step + 1),
        "wall_time": step * 1e-3,
        "grad_norm": 1.0 + rng.random(count),
    }


def append(writer: RunWriter, start: int, count: int) -> None:
    """Batches `start .. start + count` and the epochs they complete."""
    for begin in range(start, start + count, 100_000):
        columns = curve_columns(begin, min(100_000, start + count - begin))
        writer.append_batch_columns(columns)
    for epoch in range(start // BATCHES_PER_EPOCH, (start + count) // BATCHES_PER_EPOCH):
        end = (epoch + 1) * BATCHES_PER_EPOCH
        loss = curve_columns(end - BATCHES_PER_EPOCH, BATCHES_PER_EPOCH)["loss"]
        writer.append_epoch(
            {
                "epoch": epoch,
                "loss": float(loss.mean()),
                "wall_time": end * 1e-3,
                "samples_seen": 32 * end,
                "val_loss": float(loss[-1]),
            }
        )


def write_run(store: RunStore, n_batches: int) -> str:
    writer = store.create(f"{n_batches} batches", {"epochs": n_batches // BATCHES_PER_EPOCH}, {})
    append(writer, 0, n_batches)
    writer.close()
    return writer.run_id


def draw(batches: pd.DataFrame, epochs: pd.DataFrame, max_points: int) -> int:
    """The three charts of one refresh; returns the points drawn in the mini-batch view."""
    data = charts.batch_curve_data({"run": batches}, "step", 0.6, max_points=max_points)
    charts.batch_loss_chart(data).to_dict()
    epoch_data = charts.epoch_curve_data({"run": epochs}, "step", batches={"run": batches})
    charts.epoch_chart(epoch_data).to_dict()
    charts.learning_rate_chart({"run": batches}, "step", max_points=max_points).to_dict()
    return len(data)


def full_refresh(store: RunStore, run_id: str, max_points: int) -> int:
    """One live-view refresh reading both curves whole."""
    return draw(store.load_curve(run_id, "batches"), store.load_curve(run_id, "epochs"), max_points)


def fastest(call: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


def full_refreshes(store: RunStore, sizes: list[int], repeats: int) -> None:
    runs = {n: write_run(store, n) for n in sizes}
    full_refresh(store, runs[sizes[0]], 10**9)  # warm-up: first use of Altair's schema
    anchor = fastest(lambda: full_refresh(store, runs[1_000], 10**9), repeats)
    points = full_refresh(store, runs[1_000], 10**9)
    print(
        f"1. full refresh; anchor: 1,000 batches, all {points} points drawn: {anchor * 1e3:.1f} ms"
    )
    print(f"{'batches':>10} {'points drawn':>13} {'refresh ms':>11} {'x anchor':>9}")
    for n, run_id in runs.items():
        seconds = fastest(
            lambda r=run_id: full_refresh(store, r, charts.DEFAULT_MAX_POINTS), repeats
        )
        points = full_refresh(store, run_id, charts.DEFAULT_MAX_POINTS)
        print(f"{n:>10,} {points:>13,} {seconds * 1e3:>11.1f} {seconds / anchor:>9.2f}")


def incremental_refresh(store: RunStore, n: int, repeats: int) -> dict[str, float]:
    """Seconds of: the incremental refresh, its read, its charts, and a full refresh and its
    read, of a run of `n` batches followed so far to which NEW_PER_REFRESH were appended."""
    points = charts.DEFAULT_MAX_POINTS
    writer = store.create(f"{n} growing", {"epochs": 1}, {})
    append(writer, 0, n)
    followers = [live.CurveFollower(store, writer.run_id, c) for c in ("batches", "epochs")]
    for follower in followers:
        follower.update()  # the refreshes so far
    append(writer, n, NEW_PER_REFRESH)
    writer.close()

    def read_new() -> list[pd.DataFrame]:
        return [copy.copy(f).update() for f in followers]  # from the same state each time

    batches, epochs = read_new()
    run_id = writer.run_id
    return {
        "incremental": fastest(lambda: draw(*read_new(), points), repeats),
        "read": fastest(read_new, repeats),
        "charts": fastest(lambda: draw(batches, epochs, points), repeats),
        "full": fastest(lambda: full_refresh(store, run_id, points), repeats),
        "full read": fastest(
            lambda: [store.load_curve(run_id, c) for c in ("batches", "epochs")], repeats
        ),
    }


def incremental_refreshes(store: RunStore, sizes: list[int], repeats: int) -> None:
    print(
        f"2. incremental refresh after {NEW_PER_REFRESH:,} new batches "
        f"(1 s at {NEW_PER_REFRESH:,}/s), against a full refresh of the same run"
    )
    print(
        f"{'batches':>10} {'full ms':>8} {'incr. ms':>9} {'x faster':>9} "
        f"{'full read':>10} {'incr. read':>11} {'charts':>7}"
    )
    for n in sizes:
        t = incremental_refresh(store, n, repeats)
        print(
            f"{n + NEW_PER_REFRESH:>10,} {t['full'] * 1e3:>8.0f} {t['incremental'] * 1e3:>9.0f} "
            f"{t['full'] / t['incremental']:>9.1f} {t['full read'] * 1e3:>8.0f}ms "
            f"{t['read'] * 1e3:>9.0f}ms {t['charts'] * 1e3:>5.0f}ms"
        )


def training_columns(count: int) -> dict[str, np.ndarray]:
    """9 columns as the lab's recorder writes them: float32 losses and norms widened to
    float64, a rate decaying every step (every float distinct: the slowest case)."""
    rng = np.random.default_rng(0)
    step = np.arange(count, dtype=np.int64)
    return {
        "step": step,
        "epoch": step // 1875,
        "batch": step % 1875,
        "loss": rng.random(count).astype(np.float32).astype(np.float64),
        "learning_rate": 0.01 / (1.0 + 1e-4 * step),
        "batch_size": np.full(count, 32),
        "samples_seen": 32 * (step + 1),
        "wall_time": step * 1e-5 + 3e-6,
        "grad_norm": (3 * rng.random(count)).astype(np.float32).astype(np.float64),
    }


def writer_speed(store: RunStore, rows: int, repeats: int) -> None:
    columns = training_columns(rows)
    records = pd.DataFrame(columns).to_dict("records")
    arrays = _batch_arrays(columns)

    def with_writer(call: Callable[[RunWriter], object]) -> float:
        """The fastest of `repeats` calls, each on a new run (its creation not timed)."""
        times = []
        for _ in range(repeats):
            writer = store.create("writing", {}, {})
            start = time.perf_counter()
            call(writer)
            times.append(time.perf_counter() - start)
            writer.close()
        return min(times)

    def lines_only() -> None:
        for begin in range(0, rows, _ROWS_PER_PIECE):
            _batch_lines(arrays, begin, begin + _ROWS_PER_PIECE)

    def float_reprs() -> None:
        for values in arrays.values():
            if values.dtype.kind == "f":
                list(map(float.__repr__, values.tolist()))

    anchor = with_writer(lambda w: w.append_batches(records))
    columnar = with_writer(lambda w: w.append_batch_columns(columns))
    lines = fastest(lines_only, repeats)
    reprs = fastest(float_reprs, repeats)

    def background(writer: RunWriter) -> None:
        with BackgroundBatchWriter(writer) as sink:
            for begin in range(0, rows, 1000):
                sink.put({c: v[begin : begin + 1000] for c, v in columns.items()})

    through = with_writer(background)
    print(f"3. writing {rows:,} batches of {len(BATCH_COLUMNS)} columns (rows/s)")
    print(f"   append_batches (rows, anchor)        {rows / anchor:>12,.0f}")
    print(
        f"   append_batch_columns                 {rows / columnar:>12,.0f}"
        f"  {anchor / columnar:.1f}x anchor"
    )
    print(
        f"   of which formatting the lines        {lines / columnar:>12.0%}"
        "  (the rest: the checks, encoding, the write)"
    )
    print(
        f"   repr of the 4 float columns alone    {rows / reprs:>12,.0f}"
        "  (the limit: one repr per float; 17-digit float32 values are the slowest)"
    )
    print(
        f"   BackgroundBatchWriter, put to close  {rows / through:>12,.0f}"
        f"  {anchor / through:.1f}x anchor"
    )


def training_overhead(store: RunStore, seconds: float) -> None:
    """A training loop at 100k batches/s: 1000-step chunks, each 10 ms of compiled work
    without the GIL (a sleep here), then `put`. Against the same loop not writing."""
    chunks = int(seconds * 100)
    columns = training_columns(1000 * chunks)

    def loop(sink: BackgroundBatchWriter | None) -> float:
        start = time.perf_counter()
        for begin in range(0, 1000 * chunks, 1000):
            time.sleep(0.01)
            if sink is not None:
                sink.put({c: v[begin : begin + 1000] for c, v in columns.items()})
        return time.perf_counter() - start

    anchor = min(loop(None) for _ in range(3))
    with_writer = math.inf
    for _ in range(3):
        writer = store.create("overhead", {}, {})
        sink = BackgroundBatchWriter(writer)
        with_writer = min(with_writer, loop(sink))
        sink.close()
        writer.close()
    print(
        f"   a training loop at 100,000 batches/s for {seconds:g} s: {anchor:.3f} s without "
        f"writing (anchor), {with_writer:.3f} s putting to a BackgroundBatchWriter "
        f"(+{with_writer / anchor - 1:.1%})"
    )


def finished_runs(store: RunStore, count: int) -> None:
    for k in range(count):
        writer = store.create(f"finished {k}", {"epochs": 1}, {})
        writer.append_epoch({"epoch": 0, "loss": 1.0, "wall_time": 1.0, "samples_seen": 32})
        writer.update(status="completed")
        writer.close()


def live_run_check(repeats: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = RunStore(folder)
        finished_runs(store, 300)
        full = fastest(store.list_runs, repeats)
        live_only = fastest(lambda: store.list_runs(live_only=True), repeats)
        print(
            f"4. live-run check, 300 finished runs: list_runs() {full * 1e3:.1f} ms (anchor), "
            f"list_runs(live_only=True) {live_only * 1e3:.1f} ms ({full / live_only:.1f}x faster)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="small runs only")
    args = parser.parse_args()
    sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000, 1_000_000]
    grown = [10_000] if args.quick else [100_000, 1_000_000]
    with tempfile.TemporaryDirectory() as folder:
        store = RunStore(folder)
        full_refreshes(store, sizes, args.repeats)
        incremental_refreshes(store, grown, args.repeats)
        writer_speed(store, 20_000 if args.quick else 300_000, min(args.repeats, 3))
        training_overhead(store, 0.5 if args.quick else 2.0)
    live_run_check(args.repeats)


if __name__ == "__main__":
    main()
