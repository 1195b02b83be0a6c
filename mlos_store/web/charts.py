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
from typing import TYPE_CHECKING, Any, TypeVar

import pyarrow.compute as pc

from .. import plot
from ..analysis import ExperimentData
from ..errors import InvalidValueError, UnknownObjectError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Width and height in pixels of a chart; a multi-panel chart grows by ``PANEL_HEIGHT`` per panel.
CHART_SIZE = (900, 380)
PANEL_HEIGHT = 220


T = TypeVar("T")
#: Most charts a ChartCache keeps (the least recently shown go first).
CACHE_CHARTS = 64


class ChartCache:
    """Charts (and other slow views) made before, by what they show and the counts they depend on.

    The key ends with ``pages.chart_state``: drawing is most of a chart's
    time, so a chart viewed again (or polled) while its experiment is
    unchanged comes from here. Used under the server's lock, one request at
    a time.
    """

    def __init__(self, size: int = CACHE_CHARTS) -> None:
        self._size = size
        self._kept: OrderedDict[Hashable, Any] = OrderedDict()

    def kept(self, key: Hashable, make: Callable[[], T]) -> T:
        """What ``make()`` gives for ``key``, made only when not kept."""
        if key in self._kept:
            self._kept.move_to_end(key)
            kept: T = self._kept[key]
            return kept
        made = self._kept[key] = make()
        while len(self._kept) > self._size:
            self._kept.popitem(last=False)
        return made


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


def warm() -> None:
    """Draw one small figure, with text, a line and a band, to SVG and throw it away: at server start.

    A process's first figure costs about a second more than the next ones
    (matplotlib imported, its font list read, or built on a machine that
    never ran it, the font's glyphs loaded, the SVG writer imported); a
    server pays that once, before it answers, so no request does.
    """
    figure = plot.warming_figure()
    svg_text(figure)


def experiment_chart_kinds(objectives: Sequence[str], x: str | None) -> list[tuple[str, str]]:
    """(kind, title) of each chart of an experiment page: history; Pareto front (two objectives); first
    objective against ``x``."""
    kinds = [("history", "Optimization history")]
    if len(objectives) == 2:
        kinds.append(("pareto", "Pareto front"))
    if x is not None and objectives:
        kinds.append(("results", f"{objectives[0]} against {x}"))
    return kinds


def experiment_chart(data: ExperimentData, kind: str, x: str | None) -> Chart:
    """One chart of ``experiment_chart_kinds``; UnknownObjectError for a kind the experiment has not."""
    objectives = list(data.objectives)
    titles = dict(experiment_chart_kinds(objectives, x))
    if kind not in titles:
        raise UnknownObjectError(f"experiment {data.experiment_id!r} has no chart {kind!r}")
    if kind == "history":
        return draw(kind, titles[kind], lambda: plot.history_figure(
            data, size_px=(CHART_SIZE[0], PANEL_HEIGHT * max(1, len(objectives)) + 60)))
    if kind == "pareto":
        return draw(kind, titles[kind], lambda: plot.pareto_figure(data, size_px=(640, 480)))
    assert x is not None
    return draw(kind, titles[kind], lambda: plot.results_figure(data, x=x, y=f"result.{objectives[0]}",
                                                                size_px=CHART_SIZE))


def telemetry_chart(data: ExperimentData, trial_ids: Sequence[int]) -> Chart:
    """Telemetry over time of every metric the trials measured, one panel per metric, one line per trial.

    Busy trials are downsampled by ``plot`` to the chart's width in pixels.
    The metrics come from ``telemetry_extents`` (no point sorted), which is
    cheap beside the figure.
    """
    metrics = sorted(pc.unique(data.telemetry_extents(trial_ids).column("metric")).to_pylist())
    return draw("telemetry", "Telemetry", lambda: plot.telemetry_figure(
        data, metrics=metrics, trial_ids=trial_ids,
        size_px=(CHART_SIZE[0], PANEL_HEIGHT * max(1, len(metrics)) + 60)))
