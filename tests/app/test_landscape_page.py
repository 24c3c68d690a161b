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

from keras_sgdplus.lab import landscapes, momentum_rates
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
STEP = "landscape-step"


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
    (paths,) = [
        d for d in chart_datasets(at, 0) if "method" in d.columns and "stopped" not in d.columns
    ]
    return paths


def click_chart(at, index: int, selection: str, point: dict) -> None:
    """Reruns the page as after a click on chart `index`: the chart's widget state holds the
    point selection `selection` with the clicked cell's fields, as Streamlit's frontend sends
    it (a JSON string `{"selection": {name: [point]}}`). AppTest has no click for charts,
    so the state goes in through its run with the other widgets' states."""
    proto = at.get("vega_lite_chart")[index].proto
    assert selection in proto.selection_mode
    states = at._tree.get_widget_states()
    state = states.widgets.add()
    state.id = proto.id
    state.string_value = json.dumps({"selection": {selection: [point]}})
    at._run(states)


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
    # the landscape, the loss per step and the rate map of "Why momentum works"
    assert len(at.get("vega_lite_chart")) == 3
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
    assert np.all(ratios > 0.04)  # the ravine's optimal 1/9 sits 0.046 above 0.1
    assert np.all(ratios < 0.13)
    # The optimum is among them: its label shows it to 4 digits.
    assert "0.1111" in options_labels(landscape_page)


def options_labels(at) -> list[str]:
    return list(at.select_slider(key=KEYS["rate"]).proto.options)


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
    # The surface and the rate map; no loss per step.
    assert [c.key for c in at.get("vega_lite_chart")] == [
        "landscape-chart",
        "landscape-momentum-map",
    ]
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
    # No surface (the rate map does not need the paths).
    assert [c.key for c in at.get("vega_lite_chart")] == ["landscape-momentum-map"]
    st.cache_data.clear()


# --- why momentum works ------------------------------------------------------------------------


def test_the_optimal_pair_button_sets_the_sliders_to_polyaks_pair(landscape_page):
    at = landscape_page
    at.button(key="landscape-optimal-pair").click().run()
    assert_no_exception(at)
    # α* = (2 / (√1 + √25))², β* = ((√25 - √1) / (√25 + √1))²: exactly, not a neighbour.
    assert at.select_slider(key=KEYS["rate"]).value == (2 / (1 + 5)) ** 2
    assert at.slider(key=KEYS["momentum"]).value == ((5 - 1) / (5 + 1)) ** 2
    # The map's "you" marker sits on the optimum's star; the paths roll with the pair.
    marks = [d for d in chart_datasets(at, 2) if "label" in d.columns and "rate" in d.columns]
    labelled = {row["label"]: row for frame in marks for _, row in frame.iterrows()}
    assert labelled["you"]["learning_rate"] == pytest.approx(1 / 9)
    assert labelled["you"]["momentum"] == pytest.approx(4 / 9)
    assert labelled["you"]["rate"] == pytest.approx(2 / 3)
    paths = path_dataset(at)
    drawn = paths[paths["method"] == "Momentum"].sort_values("step")
    expected = trajectory(
        "ravine", method="momentum", learning_rate=1 / 9, momentum=4 / 9, steps=200
    )
    np.testing.assert_allclose(drawn[["x", "y"]], expected[["x", "y"]], rtol=1e-9, atol=1e-12)
    # The note under the button gives the optimum's rate.
    assert any("0.667 per step" in m.value for m in at.markdown)


def test_a_click_on_the_rate_map_sets_learning_rate_and_momentum(landscape_page):
    at = landscape_page
    # The cell centred on α = 0.05125, β = 0.73 (the map's cells are 0.0025 by 0.02).
    click_chart(at, 2, "momentum_pair", {"learning_rate": 0.05125, "momentum": 0.73})
    assert_no_exception(at)
    assert at.select_slider(key=KEYS["rate"]).value == 0.05  # the nearest option
    assert at.slider(key=KEYS["momentum"]).value == 0.73
    # In the divergence region, past every option but the largest on the map's scale.
    click_chart(at, 2, "momentum_pair", {"learning_rate": 0.16875, "momentum": 0.07})
    assert at.select_slider(key=KEYS["rate"]).value == 0.15
    assert at.slider(key=KEYS["momentum"]).value == 0.07
    rate = momentum_rates.convergence_rate(0.15, 0.07, (1.0, 25.0))
    assert rate > 1
    assert any(f"grows by a factor {rate:.3f}" in m.value for m in at.markdown)
    # An empty selection (a click beside the cells) changes nothing.
    click_chart_empty = at._tree.get_widget_states()
    state = click_chart_empty.widgets.add()
    state.id = at.get("vega_lite_chart")[2].proto.id
    state.string_value = json.dumps({"selection": {"momentum_pair": []}})
    at._run(click_chart_empty)
    assert_no_exception(at)
    assert (at.select_slider(key=KEYS["rate"]).value, at.slider(key=KEYS["momentum"]).value) == (
        0.15,
        0.07,
    )


def test_a_click_on_the_surface_sets_the_start_point(landscape_page):
    at = landscape_page
    ravine = LANDSCAPES["ravine"]
    xmin, xmax, _ymin, _ymax = ravine.window
    cell_x = xmin + 41 * (xmax - xmin) / 63  # a cell centre of the 64 x 64 heat map
    click_chart(at, 0, "start_point", {"x": cell_x, "y": -1.2380952380952381})
    assert_no_exception(at)
    assert at.slider(key=KEYS["start_x"]).value == round(cell_x, 2)
    assert at.slider(key=KEYS["start_y"]).value == -1.24
    paths = path_dataset(at)
    assert (paths[paths["step"] == 0][["x", "y"]].to_numpy() == (round(cell_x, 2), -1.24)).all()
    # A point past the window's edge is clipped to it.
    click_chart(at, 0, "start_point", {"x": 10.2, "y": 3.4})
    assert (at.slider(key=KEYS["start_x"]).value, at.slider(key=KEYS["start_y"]).value) == (
        xmax,
        ravine.window[3],
    )


def ball_layer_data(at) -> pd.DataFrame:
    """The balls drawn on the surface: the dataset with a `stopped` column."""
    (balls,) = [d for d in chart_datasets(at, 0) if "stopped" in d.columns]
    return balls


def test_the_step_slider_moves_the_balls_along_the_paths(landscape_page):
    at = landscape_page
    at.slider(key=KEYS["steps"]).set_value(40).run()
    assert at.slider(key=STEP).value == 0
    settings = {"learning_rate": 0.03, "momentum": 0.8, "steps": 40}
    expected = {m: trajectory("ravine", method=m, **settings) for m in LABELS}
    for k in (0, 13, 40):
        at.slider(key=STEP).set_value(k).run()
        assert_no_exception(at)
        balls = ball_layer_data(at)
        assert list(balls["method"]) == list(LABELS.values())
        for method, label in LABELS.items():
            ball = balls[balls["method"] == label].iloc[0]
            assert ball["step"] == k
            np.testing.assert_allclose(
                [ball["x"], ball["y"]], expected[method][["x", "y"]].iloc[k], rtol=1e-12
            )
    # Fewer steps than the ball had rolled: it stops at the last one.
    at.slider(key=KEYS["steps"]).set_value(20).run()
    assert_no_exception(at)
    assert at.slider(key=STEP).value == 20
    assert set(ball_layer_data(at)["step"]) == {20}


def test_a_diverged_ball_stays_at_its_last_point(landscape_page):
    at = landscape_page
    at.button(key="landscape-lesson-diverge").click().run()
    at.slider(key=STEP).set_value(100).run()
    assert_no_exception(at)
    expected = trajectory("ravine", method="sgd", learning_rate=0.1, momentum=0.8, steps=100)
    (ball,) = ball_layer_data(at).itertuples()
    assert ball.stopped
    assert ball.step == len(expected) - 1
    assert (ball.x, ball.y) == (expected["x"].iloc[-1], expected["y"].iloc[-1])


def test_the_map_is_drawn_for_the_ravine_only(landscape_page):
    at = landscape_page
    at.selectbox(key=KEYS["landscape"]).set_value("himmelblau").run()
    assert_no_exception(at)
    assert len(at.get("vega_lite_chart")) == 2
    assert any("Choose that landscape" in c.value for c in at.caption)
    assert not [b for b in at.button if b.key == "landscape-optimal-pair"]
