"""Sweeps: a grid of runs over a few settings and seeds, started here, read at a glance.

Thin Streamlit over `keras_sgdplus.lab`: the spec from `lab.sweeps` (through
`sweep_results.spec_from_texts`), the sweep runs in its own coordinator process
(`lab.sweep_runner.start_sweep`), and this page reads its results from the run store
(`lab.sweep_results`) and draws them (`lab.sweep_charts`).
"""

from __future__ import annotations

import os
from typing import Any

import pandas as pd
import streamlit as st
from keras_sgdplus.dashboard.app_pages import common

from keras_sgdplus.lab import config as run_config
from keras_sgdplus.lab import datasets, sweep_charts, sweep_results
from keras_sgdplus.lab.runs import RunStore, RunStoreError
from keras_sgdplus.lab.sweeps import SWEEP_STATUSES, SweepStore

CHOSEN = "sweep_chosen"  # the sweep shown below the form
CONFIRM = "sweep_confirm_delete"
FLASH = "sweep_flash"
REFRESH_S = 3  # how often a running sweep's panel is read again
TRAIN_PAGE = "app_pages/train.py"
HELP = {
    "values": "One value fixes the setting; several, separated by commas, sweep it. Number "
    "settings also take a range START:STOP:N (N values evenly spaced, ends included) or "
    "START:STOP:Nlog (evenly spaced in log): 1e-3:1:4log is 0.001, 0.01, 0.1, 1.",
    "seeds": "A count (3: seeds 0, 1, 2) or a list (0,5,7). Each configuration trains once per "
    "seed; the results pool the seeds (mean and sample standard deviation).",
    "cluster": "Empty: the runs train on this machine, one worker process per core. A Dask "
    "scheduler's address (tcp://host:8786, started with `dask scheduler` and joined by `dask "
    "worker ADDRESS` on each machine): the runs train there, into this runs folder, which "
    "must be the same path on every machine.",
    "heatmap": sweep_results.HEATMAP_RULE,
    "band": "min-max: the band spans the seeds' lowest and highest value at each step; std: "
    "the mean plus and minus one sample standard deviation across seeds.",
}
#: The swept settings' text fields: (label, default).
AXIS_FIELDS = {
    "learning_rate": ("Learning rate", "0.01,0.1"),
    "momentum": ("Momentum", "0,0.9"),
    "nesterov": ("Nesterov (true/false)", "false"),
    "batch_size": ("Batch size (a number, online, full)", "32"),
    "schedule": ("Schedule (" + ", ".join(run_config.SCHEDULES) + ")", "constant"),
    "decay": ("Decay (time_decay's)", "0.001"),
}


def sweep_runner() -> Any:
    """`lab.sweep_runner`, imported when a button needs it."""
    from keras_sgdplus.lab import sweep_runner as runner

    return runner


# --- a new sweep -------------------------------------------------------------------------------


def pick_fixed() -> tuple[dict, dict]:
    """The settings every run shares; returns the base config's fields and the data's
    facts (task, input shape)."""
    data_column, model_column, run_column = st.columns(3, gap="medium")
    with data_column:
        st.markdown("**Data**")
        name = st.selectbox("Dataset", list(datasets.DATASETS), key="sweep_dataset")
        info = datasets.DATASETS[str(name)]
        st.caption(f"{info.description} {info.size:,} samples, {info.task}.")
        split = st.slider("Validation split", 0.05, 0.5, 0.2, 0.05, key="sweep_split")
        standardize = st.checkbox("Standardize inputs", True, key="sweep_standardize")
    with model_column:
        st.markdown("**Model**")
        kind = st.selectbox("Model", run_config.MODEL_KINDS, key="sweep_model_kind")
        depth = st.slider("Hidden layers", 0, 8, 1, key="sweep_depth")
        width = st.select_slider("Width", [4, 8, 16, 32, 64, 128, 256], 32, key="sweep_width")
        activation = st.selectbox("Activation", run_config.ACTIVATIONS, key="sweep_activation")
    with run_column:
        st.markdown("**Runs**")
        epochs = st.number_input("Epochs", 1, 10000, 5, key="sweep_epochs")
        convention = st.radio(
            "Convention", run_config.CONVENTIONS, horizontal=True, key="sweep_convention"
        )
        backend = st.selectbox("Backend", run_config.BACKENDS, key="sweep_backend")
    fields = {
        "dataset": name,
        "validation_split": split,
        "standardize": standardize,
        "model": {"kind": kind, "depth": depth, "width": width, "activation": activation},
        "optimizer": {"name": "sgdplus", "convention": convention},
        "epochs": int(epochs),
        "backend": backend,
        "device": "cpu",
    }
    return fields, {"task": info.task, "input_shape": info.input_shape}


def pick_swept() -> tuple[dict[str, str], str, str, str]:
    """The values of each sweepable setting (text), the seeds, the sweep's name and the
    Dask cluster it runs on ("": this machine)."""
    st.markdown("**Values** (several, separated by commas, sweep a setting)")
    columns = st.columns(3)
    texts = {}
    for index, (axis, (label, default)) in enumerate(AXIS_FIELDS.items()):
        texts[axis] = columns[index % 3].text_input(
            label, default, key=f"sweep_axis_{axis}", help=HELP["values"]
        )
    seeds_column, name_column = st.columns([1, 2])
    seeds = seeds_column.text_input("Seeds", "2", key="sweep_seeds", help=HELP["seeds"])
    name = name_column.text_input("Sweep name", "sweep", max_chars=200, key="sweep_name")
    cluster = st.text_input(
        "Dask cluster (optional)",
        "",
        placeholder="this machine",
        key="sweep_cluster",
        help=HELP["cluster"],
    )
    return texts, seeds, name, cluster.strip()


def new_sweep_form(store: RunStore) -> None:
    fields, data = pick_fixed()
    texts, seeds, name, cluster = pick_swept()
    try:
        base = run_config.TrainingConfig.from_dict(fields)
        run_config.check_model_fits(base.model, data["task"], data["input_shape"])
        spec = sweep_results.spec_from_texts(name, base, texts, seeds)
        workers = max(os.cpu_count() or 1, 1)
        estimate = sweep_results.estimate_time(spec, store.list_runs(), workers=workers)
    except ValueError as error:
        st.error(str(error))
        return
    axes = " x ".join(f"{len(values)} {axis}" for axis, values in spec.axes.items())
    grid = f"{axes} x {len(spec.seeds)} seeds" if axes else f"{len(spec.seeds)} seeds"
    runs_column, time_column = st.columns([1, 3])
    runs_column.metric("Runs", spec.run_count, help=grid)
    where = " On a cluster, the time depends on its workers." if cluster else ""
    time_column.markdown(f"**{spec.run_count} runs** ({grid}).  \n{estimate.text}{where}")
    if st.button("Start sweep", type="primary", key="sweep_start"):
        try:
            with st.spinner("Starting the sweep's coordinator…"):
                sweep_id = sweep_runner().start_sweep(spec, store.root, cluster=cluster or None)
        except (ValueError, RuntimeError, ImportError) as error:
            st.error(f"The sweep did not start: {error}")
            return
        st.session_state[CHOSEN] = sweep_id
        common.flash(FLASH, f"Sweep {spec.name} started: {spec.run_count} runs.")
        st.rerun()


# --- the sweeps and one sweep's results --------------------------------------------------------


def sweep_label(record: dict) -> str:
    """A sweep in the chooser: its name, when it started and its id's end (its status, which
    changes while it is shown, is in the progress line below)."""
    return f"{record['name']} · {record['created_at'][:16]} ({record['id'][-6:]})"


def choose_sweep(sweeps: list[dict]) -> str | None:
    """A filter by name and status, and the sweep to show (the one just started first)."""
    name_column, status_column = st.columns([2, 1])
    text = name_column.text_input(
        "Filter sweeps by name", key="sweep_filter", placeholder="Part of a sweep's name"
    )
    statuses = status_column.multiselect(
        "Status", SWEEP_STATUSES, key="sweep_filter_status", placeholder="All"
    )
    shown = [
        record
        for record in sweeps
        if text.strip().lower() in record["name"].lower()
        and (not statuses or record["status"] in statuses)
    ]
    if not shown:
        st.info("No sweep matches the filter.")
        return None
    ids = [record["id"] for record in shown]
    if st.session_state.get(CHOSEN) not in ids:
        st.session_state[CHOSEN] = ids[0]
    labels = {record["id"]: sweep_label(record) for record in shown}
    return st.selectbox(
        f"Sweep ({len(shown)} of {len(sweeps)})", ids, format_func=labels.__getitem__, key=CHOSEN
    )


def progress_section(results: sweep_results.SweepResults) -> None:
    counts = results.progress()
    record = results.record
    done, total = counts["done"], counts["total"]
    bar, stop = st.columns([5, 1])
    bar.progress(
        done / total if total else 0.0,
        text=f"{record['status'].capitalize()}: {done} of {total} runs done, "
        f"{counts['running']} running, {counts['queued']} queued",
    )
    if record["status"] == "running" and stop.button(
        "Stop sweep",
        key="sweep_stop",
        help="Runs not started are dropped; running runs stop after their current chunk of "
        "steps (stopped, resumable on Compare).",
    ):
        try:
            sweep_runner().request_stop(common.run_store().root, results.sweep_id)
        except (ValueError, ImportError) as error:
            st.error(f"The sweep was not stopped: {error}")
        else:
            st.toast("Stopping the sweep…")
    if record.get("error"):
        st.error(f"The sweep failed: {record['error']}")


def ranking_section(results: sweep_results.SweepResults) -> None:
    """The configurations, best first, the best highlighted; open one on the Train page."""
    st.subheader("Ranking")
    table = results.table()
    best = results.best

    def highlight(row: pd.Series) -> list[str]:
        on = best is not None and row["rank"] == best.rank
        return ["background-color: rgba(46, 160, 67, 0.25); font-weight: 600" if on else ""] * len(
            row
        )

    st.dataframe(
        table.style.apply(highlight, axis=1).format(
            {"best_val_loss_mean": "{:.4g}", "best_val_loss_std": "{:.3g}"}, na_rep="-"
        ),
        hide_index=True,
        width="stretch",
        column_config={
            "rank": st.column_config.NumberColumn("Rank", width="small"),
            "runs": st.column_config.NumberColumn("Runs", width="small"),
            "scored": st.column_config.NumberColumn(
                "Scored", width="small", help="Runs with a validation loss so far."
            ),
            "best_val_loss_mean": st.column_config.TextColumn(
                "Best val loss (mean)",
                help="Each run's lowest epoch validation loss, averaged over its seeds.",
            ),
            "best_val_loss_std": st.column_config.TextColumn(
                "Std across seeds",
                help="The sample standard deviation (n - 1): the seeds are a sample of the "
                "seeds one could draw; '-' with one scored seed.",
            ),
            "run_ids": st.column_config.TextColumn("Run ids", width="large"),
        },
        key="sweep_ranking",
    )
    labels = [config.label for config in results.configs]
    chosen = st.selectbox(
        "Configuration to run again",
        labels,
        key=f"sweep_again_{version(results)}",
        help="The best one first. Opens the Train page with its settings filled in.",
    )
    if st.button("Open on the Train page", key="sweep_open_train", icon=":material/replay:"):
        config = results.training_config(results.config_of(str(chosen)))
        st.session_state.update(train_form_state(config))
        st.switch_page(TRAIN_PAGE)


def version(results: sweep_results.SweepResults) -> str:
    """A key part that changes with each run a sweep finishes: the choices made from its
    ranking (the best first) start again from the new ranking, then stay."""
    return f"{results.sweep_id}-{results.progress()['done']}"


def train_form_state(config: run_config.TrainingConfig) -> dict[str, Any]:
    """The Train page's widget values (by their keys) that give `config`: set in the
    session state before the page opens, its widgets start from them."""
    spec, schedule = config.optimizer, config.optimizer.schedule
    size = config.batch_size
    batch = "full" if size is None else "online" if size == 1 else "32" if size == 32 else "custom"
    mode = "Nesterov" if spec.nesterov else "Momentum" if spec.momentum else "Plain SGD"
    state: dict[str, Any] = {
        "dataset": config.dataset,
        "split": config.validation_split,
        "standardize": config.standardize,
        "model_kind": config.model.kind,
        "depth": config.model.depth,
        "width": config.model.width,
        "activation": config.model.activation,
        "loss": config.model.loss,
        "optimizer": spec.name,
        "learning_rate": spec.learning_rate,
        "mode": mode,
        "momentum": min(spec.momentum, 0.99) if spec.momentum else 0.9,
        "convention": spec.convention,
        "batch_choice": batch,
        "epochs": config.epochs,
        "seed": config.seed,
        "backend": config.backend,
        "schedule": schedule.name,
        "run_name": "",
    }
    if batch == "custom":
        state["custom_batch"] = size
    if schedule.name == "time_decay":
        state["decay"] = schedule.decay
    return state


def heatmap_section(results: sweep_results.SweepResults) -> None:
    axes = list(results.axes)
    if not axes:
        return
    st.subheader("Best validation loss")
    x_column, y_column = st.columns(2)
    x_axis = x_column.selectbox(
        "Across", axes, key=f"sweep_hx_{results.sweep_id}", format_func=_title
    )
    others = [axis for axis in axes if axis != x_axis]
    y_axis = (
        y_column.selectbox("Down", others, key=f"sweep_hy_{results.sweep_id}", format_func=_title)
        if others
        else None
    )
    data = sweep_results.heatmap_data(results, str(x_axis), y_axis)
    chart = sweep_charts.heatmap_chart(data)
    common.show_altair(chart, key="sweep-heatmap")
    common.image_downloads(chart, "sweep-heatmap", "sweep-heatmap-img")
    rest = [axis for axis in axes if axis not in (x_axis, y_axis)]
    note = f" {HELP['heatmap']}" if rest else ""
    st.caption(
        f"Each run's lowest epoch validation loss, averaged over its seeds.{note} Grey: no run "
        "has a validation loss there yet."
    )


def _title(axis: str) -> str:
    return sweep_charts.AXIS_TITLES.get(axis, axis)


def bands_section(store: RunStore, results: sweep_results.SweepResults) -> None:
    st.subheader("Curves across seeds")
    view_column, band_column, metric_column, log_column = st.columns([1.3, 1.3, 1.3, 1])
    view = view_column.radio(
        "View",
        ["batches", "epochs"],
        format_func={"batches": "Mini-batch", "epochs": "Epoch-averaged"}.get,
        horizontal=True,
        key="sweep_view",
    )
    band = band_column.radio(
        "Band",
        list(sweep_results.BANDS),
        format_func={"minmax": "min-max", "std": "+/- one std"}.get,
        horizontal=True,
        key="sweep_band",
        help=HELP["band"],
    )
    smoothing, metric = 0.0, "loss"
    if view == "batches":
        smoothing = metric_column.slider(
            "Smoothing", 0.0, 0.99, 0.6, 0.01, key="sweep_smoothing", help=common.HELP["smoothing"]
        )
    else:
        metric = str(
            metric_column.radio(
                "Loss",
                ["val_loss", "loss"],
                format_func={"val_loss": "validation", "loss": "training"}.get,
                horizontal=True,
                key="sweep_metric",
            )
        )
    log_scale = log_column.toggle("Log loss axis", key="sweep_log")
    labels = [config.label for config in results.configs]
    default = [c.label for c in results.configs if c.runs][:3]
    chosen = st.multiselect(
        "Configurations",
        labels,
        default=default,
        key=f"sweep_curves_{version(results)}",
        help="Best first. Each is drawn as its mean across seeds with a band.",
    )
    configs = [results.config_of(label) for label in chosen]
    data = sweep_results.band_data(
        store, configs, str(view), str(band), metric=metric, smoothing=smoothing
    )
    if data.empty:
        st.info("No curve to draw yet: the chosen configurations have no recorded steps.")
        return
    chart = sweep_charts.band_chart(sweep_charts.thin_bands(data), log_scale=log_scale)
    common.show_altair(chart, key="sweep-bands")
    common.image_downloads(chart, f"sweep-{view}-bands", "sweep-bands-img")


def delete_section(results: sweep_results.SweepResults) -> None:
    """Delete the sweep with its runs, after a confirmation; refused while it runs."""
    sweep_id = results.sweep_id
    runs = sum(len(config.runs) for config in results.configs)
    if st.session_state.get(CONFIRM) != sweep_id:
        running = results.record["status"] == "running"
        if st.button(
            "Delete sweep…",
            key="sweep_delete",
            disabled=running,
            help="Stop it first." if running else "Its runs and its record; asks first.",
        ):
            st.session_state[CONFIRM] = sweep_id
            st.rerun()
        return
    st.warning(
        f"Delete sweep **{results.name}** and its {runs} runs with their curves? "
        "This cannot be undone."
    )
    yes, no = st.columns(2)
    if yes.button("Yes, delete the sweep", key="sweep_delete_yes", type="primary"):
        st.session_state.pop(CONFIRM, None)
        try:
            sweep_runner().delete_sweep(common.run_store().root, sweep_id)
        except (ValueError, RunStoreError, ImportError) as error:
            st.error(f"Not deleted: {error}")
            return
        st.session_state.pop(CHOSEN, None)
        common.flash(FLASH, f"Deleted sweep {results.name} and its {runs} runs.")
        st.rerun()
    if no.button("Cancel", key="sweep_delete_no"):
        st.session_state.pop(CONFIRM, None)
        st.rerun()


def sweep_panel(store: RunStore, sweep_id: str, was_running: bool) -> None:
    """One sweep: its progress, ranking, heat map and curves; read again every few seconds
    while it runs, and the whole page once it has ended."""
    try:
        results = sweep_results.load_results(store.root, sweep_id)
    except (ValueError, RunStoreError) as error:
        st.error(f"This sweep cannot be shown: {error}")
        return
    if was_running and results.record["status"] != "running":
        st.rerun(scope="app")  # ended: the panel stops polling
    progress_section(results)
    if not any(config.runs for config in results.configs):
        st.info("No run of this sweep has started yet.")
    else:
        ranking_section(results)
        heatmap_section(results)
        bands_section(store, results)
    delete_section(results)


st.title("Sweeps")
common.show_flash(FLASH)
store = common.run_store()
try:
    sweeps = SweepStore(store.root).list_sweeps()
except OSError as error:
    st.error(f"The sweeps in {store.root} cannot be listed: {error}")
    st.stop()
with st.expander("New sweep", expanded=not sweeps):
    new_sweep_form(store)
if not sweeps:
    st.info(
        "No sweep yet. Choose the values above (several values sweep a setting), then Start: "
        "every configuration trains once per seed, and the results show here."
    )
    st.stop()
st.divider()
sweep_id = choose_sweep(sweeps)
if sweep_id is not None:
    running = next(r for r in sweeps if r["id"] == sweep_id)["status"] == "running"
    st.fragment(run_every=REFRESH_S if running else None)(sweep_panel)(store, sweep_id, running)
