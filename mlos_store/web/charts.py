"""The web view's charts: the figures of ``mlos_store.plot``, written as SVG text to inline in a page.

Drawing stays in ``mlos_store.plot`` (one place for every figure); this
module only picks which figure a page shows and turns it into SVG. A chart
the data cannot give (no objective yet, no numeric telemetry) is a short
note instead of a figure, with the library's own message.
"""

from __future__ import annotations

import io
import warnings
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import plot
from ..analysis import ExperimentData
from ..errors import InvalidValueError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Width and height in pixels of a chart; a multi-panel chart grows by ``PANEL_HEIGHT`` per panel.
CHART_SIZE = (900, 380)
PANEL_HEIGHT = 220


#: Most charts a ChartCache keeps (the least recently shown go first).
CACHE_CHARTS = 64


class ChartCache:
    """Charts drawn before, by what they show and the counts they depend on (``pages.chart_state``).

    Drawing is most of a page's time; a page viewed again (or polled) while
    its experiment is unchanged gets its charts from here. Used under the
    server's lock, one request at a time.
    """

    def __init__(self, size: int = CACHE_CHARTS) -> None:
        self._size = size
        self._charts: OrderedDict[Hashable, list[Chart]] = OrderedDict()

    def charts(self, key: Hashable, draw_them: Callable[[], list[Chart]]) -> list[Chart]:
        """The charts of ``key``, drawn by ``draw_them()`` when not kept."""
        if key in self._charts:
            self._charts.move_to_end(key)
            return self._charts[key]
        drawn = self._charts[key] = draw_them()
        while len(self._charts) > self._size:
            self._charts.popitem(last=False)
        return drawn


@dataclass(frozen=True)
class Chart:
    """An SVG document to inline (``svg``), or why there is none (``note``); ``kind`` names which chart it is."""

    kind: str
    title: str
    svg: str | None = None
    note: str | None = None


def draw(kind: str, title: str, make: Callable[[], Figure]) -> Chart:
    """The chart of ``make()``'s figure, or a note saying why the data gives none."""
    try:
        figure = make()
    except InvalidValueError as refused:
        return Chart(kind, title, note=str(refused))
    return Chart(kind, title, svg=svg_text(figure))


def svg_text(figure: Figure) -> str:
    """The figure as an ``<svg>`` element (no XML prolog, no date: the same data gives the same text)."""
    out = io.StringIO()
    with warnings.catch_warnings():  # a name in a script the font lacks draws as boxes: no need to warn
        warnings.filterwarnings("ignore", r"Glyph \d+ .* missing from font", UserWarning)
        figure.savefig(out, format="svg", metadata={"Date": None})
    text = out.getvalue()
    return text[text.index("<svg"):]


def experiment_charts(data: ExperimentData, x: str | None) -> list[Chart]:
    """The optimization history, the Pareto front (two objectives) and the first objective against ``x``."""
    objectives = list(data.objectives)
    charts = [draw("history", "Optimization history", lambda: plot.history_figure(
        data, size_px=(CHART_SIZE[0], PANEL_HEIGHT * max(1, len(objectives)) + 60)))]
    if len(objectives) == 2:
        charts.append(draw("pareto", "Pareto front", lambda: plot.pareto_figure(data, size_px=(640, 480))))
    if x is not None and objectives:
        charts.append(draw("results", f"{objectives[0]} against {x}", lambda: plot.results_figure(
            data, x=x, y=f"result.{objectives[0]}", size_px=CHART_SIZE)))
    return charts


def telemetry_chart(data: ExperimentData, metrics: Sequence[str], trial_ids: Sequence[int]) -> Chart:
    """Telemetry over time, one panel per metric, one line per trial (busy trials downsampled by ``plot``)."""
    return draw("telemetry", "Telemetry", lambda: plot.telemetry_figure(
        data, metrics=metrics, trial_ids=trial_ids,
        size_px=(CHART_SIZE[0], PANEL_HEIGHT * max(1, len(metrics)) + 60)))
