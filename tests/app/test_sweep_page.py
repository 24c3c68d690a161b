"""The "Sweeps" page (dashboard/app_pages/sweep.py) in Streamlit's AppTest.

Sweeps are made in the test: the record with `SweepStore.create` and each run of the grid
written with `RunStore.create` (`tests/lab/test_sweep_results.py`), so the page is checked
against numbers recomputed from the runs' own files.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit import config as streamlit_config
from streamlit.testing.v1 import AppTest

from keras_sgdplus.lab.config import TrainingConfig
from keras_sgdplus.lab.runs import RunStore
from keras_sgdplus.lab.sweeps import SweepSpec, SweepStore
from tests.app.conftest import DASHBOARD, PAGE_TIMEOUT
from tests.app.elements import chart_titled, drawn_charts
from tests.lab.test_sweep_results import make_sweep

Page = Callable[[str], AppTest]
BASE = TrainingConfig(dataset="digits", epochs=4, batch_size=16)


def no_failures(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def button(at: AppTest, key: str):
    (found,) = [b for b in at.button if b.key == key]
    return found


@pytest.fixture
def sweep(runs_dir: Path) -> str:
    spec = SweepSpec(
        "grid",
        BASE,
        {"learning_rate": (0.01, 0.1, 1.0), "nesterov": (False, True)},
        seeds=(0, 1),
    )
    sweep_id, _ = make_sweep(runs_dir, spec, seed=11)
    SweepStore(runs_dir).update(sweep_id, status="completed")
    return sweep_id


def best_val_losses(runs_dir: Path) -> pd.DataFrame:
    """Every run's settings and lowest val_loss, from its meta.json and epochs.csv."""
    rows = []
    for run in RunStore(runs_dir).list_runs():
        epochs = pd.read_csv(runs_dir / run.run_id / "epochs.csv")
        optimizer = run.config["optimizer"]
        rows.append(
            {
                "learning_rate": optimizer["learning_rate"],
                "nesterov": optimizer["nesterov"],
                "best": epochs["val_loss"].min(),
            }
        )
    return pd.DataFrame(rows)


def test_renders_without_sweeps_and_counts_the_runs_of_the_chosen_values(
    page: Page, runs_dir: Path
):
    at = page("sweep")
    no_failures(at)
    assert any("No sweep yet" in info.value for info in at.info)
    assert at.metric[0].value == "8"  # the defaults: 2 rates x 2 momenta x 2 seeds
    at.text_input(key="sweep_axis_learning_rate").set_value("1e-3:1:4log")
    at.text_input(key="sweep_axis_nesterov").set_value("false,true")
    at.text_input(key="sweep_seeds").set_value("3")
    at.run()
    no_failures(at)
    assert at.metric[0].value == "48"  # 4 x 2 x 2 x 3
    text = " ".join(m.value for m in at.markdown)
    assert "**48 runs** (4 learning_rate x 2 momentum x 2 nesterov x 3 seeds)" in text
    assert "About " in text
    assert "steps/s" in text  # no completed run in the store: the stated default pace
    assert button(at, "sweep_start")

    at.text_input(key="sweep_cluster").set_value("not an address")
    at.run()
    assert "On a cluster, the time depends on its workers." in " ".join(
        m.value for m in at.markdown
    )
    button(at, "sweep_start").click().run()
    no_failures(at)
    (message,) = errors(at)
    assert "`cluster`" in message
    assert "not an address" in message
    assert not SweepStore(runs_dir).list_sweeps()  # nothing started
    at.text_input(key="sweep_cluster").set_value("")

    at.text_input(key="sweep_axis_momentum").set_value("0,1.5")
    at.run()
    no_failures(at)
    (message,) = errors(at)
    assert "momentum" in message
    assert "1.5" in message
    assert not [b for b in at.button if b.key == "sweep_start"]


def test_shows_the_results_of_a_sweep(page: Page, runs_dir: Path, sweep: str):
    at = page("sweep")
    no_failures(at)
    assert at.selectbox(key="sweep_chosen").value == sweep
    assert "12 of 12 runs done" in at.get("progress")[0].proto.text
    (ranking,) = [d.value for d in at.dataframe if "rank" in d.value.columns]
    runs = best_val_losses(runs_dir)
    means = runs.groupby(["learning_rate", "nesterov"])["best"].mean()
    assert list(ranking["best_val_loss_mean"]) == pytest.approx(sorted(means), abs=1e-15)

    heat = chart_titled(at, "Best validation loss").data
    heat = heat.drop_duplicates(["x", "y"])
    assert len(heat) == 6
    for row in heat.itertuples():
        expected = means[(float(row.x), row.y == "true")]
        assert row.value == pytest.approx(expected, abs=1e-15)

    (bands,) = [c for c in drawn_charts(at) if c.title.startswith("Loss per mini-batch")]
    assert set(bands.data["config"]) == {c for c in ranking.head(3).apply(_label, axis=1)}
    at.radio(key="sweep_view").set_value("epochs")
    at.radio(key="sweep_band").set_value("std")
    at.run()
    no_failures(at)
    (bands,) = [c for c in drawn_charts(at) if "per epoch" in c.title]
    assert "mean +/- one std" in bands.title
    assert np.isfinite(bands.data["upper"]).all()

    SweepStore(runs_dir).update(sweep, status="stopped")
    at.run()
    assert "Stopped: 12 of 12 runs done" in at.get("progress")[0].proto.text
    at.text_input(key="sweep_filter").set_value("no such name")
    at.run()
    no_failures(at)
    assert any("No sweep matches" in info.value for info in at.info)


def _label(row: pd.Series) -> str:
    return f"lr={row['learning_rate']}, nesterov={row['nesterov']}"


def test_delete_removes_the_sweep_and_its_runs(page: Page, runs_dir: Path, sweep: str):
    pytest.importorskip("keras_sgdplus.lab.sweep_runner")
    SweepStore(runs_dir).update(sweep, status="running")
    at = page("sweep")
    assert button(at, "sweep_delete").disabled  # a running sweep: stop it first
    SweepStore(runs_dir).update(sweep, status="stopped")
    at.run()
    button(at, "sweep_delete").click()
    at.run()
    assert any("12 runs" in w.value for w in at.warning)
    button(at, "sweep_delete_no").click()
    at.run()
    assert RunStore(runs_dir).list_runs()
    button(at, "sweep_delete").click()
    at.run()
    button(at, "sweep_delete_yes").click()
    at.run()
    no_failures(at)
    assert not errors(at)
    assert SweepStore(runs_dir).list_sweeps() == []
    assert RunStore(runs_dir).list_runs() == []
    assert any("Deleted sweep grid" in s.value for s in at.success)


@pytest.fixture
def served_on_localhost():
    """The address `sgdplus dashboard` serves on, for the whole app (`dashboard/app.py`
    refuses an address nobody chose); put back afterwards."""
    before = streamlit_config.get_option("server.address")
    streamlit_config.set_option("server.address", "localhost", "test")
    yield
    streamlit_config.set_option("server.address", before, "<default>")


@pytest.mark.usefixtures("served_on_localhost")
def test_open_on_train_fills_in_the_train_page(runs_dir: Path, sweep: str):
    app = AppTest.from_file(str(DASHBOARD / "app.py"), default_timeout=PAGE_TIMEOUT)
    app.run()  # the Train page, whose widgets then exist
    app.switch_page("app_pages/sweep.py")
    app.run()
    no_failures(app)
    (ranking,) = [d.value for d in app.dataframe if "rank" in d.value.columns]
    second = _label(ranking.iloc[1])
    app.selectbox(key=f"sweep_again_{sweep}-12").set_value(second)
    app.run()
    button(app, "sweep_open_train").click()
    app.run()
    no_failures(app)
    assert app.title[0].value == "Train"
    learning_rate, nesterov = float(ranking.iloc[1]["learning_rate"]), ranking.iloc[1]["nesterov"]
    assert app.number_input(key="learning_rate").value == learning_rate
    assert app.radio(key="mode").value == ("Nesterov" if nesterov == "true" else "Plain SGD")
    assert app.radio(key="batch_choice").value == "custom"
    assert app.number_input(key="custom_batch").value == 16
    assert app.number_input(key="epochs").value == 4
    assert app.selectbox(key="dataset").value == "digits"
    assert not [w.value for w in app.warning if "Session State" in w.value]
