"""Landscape of a run: the loss surface around a trained run's final weights with the path its
weights took, and the loss on the straight line from its initial to its final weights.

Choose one run, or two to see side by side on one colour scale (online against full batch,
plain SGD against momentum). Each landscape is computed by a worker process
(`lab.jobs.start_landscape`, `lab.run_landscape`) and stored in the run's folder; this page
only starts it, follows its progress and draws what is stored (`lab.run_landscape_charts`).
"""

from __future__ import annotations

from typing import cast

import streamlit as st
from keras_sgdplus.dashboard.app_pages.common import image_downloads, run_store, show_altair

from keras_sgdplus.lab import compare, jobs
from keras_sgdplus.lab import run_landscape_charts as charts
from keras_sgdplus.lab.run_landscape import DEFAULT_RESOLUTION, DEFAULT_SAMPLES, LandscapeOptions
from keras_sgdplus.lab.run_landscape_views import (
    LandscapeState,
    drawable_runs,
    landscape_state,
    options_note,
)

DIRECTIONS = {
    "pca": "The path's plane (PCA)",
    "random": "Random directions (filter-normalised)",
}
HELP = {
    "runs": "Runs that ended (completed, stopped or interrupted) and kept weight snapshots: "
    "every run trained since snapshots were added keeps up to 200, spread over its steps. "
    "Choose two to compare them on one colour scale.",
    "directions": "The path's plane: the two directions along which the weight snapshots "
    "vary most (their first two principal components), so the path you see is as close to "
    "the real one as a plane allows; the share of the variance each explains is shown. "
    "Random: two Gaussian directions, each filter scaled to the norm of the weights' filter "
    "(Li et al. 2018), the view used to compare sharp and flat minima.",
    "resolution": "Grid points along each axis; the loss is computed at every point.",
    "fit_path": "Let the grid cover the whole path (with a margin). Off: a square window "
    "of the span below around the final weights.",
    "span": "The grid reaches from -span to +span along both directions (1 = as far as the "
    "weights' own norm, filter by filter, for random directions).",
    "samples": "The loss is the mean over a fixed, seeded subset of the training data of "
    "this size (all of it when smaller).",
}


def chosen_options() -> LandscapeOptions | None:
    """The options from the controls; None (with the message shown) when they are refused."""
    directions = cast(  # never None: the radio always holds one of the options
        str,
        st.radio(
            "Directions",
            list(DIRECTIONS),
            format_func=DIRECTIONS.__getitem__,
            key="run-landscape-directions",
            horizontal=True,
            help=HELP["directions"],
        ),
    )
    left, middle, right = st.columns(3)
    resolution = left.slider(
        "Grid points per axis",
        11,
        101,
        DEFAULT_RESOLUTION,
        step=2,
        key="run-landscape-resolution",
        help=HELP["resolution"],
    )
    samples = middle.number_input(
        "Training samples",
        min_value=1,
        max_value=100_000,
        value=DEFAULT_SAMPLES,
        key="run-landscape-samples",
        help=HELP["samples"],
    )
    span: float | None = None
    fit = directions == "pca" and right.checkbox(
        "Fit the path", value=True, key="run-landscape-fit", help=HELP["fit_path"]
    )
    if not fit:
        span = right.number_input(
            "Span",
            min_value=0.01,
            max_value=100.0,
            value=1.0,
            key="run-landscape-span",
            help=HELP["span"],
        )
    try:
        return LandscapeOptions(directions, int(resolution), span, int(samples))
    except ValueError as error:
        st.error(str(error))
        return None


def start(run_id: str, options: LandscapeOptions) -> None:
    try:
        jobs.start_landscape(run_store().root, run_id, options.to_dict())
    except (ValueError, RuntimeError) as error:
        st.session_state["run-landscape-message"] = str(error)


@st.fragment(run_every=1.0)
def follow(run_ids: list[str], options: LandscapeOptions) -> None:
    """The progress of the landscapes being computed; the page redraws once they end."""
    store = run_store()
    states = {run_id: landscape_state(store, run_id, options) for run_id in run_ids}
    computing = {run_id: s for run_id, s in states.items() if s.kind == "computing"}
    for run_id, state in computing.items():
        total = f" of {state.total}" if state.total else ""
        st.progress(state.fraction, text=f"Run {run_id}: {state.done}{total} points computed")
    if not computing:
        st.rerun()


def status_line(label: str, state: LandscapeState) -> None:
    if state.kind == "failed":
        st.error(f"The landscape of {label} could not be computed: {state.error}")
    elif state.kind == "interrupted":
        st.warning(f"The computation for {label} ended before it finished. Compute it again.")
    elif state.kind == "other" and state.info is not None:
        st.info(
            f"Shown for {label}: the landscape computed with other settings "
            f"({options_note(state.info)}). Compute it again for these."
        )


# --- the page ----------------------------------------------------------------------------------

st.title("Landscape of a run")
st.caption(
    "The ball rolling in the landscape the parameters and the data define: the loss around a "
    "trained network's final weights, with the path its weights took to get there."
)

store = run_store()
runs = drawable_runs(store, store.list_runs())
if not runs:
    st.info(
        "No run to draw yet: train one on the Train page (or with `sgdplus train`); once it "
        "ends, its landscape can be computed here."
    )
    st.stop()
labels = compare.run_labels(runs)
chosen = st.multiselect(
    "Runs (one, or two side by side)",
    [run.run_id for run in runs],
    default=[runs[0].run_id],
    format_func=labels.__getitem__,
    max_selections=2,
    key="run-landscape-runs",
    help=HELP["runs"],
)
options = chosen_options()
if not chosen or options is None:
    st.stop()

message = st.session_state.pop("run-landscape-message", None)
if message:
    st.error(message)
states = {run_id: landscape_state(store, run_id, options) for run_id in chosen}
to_compute = [run_id for run_id, state in states.items() if state.kind not in ("done", "computing")]
if to_compute:
    label = "Compute the landscape" if len(to_compute) == 1 else "Compute both landscapes"
    if st.button(label, type="primary", key="run-landscape-compute"):
        for run_id in to_compute:
            start(run_id, options)
        st.rerun()
if any(state.kind == "computing" for state in states.values()):
    follow(chosen, options)

shown = {run_id: s for run_id, s in states.items() if s.arrays is not None and s.info is not None}
for run_id, state in states.items():
    status_line(labels[run_id], state)
if not shown:
    st.stop()

results = [state.arrays for state in shown.values() if state.arrays is not None]
domain = charts.shared_domain(results)
columns = st.columns(len(shown))
for column, (run_id, state) in zip(columns, shown.items(), strict=True):
    assert state.arrays is not None
    assert state.info is not None
    with column:
        surface = charts.surface_chart(state.arrays, title=labels[run_id], domain=domain)
        show_altair(surface, key=f"run-landscape-surface-{run_id}")
        st.caption(charts.describe(state.arrays, state.info))
        if charts.finite_share(state.arrays) < 1:
            st.caption("⚠️ The loss is not finite at some grid points (left blank).")
        image_downloads(surface, f"landscape-{run_id}", key=f"run-landscape-image-{run_id}")
        line = charts.line_chart(state.arrays, title="From the initial to the final weights")
        show_altair(line, key=f"run-landscape-line-{run_id}")
        st.caption(
            "The loss on the straight line w0 + t·(w* - w0) (Goodfellow et al. 2015), on the "
            "training and the validation subsets."
        )
        image_downloads(line, f"landscape-line-{run_id}", key=f"run-landscape-line-img-{run_id}")
if len(shown) == 2:
    st.caption("Both surfaces share one colour scale, so their heights compare directly.")
