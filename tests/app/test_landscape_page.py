"""dashboard/app_pages/landscape.py under Streamlit's AppTest: the controls and their defaults,
the landscape's suggestions, the lesson presets, and the charts' data and the results table
against `landscapes.trajectory` run here."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import streamlit as st
from streamlit import dataframe_util

from keras_sgdplus.lab import landscapes
from keras_sgdplus.lab.landscape_charts import LESSONS
from keras_sgdplus.lab.landscapes import LANDSCAPES, trajectory

LABELS = {"sgd": "Plain SGD", "momentum": "Momentum", "nesterov": "Nesterov"}
KEYS = {
    "landscape": "landscape-name",
    "rate": "landscape-rate",
    "momentum": "landscape-momentum",
    "steps": "landscape-steps",
    "start_x": "landscape-start-x",
    "start_y": "landscape-start-y",
    "methods": "landscape-methods",
    "convention": "landscape-convention",
}


def controls(at) -> dict:
    """What the controls show now."""
    return {
        "landscape": at.selectbox(key=KEYS["landscape"]).value,
        "rate": at.select_slider(key=KEYS["rate"]).value,
        "momentum": at.slider(key=KEYS["momentum"]).value,
        "steps": at.slider(key=KEYS["steps"]).value,
        "start_x": at.slider(key=KEYS["start_x"]).value,
        "start_y": at.slider(key=KEYS["start_y"]).value,
        "methods": at.multiselect(key=KEYS["methods"]).value,
        "convention": at.radio(key=KEYS["convention"]).value,
    }


def chart_datasets(at, index: int) -> list[pd.DataFrame]:
    """The datasets the page sent for its `index`-th chart (0: landscape, 1: loss per step)."""
    proto = at.get("vega_lite_chart")[index].proto
    json.loads(proto.spec)  # a valid spec
    return [
        dataframe_util.convert_arrow_bytes_to_pandas_df(dataset.data.data)
        for dataset in proto.datasets
    ]


def path_dataset(at) -> pd.DataFrame:
    (paths,) = [d for d in chart_datasets(at, 0) if "method" in d.columns]
    return paths


def assert_no_exception(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


@pytest.fixture
def landscape_page(page):
    at = page("landscape")
    assert_no_exception(at)
    return at


def test_page_renders_with_the_ravine_and_its_suggestions(landscape_page):
    at = landscape_page
    ravine = LANDSCAPES["ravine"]
    assert at.title[0].value == "Loss landscape"
    assert controls(at) == {
        "landscape": "ravine",
        "rate": ravine.learning_rate,
        "momentum": ravine.momentum,
        "steps": 200,
        "start_x": ravine.start[0],
        "start_y": ravine.start[1],
        "methods": ["sgd", "momentum", "nesterov"],
        "convention": "keras",
    }
    assert any(ravine.description == caption.value for caption in at.caption)
    assert len(at.get("vega_lite_chart")) == 2  # the landscape and the loss per step
    assert [b.label for b in at.get("download_button")] == ["SVG", "PNG"]
    assert not at.error
    for key in KEYS.values():
        assert at.session_state[key] is not None
    # Every control says what it does to the ball.
    for widget in [
        at.selectbox(key=KEYS["landscape"]),
        at.select_slider(key=KEYS["rate"]),
        *[at.slider(key=KEYS[k]) for k in ("momentum", "steps", "start_x", "start_y")],
        at.multiselect(key=KEYS["methods"]),
        at.radio(key=KEYS["convention"]),
    ]:
        assert widget.help


def test_the_rate_is_chosen_on_a_log_scale(landscape_page):
    options = [float(o) for o in landscape_page.select_slider(key=KEYS["rate"]).options]
    assert min(options) <= 1e-4
    assert max(options) >= 0.5
    ratios = np.diff(np.log10(options))
    assert np.all(ratios > 0.1)
    assert np.all(ratios < 0.25)


def test_changing_the_landscape_resets_rate_momentum_and_start(landscape_page):
    at = landscape_page
    at.select_slider(key=KEYS["rate"]).set_value(0.1)
    at.slider(key=KEYS["start_x"]).set_value(3.0)
    at.slider(key=KEYS["momentum"]).set_value(0.5)
    at.slider(key=KEYS["steps"]).set_value(50).run()
    assert_no_exception(at)
    for name in ("himmelblau", "saddle", "ravine"):
        at.selectbox(key=KEYS["landscape"]).set_value(name).run()
        assert_no_exception(at)
        landscape = LANDSCAPES[name]
        shown = controls(at)
        assert shown["rate"] == landscape.learning_rate
        assert shown["momentum"] == landscape.momentum
        assert (shown["start_x"], shown["start_y"]) == landscape.start
        assert shown["steps"] == 50  # not a landscape's setting: kept
        xmin, xmax, _ymin, _ymax = landscape.window
        start_x = at.slider(key=KEYS["start_x"])
        assert (start_x.min, start_x.max) == (xmin, xmax)
        assert any(landscape.description == caption.value for caption in at.caption)
        paths = path_dataset(at)
        assert (paths[paths["step"] == 0][["x", "y"]].to_numpy() == landscape.start).all()


@pytest.mark.parametrize("key", list(LESSONS))
def test_a_lesson_sets_the_controls(landscape_page, key):
    at = landscape_page
    lesson = LESSONS[key]
    at.selectbox(key=KEYS["landscape"]).set_value("beale").run()  # start somewhere else
    at.button(key=f"landscape-lesson-{key}").click().run()
    assert_no_exception(at)
    assert controls(at) == {
        "landscape": lesson.landscape,
        "rate": lesson.learning_rate,
        "momentum": lesson.momentum,
        "steps": lesson.steps,
        "start_x": lesson.start[0],
        "start_y": lesson.start[1],
        "methods": list(lesson.methods),
        "convention": "keras",
    }
    assert [info.value for info in at.info] == [f"**{lesson.title}.** {lesson.look_for}"]
    assert set(path_dataset(at)["method"]) == {LABELS[m] for m in lesson.methods}


def test_the_lesson_note_goes_once_a_control_moves(landscape_page):
    at = landscape_page
    at.button(key="landscape-lesson-zigzag").click().run()
    assert len(at.info) == 1
    at.slider(key=KEYS["steps"]).set_value(61).run()
    assert not at.info


def test_chart_data_and_table_match_trajectory(landscape_page):
    at = landscape_page
    at.selectbox(key=KEYS["landscape"]).set_value("himmelblau").run()
    at.select_slider(key=KEYS["rate"]).set_value(0.01)
    at.slider(key=KEYS["momentum"]).set_value(0.7)
    at.slider(key=KEYS["steps"]).set_value(40)
    at.slider(key=KEYS["start_x"]).set_value(1.0)
    at.slider(key=KEYS["start_y"]).set_value(-2.0)
    at.multiselect(key=KEYS["methods"]).set_value(["sgd", "nesterov"])
    at.radio(key=KEYS["convention"]).set_value("torch").run()
    assert_no_exception(at)
    settings = {"learning_rate": 0.01, "momentum": 0.7, "steps": 40, "start": (1.0, -2.0)}
    expected = {
        method: trajectory("himmelblau", method=method, convention="torch", **settings)
        for method in ("sgd", "nesterov")
    }

    paths = path_dataset(at)
    assert set(paths["method"]) == {"Plain SGD", "Nesterov"}
    losses = next(d for d in chart_datasets(at, 1) if "gap" in d.columns)
    table = at.dataframe[0].value
    assert list(table["Method"]) == ["Plain SGD", "Nesterov"]
    for method, frame in expected.items():
        label = LABELS[method]
        drawn = paths[paths["method"] == label].sort_values("step")
        assert list(drawn["step"]) == list(range(41))
        np.testing.assert_allclose(drawn[["x", "y", "loss"]], frame[["x", "y", "loss"]])
        per_step = losses[losses["method"] == label].sort_values("step")
        np.testing.assert_allclose(per_step["loss"], frame["loss"])
        row = table[table["Method"] == label].iloc[0]
        end = frame.iloc[-1]
        assert row["Final x"] == pytest.approx(end["x"])
        assert row["Final y"] == pytest.approx(end["y"])
        assert row["Final loss"] == pytest.approx(end["loss"])
        nearest = min(
            np.hypot(end["x"] - mx, end["y"] - my) for mx, my in LANDSCAPES["himmelblau"].minima
        )
        assert row["Distance to nearest minimum"] == pytest.approx(nearest)
        assert not row["Diverged"]


def test_a_diverged_method_gets_a_caption(landscape_page):
    at = landscape_page
    at.button(key="landscape-lesson-diverge").click().run()
    assert_no_exception(at)
    expected = trajectory("ravine", method="sgd", learning_rate=0.1, momentum=0.8, steps=100)
    step = expected.attrs["diverged_at"]
    notes = [c.value for c in at.caption if "diverged at step" in c.value]
    assert len(notes) == 1
    assert f"Plain SGD diverged at step {step}" in notes[0]
    table = at.dataframe[0].value
    assert bool(table["Diverged"].iloc[0]) is True
    assert table["Diverged at step"].iloc[0] == step
    assert len(path_dataset(at)) == len(expected)


def test_no_method_chosen_shows_the_landscape_alone(landscape_page):
    at = landscape_page
    at.multiselect(key=KEYS["methods"]).set_value([]).run()
    assert_no_exception(at)
    assert len(at.get("vega_lite_chart")) == 1
    assert any("at least one method" in info.value for info in at.info)
    assert not at.dataframe


def test_a_value_error_is_shown_not_raised(landscape_page, monkeypatch):
    at = landscape_page

    def refuse(*args, **kwargs):
        raise ValueError("`learning_rate` must be a finite number > 0. Received: learning_rate=0")

    monkeypatch.setattr(landscapes, "compare_methods", refuse)
    st.cache_data.clear()
    at.slider(key=KEYS["steps"]).set_value(17).run()
    assert_no_exception(at)
    assert [e.value for e in at.error] == [
        "`learning_rate` must be a finite number > 0. Received: learning_rate=0"
    ]
    assert not at.get("vega_lite_chart")
    st.cache_data.clear()
