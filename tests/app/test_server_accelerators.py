"""The dashboard's server never starts a GPU runtime with GPUs visible, yet runs its CPU Keras.

`dashboard/app.py` hides the GPUs first thing (`lab.accelerators.keep_server_off_accelerators`):
TensorFlow takes nearly all GPU memory in the first process that touches a GPU, which would
starve the training workers. Checked in a fresh interpreter acting as the server (AppTest in
this test process would find Keras imported already): an import hook notes the accelerator
variables in effect when Keras, TensorFlow or JAX is first imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "dashboard" / "app.py"

SERVER = """
import importlib.abc, json, os, sys

RUNTIMES = ("keras", "tensorflow", "jax", "jaxlib", "torch")
VARIABLES = ("CUDA_VISIBLE_DEVICES", "JAX_PLATFORMS")
seen = {}

class NoteFirstImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name in RUNTIMES and name not in seen:
            seen[name] = {v: os.environ.get(v) for v in VARIABLES}
        return None  # the real finders import it

sys.meta_path.insert(0, NoteFirstImport())

from streamlit import config
from streamlit.testing.v1 import AppTest

app = AppTest.from_file(APP, default_timeout=240)
config.set_option("server.address", "localhost", "test")  # served as `sgdplus dashboard` does
app.run()  # the Train page: schedule preview, the device choice
train = {
    "exceptions": [str(e.value) for e in app.exception],
    "devices": list(app.selectbox(key="device").options),
}
app.switch_page("app_pages/landscape.py")
app.run()  # SGDPlus's paths over the test functions, on this server's Keras
landscape = {"exceptions": [str(e.value) for e in app.exception]}
print(json.dumps({
    "seen": seen,
    "marker": os.environ.get("SGDPLUS_SERVER_HID_ACCELERATORS"),
    "train": train,
    "landscape": landscape,
}))
"""


def test_the_server_imports_keras_only_with_every_gpu_hidden(tmp_path):
    runs_dir = tmp_path / "saved_runs"
    runs_dir.mkdir()
    environ = {
        k: v
        for k, v in os.environ.items()
        if k not in ("JAX_PLATFORMS", "SGDPLUS_SERVER_HID_ACCELERATORS")
    }
    environ.update(CUDA_VISIBLE_DEVICES="0", SGDPLUS_RUNS_DIR=str(runs_dir))
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SERVER).replace("APP", repr(str(APP)), 1)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=environ,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])

    assert "keras" in report["seen"], "the pages no longer import Keras: check the hook"
    for runtime, variables in report["seen"].items():
        assert variables == {"CUDA_VISIBLE_DEVICES": "-1", "JAX_PLATFORMS": "cpu"}, runtime
    # What the server was given is kept for its workers (`prepare_process`).
    assert json.loads(report["marker"]) == {"CUDA_VISIBLE_DEVICES": "0", "JAX_PLATFORMS": None}
    # Keras on the CPU still works in the server, and the device choice has no GPU here.
    assert report["train"]["exceptions"] == []
    assert report["train"]["devices"] == ["auto", "cpu"]
    assert report["landscape"]["exceptions"] == []
