"""The server's garbage collections skip the libraries' objects (`lab/server_memory.py`).

Streamlit runs a full collection, and Keras's `clear_session` another, after every rerun of
the live view; with Keras and its backend loaded each walked several hundred thousand objects.
What a collection walks is what `gc.get_objects()` lists (the permanent generation that
`gc.freeze()` fills is not in it), so these tests count objects instead of timing anything.
Each runs in a fresh interpreter: this test process has loaded, and perhaps frozen, its own.
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


def run_python(code: str, tmp_path: Path, timeout: float = 300) -> dict:
    env_runs = tmp_path / "saved_runs"
    env_runs.mkdir(exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={**os.environ, "SGDPLUS_RUNS_DIR": str(env_runs)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_load_and_freeze_freezes_once_and_later_cycles_are_still_collected(tmp_path):
    result = run_python(
        """
        import gc, json, sys
        from keras_sgdplus.lab import server_memory

        before = len(gc.get_objects())
        first = server_memory.load_and_freeze(["decimal", "json"])
        tracked_after = len(gc.get_objects())
        second = server_memory.load_and_freeze(["fractions"])

        class Node:
            pass

        a, b = Node(), Node()
        a.other, b.other = b, a  # a cycle made after the freeze: garbage once dropped
        del a, b
        print(json.dumps({
            "first": first, "second": second, "before": before,
            "tracked_after": tracked_after, "frozen": gc.get_freeze_count(),
            "decimal": "decimal" in sys.modules, "fractions": "fractions" in sys.modules,
            "collected": gc.collect(),
        }))
        """,
        tmp_path,
    )
    assert result["first"] is True
    assert result["second"] is False
    assert result["decimal"]
    assert not result["fractions"]
    assert result["frozen"] >= result["before"]
    assert result["tracked_after"] < 100  # nothing left for a collection to walk
    assert result["collected"] >= 2  # both nodes of the cycle (and their dicts)


def test_the_dashboard_server_freezes_keras_before_its_pages_run(tmp_path):
    result = run_python(
        f"""
        import gc, json, sys
        from streamlit import config
        from streamlit.testing.v1 import AppTest

        app = AppTest.from_file({str(APP)!r}, default_timeout=240)
        config.set_option("server.address", "localhost", "test")
        app.run()  # the Train page, as a browser first sees it
        app.run()  # a rerun, as the live view makes
        gc.collect()
        print(json.dumps({{
            "exceptions": [str(e.value) for e in app.exception],
            "keras": "keras" in sys.modules,
            "frozen": gc.get_freeze_count(),
            "tracked": len(gc.get_objects()),
        }}))
        """,
        tmp_path,
    )
    assert result["exceptions"] == []
    assert result["keras"]  # so Streamlit calls keras.backend.clear_session() after each run
    assert result["frozen"] > 200_000  # Keras with either backend: 275k (JAX) to 460k (TF)
    # what each rerun's collections walk: the pages' own objects, a small part of the rest
    assert result["tracked"] < result["frozen"] / 5
