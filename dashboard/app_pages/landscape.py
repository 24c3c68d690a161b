"""Loss landscape: the ball rolling in an artificial landscape.

Pick a 2-D landscape, a learning rate, a momentum, a number of steps and a start point, and
see the paths that plain SGD, momentum and Nesterov take across it: SGDPlus itself, one
`minimize` step at a time (`keras_sgdplus.lab.landscapes`). Lesson buttons set the controls to
values that show one thing each on the ravine. Charts and tables come from
`keras_sgdplus.lab.landscape_charts`; this page only lays them out.
"""

from __future__ import annotations

from typing import cast

import pandas as pd
import streamlit as st
from keras_sgdplus.dashboard.app_pages.common import image_downloads, show_altair

from keras_sgdplus.lab import landscape_charts as charts
from keras_sgdplus.lab import landscapes
from keras_sgdplus.lab.landscapes import LANDSCAPES, METHODS

STEPS_LIMIT = 1000
DEFAULT_STEPS = 200
START_STEP = 0.01
CONVENTIONS = {"keras": "Keras", "torch": "PyTorch"}

# The widgets' session-state keys (prefixed: session state is shared by all pages).
LANDSCAPE = "landscape-name"
RATE = "landscape-rate"
MOMENTUM = "landscape-momentum"
STEPS = "landscape-steps"
START_X = "landscape-start-x"
START_Y = "landscape-start-y"
SHOWN = "landscape-methods"
CONVENTION = "landscape-convention"

HELP = {
    "landscape": "The loss surface f(x, y) the ball rolls on. Choosing one resets the learning "
    "rate, the momentum and the start point to values that show what it teaches.",
    "rate": "The step length: each step moves the ball by the learning rate times the slope "
    "(w ← w - lr·g). Too small and the ball crawls; too large and it jumps over the valley, "
    "further each time, until it diverges. The choices are spaced on a log scale.",
    "momentum": "How much of its velocity the ball keeps from one step to the next "
    "(v ← μ·v - lr·g; w ← w + v). At 0 it forgets at once; near 1 it gathers speed along a "
    "valley and can roll past the minimum before it turns back. Plain SGD ignores it.",
    "steps": "How many optimizer steps each method takes from the start point.",
    "start": "Where the ball is put down, along {axis}. All methods start from the same point.",
    "methods": "Plain SGD follows the slope where it stands. Momentum is a heavy ball that "
    "gathers speed (and overshoots). Nesterov looks ahead: it takes the slope where the "
    "momentum is about to carry the ball, so it brakes earlier and overshoots less.",
    "convention": "How SGDPlus writes the momentum update: Keras (v ← μ·v - lr·g; w ← w + v) "
    "or PyTorch (b ← μ·b + g; w ← w - lr·b). With a constant learning rate, as here, both "
    "give the same path.",
}


# --- state: defaults, the landscape's suggestions and the lessons -------------------------------


def use_landscape_suggestions() -> None:
    """The chosen landscape's own learning rate, momentum and start point."""
    landscape = LANDSCAPES[st.session_state[LANDSCAPE]]
    st.session_state[RATE] = charts.nearest_learning_rate(landscape.learning_rate)
    st.session_state[MOMENTUM] = landscape.momentum
    st.session_state[START_X], st.session_state[START_Y] = landscape.start


def apply_lesson(key: str) -> None:
    """Set every control to the lesson's settings (before the widgets are drawn)."""
    lesson = charts.LESSONS[key]
    st.session_state[LANDSCAPE] = lesson.landscape
    st.session_state[RATE] = charts.nearest_learning_rate(lesson.learning_rate)
    st.session_state[MOMENTUM] = lesson.momentum
    st.session_state[STEPS] = lesson.steps
    st.session_state[START_X], st.session_state[START_Y] = lesson.start
    st.session_state[SHOWN] = list(lesson.methods)


def set_defaults() -> None:
    """First visit (or back from another page): the ravine and its suggestions."""
    state = st.session_state
    state.setdefault(LANDSCAPE, "ravine")
    landscape = LANDSCAPES[state[LANDSCAPE]]
    state.setdefault(RATE, charts.nearest_learning_rate(landscape.learning_rate))
    state.setdefault(MOMENTUM, landscape.momentum)
    state.setdefault(STEPS, DEFAULT_STEPS)
    state.setdefault(START_X, landscape.start[0])
    state.setdefault(START_Y, landscape.start[1])
    state.setdefault(SHOWN, list(METHODS))
    state.setdefault(CONVENTION, "keras")


def lesson_shown() -> charts.Lesson | None:
    """The lesson whose settings the controls hold now, if any."""
    state = st.session_state
    for lesson in charts.LESSONS.values():
        if (
            state[LANDSCAPE] == lesson.landscape
            and state[RATE] == lesson.learning_rate
            and state[MOMENTUM] == lesson.momentum
            and state[STEPS] == lesson.steps
            and (state[START_X], state[START_Y]) == lesson.start
            and set(state[SHOWN]) == set(lesson.methods)
        ):
            return lesson
    return None


@st.cache_data(show_spinner="Rolling the ball…", max_entries=128)
def rolled_paths(
    landscape: str,
    learning_rate: float,
    momentum: float,
    steps: int,
    start: tuple[float, float],
    convention: str,
) -> dict[str, pd.DataFrame]:
    """`compare_methods`: the paths of plain SGD, momentum and Nesterov, by method."""
    return landscapes.compare_methods(
        landscape, learning_rate, momentum, steps, start, convention=convention
    )


# --- the page ----------------------------------------------------------------------------------

set_defaults()

st.title("Loss landscape")
st.caption(
    "A ball rolling in an artificial landscape: SGDPlus takes one step at a time down a 2-D "
    "loss f(x, y), as plain SGD, with momentum and with Nesterov momentum, all from the same "
    "start. Brighter is higher; the stars are the minima."
)

st.markdown("**Lessons** on the ravine: each button sets the controls to show one thing.")
for column, preset in zip(st.columns(len(charts.LESSONS)), charts.LESSONS.values(), strict=True):
    column.button(
        preset.title,
        key=f"landscape-lesson-{preset.key}",
        on_click=apply_lesson,
        args=(preset.key,),
        help=preset.look_for,
        width="stretch",
    )

controls, view = st.columns([1, 2.6], gap="large")

with controls:
    name = cast(  # never None: the widget always holds one of the options
        str,
        st.selectbox(
            "Landscape",
            list(LANDSCAPES),
            format_func=lambda key: LANDSCAPES[key].title,
            key=LANDSCAPE,
            on_change=use_landscape_suggestions,
            help=HELP["landscape"],
        ),
    )
    landscape = LANDSCAPES[name]
    st.caption(landscape.description)
    learning_rate = st.select_slider(
        "Learning rate",
        options=charts.LEARNING_RATES,
        format_func=lambda rate: f"{rate:g}",
        key=RATE,
        help=HELP["rate"],
    )
    momentum = st.slider("Momentum μ", 0.0, 0.99, step=0.01, key=MOMENTUM, help=HELP["momentum"])
    steps = st.slider("Steps", 1, STEPS_LIMIT, key=STEPS, help=HELP["steps"])
    xmin, xmax, ymin, ymax = landscape.window
    start_x = st.slider(
        "Start x",
        float(xmin),
        float(xmax),
        step=START_STEP,
        format="%.2f",
        key=START_X,
        help=HELP["start"].format(axis="x"),
    )
    start_y = st.slider(
        "Start y",
        float(ymin),
        float(ymax),
        step=START_STEP,
        format="%.2f",
        key=START_Y,
        help=HELP["start"].format(axis="y"),
    )
    shown = st.multiselect(
        "Methods",
        list(METHODS),
        format_func=lambda method: charts.METHOD_LABELS[method],
        key=SHOWN,
        help=HELP["methods"],
    )
    convention = cast(
        str,
        st.radio(
            "Update convention",
            list(CONVENTIONS),
            format_func=lambda key: CONVENTIONS[key],
            key=CONVENTION,
            horizontal=True,
            help=HELP["convention"],
        ),
    )

with view:
    lesson = lesson_shown()
    if lesson is not None:
        st.info(f"**{lesson.title}.** {lesson.look_for}")
    paths: dict[str, pd.DataFrame] | None
    try:
        paths = rolled_paths(name, learning_rate, momentum, steps, (start_x, start_y), convention)
        chart = charts.landscape_chart(landscape, paths, shown)
    except ValueError as error:
        st.error(str(error))
        paths = None
    if paths is not None:
        if not shown:
            st.info("Choose at least one method to see the path it takes.")
        show_altair(chart, key="landscape-chart")
        for note in charts.divergence_notes(paths, landscape, shown):
            st.caption(f"⚠️ {note}")
        image_downloads(chart, f"landscape-{name}", key="landscape-image")
        if shown:
            show_altair(charts.loss_chart(landscape, paths, shown), key="landscape-loss-chart")
            st.caption(
                "The height above the minimum, f - f_min, on a log axis (it falls by orders "
                "of magnitude as a method converges)."
                if landscape.minima
                else "This landscape has no minimum: the loss itself, on a symmetric log axis "
                "(linear near 0, logarithmic beyond, on both signs)."
            )

if paths is not None and shown:
    st.markdown("**Where each method got to**")
    st.dataframe(
        charts.results_table(paths, landscape, shown),
        hide_index=True,
        column_config={
            "Final x": st.column_config.NumberColumn(format="%.4g"),
            "Final y": st.column_config.NumberColumn(format="%.4g"),
            "Final loss": st.column_config.NumberColumn(format="scientific"),
            "Distance to nearest minimum": st.column_config.NumberColumn(format="scientific"),
        },
    )
    st.caption(
        f"“Within tolerance at step”: the first step at which the ball is within "
        f"{charts.TOLERANCE:g} of a minimum (None if it never is). A diverged run stops "
        "at the step that left the bounds; its last point is the last one inside."
    )
