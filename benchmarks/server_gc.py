"""What the collections after each rerun cost the dashboard's server, before and after the
freeze of `keras_sgdplus/lab/server_memory.py`.

Run: `.venv/bin/python benchmarks/server_gc.py` (about 15 seconds).

After every script run, a fragment rerun of the live view included, Streamlit calls
`gc.collect(2)` and then, with Keras loaded, `keras.backend.clear_session()`, which
collects again. In a fresh interpreter per backend, as the server has them
(`server_memory.DASHBOARD_LIBRARIES` imported), this times both (median of `--repeats`),
with the objects a full collection walks (`len(gc.get_objects())`), then the same after
`gc.freeze()`. The anchor is the unfrozen collection of the same process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

MEASURE = """
import gc, json, statistics, time
from keras_sgdplus.lab import server_memory

for name in server_memory.DASHBOARD_LIBRARIES:
    __import__(name)
import keras

def timed(call, repeats):
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)

def measure(repeats):
    gc.collect()
    return {
        "objects": len(gc.get_objects()),
        "collect": timed(lambda: gc.collect(2), repeats),
        "clear_session": timed(keras.backend.clear_session, repeats),
    }

repeats = REPEATS
before = measure(repeats)
gc.freeze()
after = measure(repeats)
print(json.dumps({"backend": keras.backend.backend(), "before": before, "after": after}))
"""


def measure(backend: str, repeats: int) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", MEASURE.replace("REPEATS", str(repeats))],
        capture_output=True,
        text=True,
        env={**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"},
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"the {backend} measurement failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backends", default="jax,tensorflow")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"# {os.cpu_count()} CPU cores, median of {args.repeats}")
    print(
        "| backend | objects walked: before | after | gc.collect(2) before | after |"
        " clear_session before | after | a rerun's two collections: before / after |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for backend in args.backends.split(","):
        result = measure(backend, args.repeats)
        before, after = result["before"], result["after"]
        rerun_before = before["collect"] + before["clear_session"]
        rerun_after = after["collect"] + after["clear_session"]
        print(
            f"| {result['backend']} | {before['objects']:,} | {after['objects']:,} "
            f"| {before['collect'] * 1e3:.1f} ms | {after['collect'] * 1e3:.2f} ms "
            f"| {before['clear_session'] * 1e3:.1f} ms | {after['clear_session'] * 1e3:.2f} ms "
            f"| {rerun_before * 1e3:.0f} ms / {rerun_after * 1e3:.2f} ms "
            f"({rerun_before / rerun_after:,.0f}x) |"
        )
    print(
        "\nWhat limits 'before': a full collection visits every tracked object (Keras and its "
        "backend's modules, classes and functions); 'after': only what was made since the "
        "freeze."
    )


if __name__ == "__main__":
    main()
