"""What the compare page needs beyond the charts: labels for runs, the runs table's filters,
the default overlay, the list of unreadable runs and the styling of the settings diff.

Plain pandas, no Streamlit: the page (``dashboard/app_pages/compare.py``) only lays these out.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence

import pandas as pd
from pandas.io.formats.style import Styler

from keras_sgdplus.lab.runs import RunStore, RunSummary

__all__ = [
    "DIFF_HIGHLIGHT",
    "FILTER_COLUMNS",
    "curve_csv",
    "default_overlay",
    "filter_options",
    "filter_runs",
    "run_label",
    "run_labels",
    "short_id",
    "style_settings_diff",
    "unreadable_runs",
]

FILTER_COLUMNS = ("status", "dataset", "optimizer")
"""The runs-table columns the page filters by with a multiselect each."""

DIFF_HIGHLIGHT = "background-color: rgba(255, 193, 7, 0.28); font-weight: 600"
"""The CSS of a differing row in the settings table (an amber that reads in light and dark)."""


def short_id(run_id: str) -> str:
    """The random part of a run id (``20261121-224501-3f9a2c`` -> ``3f9a2c``)."""
    return run_id.rsplit("-", 1)[-1]


def run_label(run: RunSummary) -> str:
    """``"name (3f9a2c)"``: the name with the short id, so that runs of the same name differ.

    An unreadable run (which has no name) is ``"unreadable (3f9a2c)"``."""
    name = run.name if run.readable and run.name else "unreadable"
    return f"{name} ({short_id(run.run_id)})"


def run_labels(runs: Iterable[RunSummary]) -> dict[str, str]:
    """``{run_id: label}`` for the runs, every label distinct (the full id is added in the rare
    case of two runs whose names and short ids both agree)."""
    runs = list(runs)
    labels = {run.run_id: run_label(run) for run in runs}
    counts: dict[str, int] = {}
    for label in labels.values():
        counts[label] = counts.get(label, 0) + 1
    for run in runs:
        if counts[labels[run.run_id]] > 1:
            name = run.name if run.readable and run.name else "unreadable"
            labels[run.run_id] = f"{name} ({run.run_id})"
    return labels


def default_overlay(runs: Iterable[RunSummary], count: int = 2) -> list[str]:
    """The ids of the newest ``count`` readable runs (``runs`` newest first, as
    ``RunStore.list_runs`` gives them): what the page overlays before the user chooses."""
    return [run.run_id for run in runs if run.readable][:count]


def unreadable_runs(runs: Iterable[RunSummary]) -> list[tuple[str, str]]:
    """``[(run_id, reason), ...]`` of the runs that cannot be read, in listing order."""
    return [(run.run_id, run.reason or "unreadable") for run in runs if not run.readable]


def filter_options(table: pd.DataFrame, column: str) -> list[str]:
    """The distinct values of a runs-table column, sorted, missing values left out."""
    values = table[column].dropna().astype(str)
    return sorted(set(values))


def filter_runs(
    table: pd.DataFrame,
    name: str = "",
    *,
    status: Sequence[str] = (),
    dataset: Sequence[str] = (),
    optimizer: Sequence[str] = (),
) -> pd.DataFrame:
    """The rows of ``charts.runs_table`` that pass every filter, in their order.

    ``name``: the run's name contains this text (case-insensitive, surrounding spaces ignored;
    empty: no filter). ``status``, ``dataset``, ``optimizer``: the column's value is one of
    these (empty: no filter; a run without a value passes only an empty filter).
    """
    keep = pd.Series(True, index=table.index)
    text = name.strip().casefold()
    if text:
        names = table["name"].fillna("").astype(str).str.casefold()
        keep &= names.str.contains(text, regex=False)
    for column, chosen in (("status", status), ("dataset", dataset), ("optimizer", optimizer)):
        if chosen:
            keep &= table[column].astype(object).isin(list(chosen)).astype(bool)
    return table[keep.to_numpy(dtype=bool)]


def style_settings_diff(diff: pd.DataFrame, only_differing: bool = False) -> Styler:
    """``charts.settings_diff`` output as a pandas Styler: the rows where ``differs`` is True
    highlighted (``DIFF_HIGHLIGHT``), the others plain; ``only_differing`` keeps only those."""
    if only_differing:
        diff = diff[diff["differs"].to_numpy(dtype=bool)]

    def highlight(row: pd.Series) -> list[str]:
        css = DIFF_HIGHLIGHT if bool(row["differs"]) else ""
        return [css] * len(row)

    return diff.style.apply(highlight, axis=1)


def curve_csv(store: RunStore, run_id: str, curve: str) -> str:
    """One curve of a run (``"batches"`` or ``"epochs"``) as CSV text with a header line, as
    ``RunStore.export_csv`` writes it; RunStoreError if the run cannot be read."""
    out = io.StringIO()
    store.export_csv(run_id, curve, out)
    return out.getvalue()
