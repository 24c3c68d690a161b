"""Reading what an AppTest page drew: its Vega-Lite charts with their data."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
from streamlit.testing.v1 import AppTest


@dataclass
class DrawnChart:
    spec: dict
    datasets: dict[str, pd.DataFrame]

    @property
    def title(self) -> str:
        title = self.spec.get("title", "")
        return title.get("text", "") if isinstance(title, dict) else str(title)

    @property
    def data(self) -> pd.DataFrame:
        """The chart's one dataset (all of them concatenated if several)."""
        return pd.concat(list(self.datasets.values()), ignore_index=True)


def drawn_charts(app: AppTest) -> list[DrawnChart]:
    """Every Altair/Vega-Lite chart on the page, in page order."""
    charts = []
    for element in app.get("vega_lite_chart"):
        proto = element.proto
        frames = {d.name: convert_arrow_bytes_to_pandas_df(d.data.data) for d in proto.datasets}
        charts.append(DrawnChart(json.loads(proto.spec), frames))
    return charts


def chart_titled(app: AppTest, title: str) -> DrawnChart:
    matches = [chart for chart in drawn_charts(app) if chart.title == title]
    assert len(matches) == 1, f"{len(matches)} charts titled {title!r}: " + ", ".join(
        repr(c.title) for c in drawn_charts(app)
    )
    return matches[0]
