"""What the pages share: the run store, the training jobs of this server, and the curve views.

Thin Streamlit over `keras_sgdplus.lab`: no arithmetic and no file access here.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import pandas as pd
import streamlit as st

from keras_sgdplus.lab import charts, run_queue
from keras_sgdplus.lab.jobs import TrainingJob, resume_training
from keras_sgdplus.lab.runs import RunStore, default_runs_dir

HELP = {
    "x_axis": "What the curves are drawn against: optimizer steps, epochs (fractional for "
    "batches), training samples seen so far, or seconds since training started.",
    "log_scale": "A log loss axis shows the late, slow part of training, where a linear axis "
    "is flat.",
    "smoothing": "An exponential moving average over the batch losses, debiased at the start "
    "(as TensorBoard's). Batch losses are noisy because each batch is a small random sample; "
    "0 shows them as they are.",
    "show_raw": "Draw the unsmoothed batch losses faintly behind the smoothed line.",
}


SIDE_BY_SIDE = "runs_side_by_side"


def flash(key: str, message: str) -> None:
    """Keeps a message under the page's `key`, to show after the rerun that follows an
    action (`show_flash`)."""
    st.session_state[key] = message


def show_flash(key: str) -> None:
    """Shows, once, the message `flash` kept under `key`."""
    message = st.session_state.pop(key, None)
    if message:
        st.success(message)


def queue_setting() -> None:
    """The sidebar's "Runs at once per device", on every page (`dashboard/app.py`): a run
    started or continued while others train waits its turn (`lab.run_queue`)."""
    st.sidebar.number_input(
        "Runs at once per device",
        min_value=1,
        max_value=run_queue.MAX_SIDE_BY_SIDE,
        value=1,
        key=SIDE_BY_SIDE,
        help="A run started while others train on the same device (the CPU, or the GPU) "
        "waits its turn, first come first served. Raise this to let that many train side "
        "by side: they share the CPU's cores or the GPU's memory, each going slower.",
    )


def side_by_side() -> int:
    """How many runs may train at once per device (`queue_setting`)."""
    return int(st.session_state.get(SIDE_BY_SIDE, 1))


def run_store() -> RunStore:
    """The store of `$SGDPLUS_RUNS_DIR`, else `./saved_runs` (created on first use)."""
    return RunStore(default_runs_dir())


@st.cache_resource
def training_jobs() -> dict[str, TrainingJob]:
    """The workers this server started, by run id (shared by all sessions), so that finished
    workers are reaped (`wait`) and none is left a zombie."""
    return {}


def reap_finished_jobs() -> None:
    jobs = training_jobs()
    for run_id, job in list(jobs.items()):
        if not job.alive:
            job.wait(0)
            jobs.pop(run_id, None)


def show_altair(chart: Any, key: str | None = None) -> None:
    st.altair_chart(chart, width="stretch", key=key)


def image_downloads(chart: Any, stem: str, key: str) -> None:
    """SVG and PNG download buttons for a chart; rendered only when clicked."""
    with st.container(horizontal=True):
        for fmt in charts.IMAGE_FORMATS:
            st.download_button(
                fmt.upper(),
                data=functools.partial(charts.chart_image, chart, fmt),
                file_name=f"{stem}.{fmt}",
                mime=charts.IMAGE_FORMATS[fmt],
                key=f"{key}-{fmt}",
                on_click="ignore",
                icon=":material/download:",
                help=f"Download this chart as {fmt.upper()}.",
            )


def curve_controls(key: str) -> dict:
    """The chart options row; returns x_axis, log_scale, smoothing and show_raw."""
    axis, scale, smoothing, raw = st.columns([2, 1.3, 2, 1.3])
    return {
        "x_axis": axis.selectbox(
            "x axis",
            list(charts.X_AXES),
            format_func=lambda axis: charts.X_AXES[axis],
            key=f"{key}-x",
            help=HELP["x_axis"],
        ),
        "log_scale": scale.toggle("Log loss axis", key=f"{key}-log", help=HELP["log_scale"]),
        "smoothing": smoothing.slider(
            "Smoothing",
            0.0,
            0.99,
            0.6,
            0.01,
            key=f"{key}-smooth",
            help=HELP["smoothing"],
        ),
        "show_raw": raw.toggle("Raw batches", True, key=f"{key}-raw", help=HELP["show_raw"]),
    }


def curve_views(
    batches: Mapping[str, pd.DataFrame],
    epochs: Mapping[str, pd.DataFrame],
    options: dict,
    key: str,
    downloads: bool = False,
    placeholders: bool = False,
) -> None:
    """The mini-batch view, the epoch-averaged view (loss, and accuracy where there is one)
    and the learning rate per step, for one run or overlaid for several (keyed by label).
    `placeholders` (a live run): curves with nothing recorded yet are drawn as empty charts
    (`charts.placeholder_curves`), which the first data fills in."""
    x_axis = options["x_axis"]
    if placeholders:
        batches = charts.placeholder_curves(batches, "batches")
        epochs = charts.placeholder_curves(epochs, "epochs")
    have_batches = {label: frame for label, frame in batches.items() if len(frame) or placeholders}
    have_epochs = {label: frame for label, frame in epochs.items() if len(frame) or placeholders}
    mini, averaged = st.columns(2)
    with mini:
        st.markdown("**Mini-batch view**")
        if have_batches:
            data = charts.batch_curve_data(have_batches, x_axis, options["smoothing"])
            chart: Any = charts.batch_loss_chart(
                data, options["log_scale"], show_raw=options["show_raw"], x_axis=x_axis
            )
            show_altair(chart, key=f"{key}-batch-chart")
            if downloads:
                image_downloads(chart, "minibatch-loss", f"{key}-batch-img")
        else:
            st.info("No batch has finished yet.")
    with averaged:
        st.markdown("**Epoch-averaged view**")
        if have_epochs:
            data = charts.epoch_curve_data(have_epochs, x_axis, batches=have_batches or None)
            chart = charts.epoch_chart(data, options["log_scale"], "loss", x_axis=x_axis)
            show_altair(chart, key=f"{key}-epoch-chart")
            if downloads:
                image_downloads(chart, "epoch-loss", f"{key}-epoch-img")
        else:
            st.info("No epoch has finished yet.")
    if not have_batches:
        return
    rate_column, metric_column = st.columns(2)
    with rate_column:
        chart = charts.learning_rate_chart(have_batches, x_axis)
        show_altair(chart, key=f"{key}-lr-chart")
        if downloads:
            image_downloads(chart, "learning-rate", f"{key}-lr-img")
    if have_epochs:
        data = charts.epoch_curve_data(have_epochs, x_axis, batches=have_batches)
        extra = [metric for metric in charts.metrics_in(data) if metric != "loss"]
        with metric_column:
            for metric in extra:
                chart = charts.epoch_chart(data, False, metric, x_axis=x_axis)
                show_altair(chart, key=f"{key}-{metric}-chart")
                if downloads:
                    image_downloads(chart, metric, f"{key}-{metric}-img")


CONTINUABLE = ("stopped", "interrupted", "completed")


def continue_controls(
    store: RunStore, run_id: str, status: str, config: dict, summary: dict, label: str, key: str
) -> bool:
    """Continue a stopped or interrupted run from its checkpoint, or extend a completed one,
    in a worker (`jobs.resume_training`): the same run goes on. True once it has started."""
    if status not in CONTINUABLE:
        return False
    planned = int(config.get("epochs", 1))
    done = int(summary.get("epochs_completed") or 0)
    epochs = st.number_input(
        "Epochs in all",
        min_value=max(done, 1),
        value=max(planned + 5 if status == "completed" else planned, done, 1),
        key=f"{key}-continue-epochs-{run_id}",
        help="Where the run ends: its own epochs to finish it, more to extend it.",
    )
    if not st.button(
        "Continue training",
        key=f"{key}-continue",
        help="Goes on from the last whole epoch it saved, in the same run, on the same backend.",
    ):
        return False
    try:
        job = resume_training(store, run_id, int(epochs), side_by_side=side_by_side())
        job.run_id(timeout=180)
    except (ValueError, RuntimeError, TimeoutError) as error:
        st.error(f"Run {label} did not continue: {error}")
        return False
    training_jobs()[run_id] = job
    return True
