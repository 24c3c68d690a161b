"""Loss landscape: the ball rolling in an artificial landscape.

Pick a 2-D landscape, a learning rate, a momentum, a number of steps and a start point (or
click the surface), and see the paths that plain SGD, momentum and Nesterov take across it:
SGDPlus itself, one `minimize` step at a time (`keras_sgdplus.lab.landscapes`); "Show step k"
puts each method's ball where it is after k steps. Lesson buttons set the controls to values
that show one thing each on the ravine. "Why momentum works" maps momentum's convergence
rate on the ravine over (learning rate, momentum) after Goh (Distill, 2017): a click on the
map sets both, a button sets the optimal pair. Charts and tables come from
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
STEP = "landscape-step"
CHART = "landscape-chart"  # the surface; its state holds the click selection
MAP = "landscape-momentum-map"  # the rate map; likewise

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
    "step": "Puts each method's ball where it is after k steps (a diverged path's ball stays "
    "at its last point inside the bounds). Slide it to watch the balls roll.",
    "optimal": "Sets the learning rate to \N{GREEK SMALL LETTER ALPHA}* = (2 / (√λ1 + √λn))² "
    "= 1/9 and the momentum to "
    "β* = ((√λn - √λ1) / (√λn + √λ1))² = 4/9, with λ1 = 1 and λn = 25 the ravine's "
    "curvatures: the fastest heavy-ball momentum there is on this quadratic (Polyak, 1964).",
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


def use_clicked_start() -> None:
    """A click on the surface: the start point there, clipped to the window and rounded to the
    start sliders' step (a click beside the cells changes nothing)."""
    selection = st.session_state[CHART].selection
    point = charts.clicked_point(selection, charts.START_SELECTION, ("x", "y"))
    if point is not None:
        st.session_state[START_X], st.session_state[START_Y] = charts.start_from_click(
            st.session_state[LANDSCAPE], point[0], point[1], step=START_STEP
        )


def use_clicked_pair() -> None:
    """A click on the rate map: the nearest learning rate and momentum the controls allow."""
    selection = st.session_state[MAP].selection
    pair = charts.clicked_point(selection, charts.MAP_SELECTION, ("learning_rate", "momentum"))
    if pair is not None:
        st.session_state[RATE], st.session_state[MOMENTUM] = charts.pair_from_click(
            pair[0], pair[1]
        )


def use_optimal_pair() -> None:
    """The ravine's optimal learning rate and momentum (one of the rate options exactly)."""
    st.session_state[RATE] = charts.RAVINE_OPTIMUM.learning_rate
    st.session_state[MOMENTUM] = charts.RAVINE_OPTIMUM.momentum


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
    state.setdefault(STEP, 0)


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
        format_func=lambda rate: f"{rate:.4g}",
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
    if st.session_state[STEP] > steps:  # fewer steps than the ball had rolled
        st.session_state[STEP] = steps
    step = st.slider("Show step k", 0, steps, key=STEP, help=HELP["step"])
    paths: dict[str, pd.DataFrame] | None
    try:
        paths = rolled_paths(name, learning_rate, momentum, steps, (start_x, start_y), convention)
        chart = charts.landscape_chart(landscape, paths, shown, step=step, select_start=True)
    except ValueError as error:
        st.error(str(error))
        paths = None
    if paths is not None:
        if not shown:
            st.info("Choose at least one method to see the path it takes.")
        st.altair_chart(
            chart,
            width="stretch",
            key=CHART,
            on_select=use_clicked_start,
            selection_mode=charts.START_SELECTION,
        )
        st.caption(
            f"Click the surface to put the ball down there. The large dots are the balls "
            f"after {step} of {steps} steps."
        )
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

st.subheader("Why momentum works")
if name != "ravine":
    st.caption(
        "This part maps momentum on the elongated ravine, a quadratic whose curvatures are "
        "known (1 along its floor, 25 across it). Choose that landscape to see it."
    )
else:
    chart_column, side = st.columns([2.6, 1], gap="large")
    with chart_column:
        st.altair_chart(
            charts.momentum_map_chart(learning_rate, momentum),
            width="stretch",
            key=MAP,
            on_select=use_clicked_pair,
            selection_mode=charts.MAP_SELECTION,
        )
    with side:
        st.markdown(charts.momentum_note(learning_rate, momentum))
        st.button(
            "Set the optimal pair",
            key="landscape-optimal-pair",
            on_click=use_optimal_pair,
            help=HELP["optimal"],
            width="stretch",
        )
        st.caption("Click the map to set the learning rate and the momentum there.")
    st.caption(
        "After Goh, “Why Momentum Really Works” (Distill, 2017). Each cell is how fast heavy-"
        "ball momentum (the Momentum path above; plain SGD is the bottom row, momentum 0) "
        "closes in on the minimum: the factor by which the distance shrinks per step once "
        "the start is forgotten, the slower of the two directions. Along each direction the "
        "ball either slides in without turning back (monotonic decrease), spirals in with "
        "ripples (the rate is then √momentum, whatever the learning rate), flips across the "
        "minimum every step (oscillation), or is thrown out (divergence, grey). The lines are "
        "where these regions meet: dashed for the floor (curvature 1), solid across it "
        "(curvature 25). The best pair (the star) balances the two directions: the floor "
        "just too slow to ripple, the walls just too fast."
    )
