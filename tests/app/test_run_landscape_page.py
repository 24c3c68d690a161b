"""The "Landscape of a run" page (dashboard/app_pages/run_landscape.py) in Streamlit's AppTest,
with real runs and a real landscape worker: the charts hold what the worker stored."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from streamlit import dataframe_util
from streamlit.testing.v1 import AppTest

from keras_sgdplus.lab import run_landscape
from keras_sgdplus.lab.config import ModelSpec, OptimizerSpec, TrainingConfig
from keras_sgdplus.lab.run_landscape import LandscapeOptions
from keras_sgdplus.lab.runs import RunStore
from keras_sgdplus.lab.training import run_training

Page = Callable[[str], AppTest]


def train(store: RunStore, batch_size: int | None, name: str) -> str:
    config = TrainingConfig(
        dataset="iris",
        name=name,
        model=ModelSpec(depth=1, width=8),
        batch_size=batch_size,
        epochs=3,
        optimizer=OptimizerSpec(learning_rate=0.1, momentum=0.9),
    )
    return run_training(config, store)


@pytest.fixture
def store(runs_dir: Path) -> RunStore:
    return RunStore(runs_dir)


def datasets_of(at: AppTest, index: int) -> list:
    proto = at.get("vega_lite_chart")[index].proto
    json.loads(proto.spec)
    return [dataframe_util.convert_arrow_bytes_to_pandas_df(d.data.data) for d in proto.datasets]


def surface_cells(at: AppTest, index: int):
    (cells,) = [d for d in datasets_of(at, index) if "log_loss" in d.columns]
    return cells


def run_until_drawn(at: AppTest, charts: int, timeout: float = 240.0) -> AppTest:
    """Reruns the page (as its fragment would) until it draws `charts` charts."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        at.run()
        assert not at.exception, at.exception
        if len(at.get("vega_lite_chart")) >= charts:
            return at
        time.sleep(0.5)
    raise AssertionError(f"the page drew {len(at.get('vega_lite_chart'))} charts, not {charts}")


def test_an_empty_store_says_what_to_do(page: Page):
    at = page("run_landscape")
    assert not at.exception
    assert "No run to draw yet" in at.info[0].value


def test_compute_draws_the_stored_surface_and_path(page: Page, store: RunStore):
    run_id = train(store, 16, "mini-batch")
    at = page("run_landscape")
    assert not at.exception
    at.slider(key="run-landscape-resolution").set_value(11)
    at.run()
    at.button(key="run-landscape-compute").click()
    run_until_drawn(at, 2)
    arrays, info = store.load_landscape(run_id, "pca")
    assert info["options"] == LandscapeOptions("pca", 11).to_dict()
    cells = surface_cells(at, 0)
    assert len(cells) == 11 * 11
    np.testing.assert_allclose(cells["loss"].to_numpy(), arrays["loss"].ravel(), rtol=1e-12)
    np.testing.assert_allclose(cells["alpha"].to_numpy()[:11], arrays["alpha"], rtol=1e-12)
    path = max((d for d in datasets_of(at, 0) if "order" in d.columns), key=len)
    assert len(path) == len(store.snapshot_steps(run_id))
    final = path[path.point == "final"]
    assert final[["alpha", "beta"]].to_numpy().tolist() == [[0.0, 0.0]]
    captions = " ".join(c.value for c in at.caption)
    assert "explain" in captions
    assert "run-landscape-compute" not in {b.key for b in at.button}  # nothing to compute


def test_two_runs_side_by_side_share_one_colour_scale(page: Page, store: RunStore):
    online = train(store, 1, "online")
    full = train(store, None, "full batch")
    options = LandscapeOptions("random", 11)
    for run_id in (online, full):
        run_landscape.compute_and_store(store, run_id, options)
    at = page("run_landscape")
    at.radio(key="run-landscape-directions").set_value("random")
    at.run()
    at.multiselect(key="run-landscape-runs").set_value([online, full])
    at.slider(key="run-landscape-resolution").set_value(11)
    run_until_drawn(at, 4)
    domains = []
    for index in (0, 2):  # surface, line, surface, line
        spec = json.loads(at.get("vega_lite_chart")[index].proto.spec)
        heat = spec["layer"][0]
        domains.append(heat["encoding"]["color"]["scale"]["domain"])
    assert domains[0] == domains[1]
    both = np.concatenate(
        [np.log10(store.load_landscape(r, "random")[0]["loss"]).ravel() for r in (online, full)]
    )
    assert domains[0] == pytest.approx([both.min(), both.max()])


def test_a_run_without_snapshots_is_not_offered(page: Page, store: RunStore):
    writer = store.create("old run", TrainingConfig(dataset="iris").to_dict(), {})
    writer.update(status="completed")
    writer.close()
    at = page("run_landscape")
    assert "No run to draw yet" in at.info[0].value
