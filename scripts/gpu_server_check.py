"""On a machine with an NVIDIA GPU and JAX's CUDA build: a process set up as the dashboard's
server (`accelerators.keep_server_off_accelerators`) sees no GPU and holds no GPU memory,
while it computes with Keras; the training worker it starts gets the GPU back and grows its
memory as it needs it (`nvidia-smi`, every 0.5 s while it trains).

Run: `python scripts/gpu_server_check.py` (about 30 s). Not part of the tests: CI has no GPU.
"""

import os
import subprocess
import tempfile
import time

from keras_sgdplus.lab import accelerators

accelerators.keep_server_off_accelerators()
os.environ["KERAS_BACKEND"] = "jax"
import jax  # noqa: E402
import keras  # noqa: E402

print("server pid", os.getpid(), "jax devices in the server:", jax.devices())
print("available_devices (asked of children):", accelerators.available_devices())
keras.ops.sum(keras.ops.ones((1000, 1000)))  # the server computing something, as a preview does
from keras_sgdplus.lab.config import TrainingConfig  # noqa: E402
from keras_sgdplus.lab.jobs import start_training  # noqa: E402
from keras_sgdplus.lab.runs import RunStore  # noqa: E402


def gpu_apps():
    out = subprocess.run(
        ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return out or "(none)"


print("GPU processes before the worker:", gpu_apps())
runs = tempfile.mkdtemp()
config = TrainingConfig.from_dict(
    {"dataset": "digits", "epochs": 30, "batch_size": 1, "backend": "jax", "device": "gpu"}
)
job = start_training(config, runs)
run_id = job.run_id(timeout=120)
seen = set()
while job.alive:
    seen.add(gpu_apps())
    time.sleep(0.5)
meta = RunStore(runs).load_meta(run_id)
print(
    "worker run:",
    meta["status"],
    "device",
    meta["environment"].get("device"),
    "pid",
    meta["environment"].get("pid"),
)
print("GPU processes while it trained:", sorted(seen))
print("GPU processes after:", gpu_apps())
