"""Compare runs: every saved run in a table, the chosen runs' curves overlaid, their settings
side by side, and actions on one run (rename, delete, download its curves).

Thin Streamlit over `keras_sgdplus.lab`: the runs come from the run store, the tables and charts
from `lab.charts`, the labels, filters and diff styling from `lab.compare`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import pandas as pd
import streamlit as st
from keras_sgdplus.dashboard.app_pages import common

from keras_sgdplus.lab import charts, compare, run_health
from keras_sgdplus.lab.jobs import request_stop
from keras_sgdplus.lab.runs import (
    QUEUED,
    UNREADABLE,
    Run,
    RunIsLiveError,
    RunStore,
    RunStoreError,
    RunSummary,
)

OVERLAY_KEY = "compare-overlay"
ACTION_RUN_KEY = "compare-action-run"
CONFIRM_KEY = "compare-confirm-delete"
FLASH_KEY = "compare-flash"
LIVE_REFRESH_S = 2

_PERCENT = "percent"
# The runs table's columns in the order shown: what tells runs apart and how they did first.
TABLE_COLUMNS = {
    "name": st.column_config.TextColumn("Name", width="medium"),
    "status": st.column_config.TextColumn("Status", width="small"),
    "warning": st.column_config.TextColumn(
        "Warning",
        width="small",
        help="What went wrong in a run that ended without an error: its loss exploded, it "
        "sits at chance level, or it did not learn. Choose it below for the numbers and what "
        "to try.",
    ),
    "live": st.column_config.CheckboxColumn(
        "Live", width="small", help="A worker is training it right now."
    ),
    "dataset": st.column_config.TextColumn("Dataset", width="small"),
    "optimizer": st.column_config.TextColumn("Optimizer", width="small"),
    "learning_rate": st.column_config.NumberColumn("Learning rate", format="%.4g"),
    "momentum": st.column_config.NumberColumn("Momentum", format="%.3g"),
    "nesterov": st.column_config.CheckboxColumn("Nesterov", width="small"),
    "batch_size": st.column_config.TextColumn("Batch size", width="small"),
    "epochs_completed": st.column_config.NumberColumn("Epochs done", format="%d"),
    "best_loss": st.column_config.NumberColumn("Best loss", format="%.4g"),
    "final_loss": st.column_config.NumberColumn("Final loss", format="%.4g"),
    "best_val_loss": st.column_config.NumberColumn("Best val loss", format="%.4g"),
    "final_val_loss": st.column_config.NumberColumn("Final val loss", format="%.4g"),
    "best_accuracy": st.column_config.NumberColumn("Best acc.", format=_PERCENT),
    "final_accuracy": st.column_config.NumberColumn("Final acc.", format=_PERCENT),
    "best_val_accuracy": st.column_config.NumberColumn("Best val acc.", format=_PERCENT),
    "final_val_accuracy": st.column_config.NumberColumn("Final val acc.", format=_PERCENT),
    "elapsed_s": st.column_config.NumberColumn("Time (s)", format="%.1f"),
    "samples_per_s": st.column_config.NumberColumn("Samples/s", format="%.0f"),
    "model": st.column_config.TextColumn("Model", width="small"),
    "schedule": st.column_config.TextColumn("Schedule", width="small"),
    "epochs": st.column_config.NumberColumn("Epochs", format="%d"),
    "created_at": st.column_config.DatetimeColumn("Started", format="YYYY-MM-DD HH:mm"),
    "reason": st.column_config.TextColumn(
        "Error / reason", width="large", help="Why a run is unreadable, or a failed run's error."
    ),
    "run_id": st.column_config.TextColumn("Run id", width="small"),
}


def open_store() -> RunStore:
    try:
        return common.run_store()
    except (RunStoreError, OSError) as e:
        st.error(f"The run store cannot be opened: {e}")
        st.stop()
        raise  # unreachable: st.stop ends the script


def keep_known_choices(key: str, options: list[str]) -> None:
    """Drop from a multiselect's state the values that are no longer options (a run deleted)."""
    if key in st.session_state:
        st.session_state[key] = [v for v in st.session_state[key] if v in options]


def runs_table_section(runs: list[RunSummary]) -> None:
    """All runs in a sortable table, with a name filter and multiselects above it."""
    table = charts.runs_table(runs)
    warned = {run.run_id: run_health.short_label(stored_warnings(run)) for run in runs}
    table["warning"] = table["run_id"].map(warned).fillna("")
    table["created_at"] = pd.to_datetime(
        table["created_at"], utc=True, errors="coerce", format="ISO8601"
    )
    st.subheader("All runs")
    name_column, status_column, dataset_column, optimizer_column = st.columns([2, 1, 1, 1])
    name = name_column.text_input(
        "Filter by name", key="compare-filter-name", placeholder="Part of a run's name"
    )
    chosen = {}
    for column, key, title in (
        (status_column, "status", "Status"),
        (dataset_column, "dataset", "Dataset"),
        (optimizer_column, "optimizer", "Optimizer"),
    ):
        options = compare.filter_options(table, key)
        keep_known_choices(f"compare-filter-{key}", options)
        chosen[key] = column.multiselect(
            title, options, key=f"compare-filter-{key}", placeholder="All"
        )
    shown = compare.filter_runs(table, name, **chosen)
    st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        column_order=[c for c in TABLE_COLUMNS if c in shown.columns],
        column_config=TABLE_COLUMNS,
        key="compare-runs-table",
    )
    st.caption(
        f"{len(shown)} of {len(table)} runs shown. Click a column header to sort; "
        "accuracies are in percent, times in seconds."
    )


def stored_warnings(run: RunSummary) -> list[run_health.Diagnosis]:
    """The warnings a run's summary holds (`lab.run_health`; a run stored without them is
    judged from its files only when chosen, in `warnings_section`)."""
    if not run.readable:
        return []
    return run_health.warnings_of(
        {"status": run.status, "config": run.config, "summary": run.summary}
    )


def warnings_section(store: RunStore, chosen: list[RunSummary], labels: dict[str, str]) -> None:
    """What went wrong in each chosen run that ended without an error, and what to try."""
    for run in chosen:
        meta = {"status": run.status, "config": run.config, "summary": run.summary}
        try:
            found = run_health.warnings_of(meta, partial(store.load_curve, run.run_id, "batches"))
        except RunStoreError:
            continue  # reported above the charts
        for warning in found:
            st.warning(
                f"**{labels[run.run_id]}: {warning.title}.** {warning.detail}\n\n{warning.advice}",
                icon="⚠️",
            )


def unreadable_warning(runs: list[RunSummary]) -> None:
    broken = compare.unreadable_runs(runs)
    if broken:
        lines = "\n".join(f"- `{run_id}`: {reason}" for run_id, reason in broken)
        st.warning(
            f"{len(broken)} saved run(s) cannot be read and are listed as "
            f"*{UNREADABLE}*; the others are fine. You can delete them below.\n\n{lines}"
        )


def overlay_choice(readable: list[RunSummary], labels: dict[str, str]) -> list[str]:
    """The multiselect of runs to overlay; newest two by default; stale ids dropped."""
    ids = [run.run_id for run in readable]
    if OVERLAY_KEY not in st.session_state:
        st.session_state[OVERLAY_KEY] = compare.default_overlay(readable)
    keep_known_choices(OVERLAY_KEY, ids)
    return st.multiselect(
        "Runs to overlay",
        ids,
        format_func=labels.__getitem__,
        key=OVERLAY_KEY,
        help="Their curves are drawn together, one color per run.",
    )


def load_runs(store: RunStore, run_ids: list[str], labels: dict[str, str]) -> dict[str, Run]:
    """The chosen runs by label; one that cannot be loaded is reported and left out."""
    loaded = {}
    for run_id in run_ids:
        try:
            loaded[labels[run_id]] = store.load(run_id)
        except RunStoreError as e:
            st.error(f"Run {labels[run_id]} cannot be shown: {e}")
    return loaded


def draw_overlay(
    store: RunStore, run_ids: list[str], labels: dict[str, str], options: dict
) -> None:
    loaded = load_runs(store, run_ids, labels)
    if loaded:
        common.curve_views(
            {label: run.batches for label, run in loaded.items()},
            {label: run.epochs for label, run in loaded.items()},
            options,
            key="compare",
            downloads=True,
        )


def still_active(store: RunStore, run_ids: list[str]) -> bool:
    for run_id in run_ids:
        try:
            if store.is_active(run_id):
                return True
        except RunStoreError:
            continue  # deleted meanwhile
    return False


def overlay_section(store: RunStore, chosen: list[RunSummary], labels: dict[str, str]) -> None:
    """The chosen runs' curves, redrawn every few seconds while one of them trains."""
    options = common.curve_controls("compare")
    run_ids = [run.run_id for run in chosen]
    live = [run.run_id for run in chosen if run.active]
    if not live:
        draw_overlay(store, run_ids, labels, options)
        return
    names = ", ".join(labels[run_id] for run_id in live)
    st.caption(f":red[●] Live: {names} still training; the charts update every {LIVE_REFRESH_S} s.")

    @st.fragment(run_every=LIVE_REFRESH_S)
    def live_overlay() -> None:
        draw_overlay(store, run_ids, labels, options)
        if not still_active(store, live):
            st.rerun(scope="app")  # training ended: refresh the table and statuses too

    live_overlay()


def settings_section(store: RunStore, chosen: list[RunSummary], labels: dict[str, str]) -> None:
    """The chosen runs' settings side by side, the differing rows highlighted."""
    st.subheader("Settings")
    configs = {}
    for run in chosen:
        try:
            configs[labels[run.run_id]] = store.load_meta(run.run_id)["config"]
        except RunStoreError:
            continue  # reported above the charts
    if not configs:
        return
    only = st.toggle("Only settings that differ", key="compare-only-differ")
    diff = charts.settings_diff(configs, as_text=True)
    count = int(diff["differs"].sum())
    if len(configs) > 1:
        st.caption(f"{count} of {len(diff)} settings differ between the chosen runs (highlighted).")
    st.dataframe(
        compare.style_settings_diff(diff, only_differing=only),
        width="stretch",
        height="content",
        column_config={
            "setting": st.column_config.TextColumn("Setting", width="medium"),
            "differs": st.column_config.CheckboxColumn("Differs", width="small"),
        },
        key="compare-settings-diff",
    )


def csv_of(store: RunStore, run_id: str, curve: str) -> Callable[[], str]:
    """The curve's CSV, made only when its download button is clicked."""
    return lambda: compare.curve_csv(store, run_id, curve)


def rename_form(store: RunStore, run: RunSummary) -> None:
    new_name = st.text_input("New name", value=run.name, key=f"compare-rename-{run.run_id}")
    if st.button("Rename", key="compare-rename"):
        try:
            store.rename(run.run_id, new_name)
        except RunStoreError as e:
            st.error(f"Not renamed: {e}")
        else:
            common.flash(FLASH_KEY, f"Renamed the run to “{new_name.strip()}”.")
            st.rerun()


def delete_controls(store: RunStore, run: RunSummary, label: str) -> None:
    """Stop a live run; delete in two steps: the button asks, a second button does it. A
    live run is refused (stop it first)."""
    if run.active:
        st.markdown("Queued" if run.status == QUEUED else "Training now")
        if st.button(
            "Stop training",
            key="compare-stop",
            help="Ends the run after its current chunk of steps, wherever it trains.",
        ):
            if request_stop(store, run.run_id):
                common.flash(FLASH_KEY, f"Run {label} stops after its current chunk of steps.")
            else:
                common.flash(FLASH_KEY, f"Run {label} had already ended.")
            st.rerun()
    if st.session_state.get(CONFIRM_KEY) != run.run_id:
        st.markdown("Remove this run")
        if st.button("Delete…", key="compare-delete", help="Asks for confirmation first."):
            if run.active:
                st.error(f"Run {label} is still training: stop it first (Stop training).")
            else:
                st.session_state[CONFIRM_KEY] = run.run_id
                st.rerun()
        return
    st.warning(f"Delete run **{label}** and all its curves? This cannot be undone.")
    yes, no = st.columns(2)
    if yes.button("Yes, delete it", key="compare-delete-yes", type="primary"):
        st.session_state.pop(CONFIRM_KEY, None)
        try:
            store.delete(run.run_id)  # refuses a run that trains again meanwhile
        except RunIsLiveError:
            st.error(f"Run {label} started training again; it was not deleted.")
            return
        except RunStoreError as e:
            st.error(f"Not deleted: {e}")
            return
        common.flash(FLASH_KEY, f"Deleted run {label}.")
        st.rerun()
    if no.button("Cancel", key="compare-delete-no"):
        st.session_state.pop(CONFIRM_KEY, None)
        st.rerun()


def actions_section(
    store: RunStore, runs: list[RunSummary], labels: dict[str, str], chosen: list[str]
) -> None:
    """Rename, delete or download one run (any run, readable or not)."""
    st.subheader("Run actions")
    ids = [run.run_id for run in runs]
    by_id = {run.run_id: run for run in runs}
    if st.session_state.get(ACTION_RUN_KEY) not in ids:
        st.session_state[ACTION_RUN_KEY] = chosen[0] if chosen else ids[0]
    run_id = st.selectbox(
        "Run", ids, format_func=labels.__getitem__, key=ACTION_RUN_KEY, help="Any saved run."
    )
    if run_id is None:
        return
    run = by_id[run_id]
    if CONFIRM_KEY in st.session_state and st.session_state[CONFIRM_KEY] != run_id:
        st.session_state.pop(CONFIRM_KEY)  # a confirmation is for the run it was asked about
    label = labels[run_id]
    if not run.readable:
        st.error(f"Run {label} cannot be read: {run.reason}")
    elif run.status == "failed":
        st.error(f"Run {label} failed: {run.error or 'no error message was saved'}")
    elif run.status == "diverged":
        st.warning(f"Run {label} diverged: its loss became NaN or infinite.")
    elif run.status == "interrupted":
        st.warning(f"Run {label} was interrupted. {run.error or ''}")
    elif run.active and run.status == QUEUED:
        st.info(f"Run {label} is queued: it trains when the runs before it have ended.")
    elif run.active:
        st.info(f"Run {label} is still training.")
    rename_column, delete_column, download_column = st.columns([2, 1, 1.4])
    with rename_column:
        if run.readable:
            rename_form(store, run)
            if common.continue_controls(  # a run training now has nothing to continue
                store, run.run_id, run.status, run.config, run.summary, label, "compare"
            ):
                common.flash(FLASH_KEY, f"Run {label} continues; follow it on the Train page.")
                st.rerun()
    with delete_column:
        delete_controls(store, run, label)
    with download_column:
        if run.readable:
            st.markdown("Curves as CSV")
            for curve, title, row in (
                ("batches", "Batches", "batch"),
                ("epochs", "Epochs", "epoch"),
            ):
                st.download_button(
                    f"{title} CSV",
                    data=csv_of(store, run_id, curve),
                    file_name=f"{run_id}-{curve}.csv",
                    mime="text/csv",
                    key=f"compare-csv-{curve}",
                    on_click="ignore",
                    help=f"Every recorded {row} of this run, with a header line.",
                )


st.title("Compare runs")
common.show_flash(FLASH_KEY)
store = open_store()
try:
    runs = store.list_runs()
except (RunStoreError, OSError) as e:
    st.error(f"The runs in {store.root} cannot be listed: {e}")
    st.stop()

if not runs:
    st.info(
        f"No saved runs yet in `{store.root}`. Train a model on the **Train** page (in the "
        "menu on the left); its run appears here as it trains."
    )
    st.stop()

labels = compare.run_labels(runs)
readable = [run for run in runs if run.readable]
unreadable_warning(runs)
runs_table_section(runs)

st.subheader("Overlay")
if readable:
    chosen_ids = overlay_choice(readable, labels)
    chosen = [run for run in readable if run.run_id in chosen_ids]
    if chosen:
        overlay_section(store, chosen, labels)
        warnings_section(store, chosen, labels)
        settings_section(store, chosen, labels)
    else:
        st.info("Choose one or more runs above to draw their curves and compare settings.")
else:
    chosen_ids = []
    st.info("No run can be read, so there is nothing to draw.")

actions_section(store, runs, labels, chosen_ids)
