"""Plots of a stored experiment as PNG files: telemetry over time, and results against a tunable.

matplotlib is an optional extra (``pip install 'mlos_store[plot]'``),
imported only when a plot is asked for, never by ``import mlos_store``. Each
figure is drawn on its own Agg canvas (no pyplot, no backend switch, no
change to matplotlib's settings), so plotting from a script, a server or a
notebook leaves the caller's matplotlib as it was.

Every read goes through the experiment's own Arrow reads
(``telemetry_extents``, ``telemetry_table``, ``telemetry_downsample``,
``results_table``, ``best``, ``trial``). A line never holds more points than
the figure is pixels wide, nor more than ``MAX_POINTS_PER_LINE``: a trial
with more points is read through ``telemetry_downsample``, one bucket per
point of the line, so a plot of ten million points costs one aggregate
query, not ten million matplotlib points.

Arguments are checked and the data read before any file is touched; the PNG
is written next to its destination and moved into place, so a refused or
failed plot leaves no file (and an existing file as it was).
"""

from __future__ import annotations

import functools
import importlib
import itertools
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec

import pyarrow as pa
import pyarrow.compute as pc

from .analysis import ExperimentData
from .errors import InvalidValueError, MissingDependencyError, UnknownObjectError
from .values import ABSENT, ENCODING_KEY, check_name, checked_id, column_to_python, distinct_list

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Most points one line of a telemetry plot holds; a trial with more is downsampled to about this many buckets.
MAX_POINTS_PER_LINE = 2_000
#: Most trials a telemetry plot names in its legend; more are drawn unlabelled (pass ``trial_ids`` to name them).
MAX_LEGEND_TRIALS = 20
_DPI = 100
_SIZE_RANGE = (100, 10_000)
_MICROS_PER_SECOND = 1_000_000
#: Sideways offsets of the points of one category (a fixed pattern, so a plot is the same every run).
_SPREAD = (0.0, 0.05, -0.05, 0.1, -0.1, 0.15, -0.15)
#: Above this many points a scatter is drawn as one raster layer inside a vector (SVG) figure.
_RASTER_ABOVE = 2_000


@dataclass
class _Line:
    """One trial's points of one metric, as drawn: x in seconds since the trial's first point.

    ``low`` and ``high`` are the min and max of each bucket when the line was
    downsampled (``y`` is then each bucket's mean), else None.
    """

    seconds: list[float]
    values: list[float]
    low: list[float] | None = None
    high: list[float] | None = None


# ---------------------------------------------------------------- telemetry



_P = ParamSpec("_P")


def _literal_text(draw: Callable[_P, Figure]) -> Callable[_P, Figure]:
    """Stored names (tunables, metrics, experiment ids) are drawn as written: matplotlib would read the text
    between two ``$`` as math, and fail on what is not valid math."""

    @functools.wraps(draw)
    def drawn(*args: _P.args, **kwargs: _P.kwargs) -> Figure:
        _matplotlib_figure()  # MissingDependencyError, with the extra to install, before any import of matplotlib
        with importlib.import_module("matplotlib").rc_context({"text.parse_math": False}):
            return draw(*args, **kwargs)

    return drawn


def plot_telemetry(experiment: ExperimentData, path: str | os.PathLike[str], *, metrics: Sequence[str],
                   trial_ids: Sequence[int] | None = None, since: datetime | None = None,
                   until: datetime | None = None, size_px: tuple[int, int] = (960, 540)) -> Path:
    """Write a PNG of telemetry over time: one panel per metric, one line per trial; return its path.

    See ``telemetry_figure`` for what is drawn and what is refused. The file
    is exactly ``size_px`` (width, height) pixels; nothing is written when an
    argument is refused.
    """
    target = _checked_target(path)
    figure = telemetry_figure(experiment, metrics=metrics, trial_ids=trial_ids, since=since, until=until,
                              size_px=size_px)
    return _save_png(figure, target)


@_literal_text
def telemetry_figure(experiment: ExperimentData, *, metrics: Sequence[str], trial_ids: Sequence[int] | None = None,
                     since: datetime | None = None, until: datetime | None = None,
                     size_px: tuple[int, int] = (960, 540)) -> Figure:
    """The figure ``plot_telemetry`` saves, for a notebook or further drawing.

    ``metrics`` (a list of names; each needs at least one point among the
    chosen trials and times) gives the panels, top to bottom; ``trial_ids``
    the trials (default: every trial with points); ``since`` (inclusive) and
    ``until`` (exclusive) the time range, as ``telemetry_table`` takes them.

    The x axis is seconds since each trial's first plotted point, not wall
    time: trials of one experiment usually run one after another, so on a
    wall clock their lines would sit side by side and never overlap, while
    from a common origin the same moment of each run lines up for comparison.
    Non-numeric values (strings, None, NaN) are left out, as the telemetry
    statistics leave them out.
    """
    figure_class = _matplotlib_figure()
    width, height = _checked_size(size_px)
    names = _metric_list(metrics)
    chosen = _trial_list(trial_ids)
    extents = experiment.telemetry_extents(chosen, metrics=names, start=since, end=until)
    _refuse_unknown_trials(experiment, chosen, extents)
    lines = _telemetry_lines(experiment, extents, since=since, until=until,
                             most_points=min(MAX_POINTS_PER_LINE, width))
    _refuse_metrics_without_points(experiment, names, lines, chosen)
    figure = _new_figure(figure_class, width, height)
    _draw_telemetry(figure, experiment.experiment_id, names, lines)
    return figure


def _telemetry_lines(experiment: ExperimentData, extents: pa.Table, *, since: datetime | None,
                     until: datetime | None, most_points: int) -> dict[tuple[int, str], _Line]:
    """The line of each (trial, metric) in ``extents`` (a ``telemetry_extents``), read as a plot needs it.

    A trial whose every metric has at most ``most_points`` points (the
    figure's width in pixels, at most ``MAX_POINTS_PER_LINE``: more could
    not be told apart) is read point by point (all such trials in one read);
    any other is read through ``telemetry_downsample`` with a bucket of its
    time span divided by ``most_points``.
    """
    origins, spans, largest = _trial_extents(extents)
    metrics = pc.unique(extents.column("metric")).to_pylist()
    small = [trial for trial in origins if largest[trial] <= most_points]
    busy = [trial for trial in origins if largest[trial] > most_points]
    lines: dict[tuple[int, str], _Line] = {}
    if small:
        points = experiment.telemetry_table(small, metrics=metrics, start=since, end=until)
        lines.update(_raw_lines(points, origins))
    for trial in busy:
        bucket = _bucket_for(spans[trial], most_points)
        buckets = experiment.telemetry_downsample(bucket, trial, metrics=metrics, start=since, end=until)
        lines.update(_downsampled_lines(buckets, origins[trial], bucket))
    return lines


def _trial_extents(extents: pa.Table) -> tuple[dict[int, int], dict[int, int], dict[int, int]]:
    """Per trial: its first plotted point (µs since the epoch), its time span (µs), its most points of a metric."""
    origins: dict[int, int] = {}
    lasts: dict[int, int] = {}
    largest: dict[int, int] = {}
    first_us = _micros(extents.column("first_ts"))
    last_us = _micros(extents.column("last_ts"))
    for trial, count, first, last in zip(extents.column("trial_id").to_pylist(), extents.column("count").to_pylist(),
                                         first_us, last_us):
        origins[trial] = min(first, origins.get(trial, first))
        lasts[trial] = max(last, lasts.get(trial, last))
        largest[trial] = max(count, largest.get(trial, 0))
    spans = {trial: lasts[trial] - origins[trial] for trial in origins}
    return origins, spans, largest


def _bucket_for(span_us: int, most_points: int) -> timedelta:
    """The bucket width that cuts a span into at most ``most_points`` buckets (+1 for epoch alignment)."""
    return timedelta(microseconds=max(1, -(-span_us // most_points)))


def _raw_lines(points: pa.Table, origins: dict[int, int]) -> dict[tuple[int, str], _Line]:
    lines: dict[tuple[int, str], _Line] = {}
    values = _numeric_view(points.column("value"))
    for trial, metric, ts, value in zip(points.column("trial_id").to_pylist(), points.column("metric").to_pylist(),
                                        _micros(points.column("ts")), values):
        if value is None:
            continue
        line = lines.setdefault((trial, metric), _Line([], []))
        line.seconds.append((ts - origins[trial]) / _MICROS_PER_SECOND)
        line.values.append(value)
    return lines


def _downsampled_lines(buckets: pa.Table, origin_us: int, bucket: timedelta) -> dict[tuple[int, str], _Line]:
    """Each bucket drawn at its middle: its mean as the line, its min and max as a band."""
    lines: dict[tuple[int, str], _Line] = {}
    half = (bucket // timedelta(microseconds=1)) / 2
    for trial, metric, start, mean, low, high in zip(
            buckets.column("trial_id").to_pylist(), buckets.column("metric").to_pylist(),
            _micros(buckets.column("bucket")), buckets.column("mean").to_pylist(),
            buckets.column("min").to_pylist(), buckets.column("max").to_pylist()):
        if mean is None:  # a bucket of non-numeric values only
            continue
        line = lines.setdefault((trial, metric), _Line([], [], [], []))
        line.seconds.append((start + half - origin_us) / _MICROS_PER_SECOND)
        line.values.append(mean)
        assert line.low is not None and line.high is not None
        line.low.append(low)
        line.high.append(high)
    return lines


def _micros(column: pa.ChunkedArray) -> list[int]:
    """Timestamps as integer microseconds since the epoch (whatever their unit and zone)."""
    return list(column.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_pylist())


def _numeric_view(column: pa.ChunkedArray) -> list[float | None]:
    """A telemetry ``value`` column as floats, None where a value is not a number (or is NaN)."""
    if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)
            or pa.types.is_boolean(column.type)):
        return [None] * len(column)
    floats = column.cast(pa.float64())
    return list(pc.if_else(pc.is_nan(floats), None, floats).to_pylist())


def _draw_telemetry(figure: Figure, experiment_id: str, metrics: list[str],
                    lines: dict[tuple[int, str], _Line]) -> None:
    trials = sorted({trial for trial, _ in lines})
    colours = _colours(len(trials))
    labelled = len(trials) <= MAX_LEGEND_TRIALS
    axes = figure.subplots(len(metrics), 1, sharex=True, squeeze=False)[:, 0]
    for ax, metric in zip(axes, metrics):
        for colour, trial in zip(colours, trials):
            line = lines.get((trial, metric))
            if line is None:
                continue
            ax.plot(line.seconds, line.values, color=colour, linewidth=1, label=f"trial {trial}")
            if line.low is not None and line.high is not None:
                ax.fill_between(line.seconds, line.low, line.high, color=colour, alpha=0.2, linewidth=0)
        ax.set_ylabel(metric)
        ax.grid(True, alpha=0.3)
    axes[-1].set_xlabel("seconds since the trial's first point")
    downsampled = any(line.low is not None for line in lines.values())
    title = f"{experiment_id}: telemetry of {len(trials)} trial{'s' if len(trials) != 1 else ''}"
    if downsampled:
        title += " (busy trials: bucket mean, min-max band)"
    if not labelled:
        title += "; pass trial_ids to name them"
    figure.suptitle(title)
    if labelled:
        handles, labels = axes[0].get_legend_handles_labels()
        for ax in axes[1:]:  # a trial may have no point of the first metric
            for handle, label in zip(*ax.get_legend_handles_labels()):
                if label not in labels:
                    handles.append(handle)
                    labels.append(label)
        order = sorted(range(len(labels)), key=lambda i: int(labels[i].split()[-1]))
        figure.legend([handles[i] for i in order], [labels[i] for i in order], loc="outside right upper")


def _colours(n: int) -> list[Any]:
    """Distinct colours for n lines: matplotlib's default cycle up to 10, a 20-colour map up to 20, then a ramp."""
    if n <= 10:
        return [f"C{i}" for i in range(n)]
    colormaps = importlib.import_module("matplotlib").colormaps
    if n <= 20:
        return [colormaps["tab20"](i) for i in range(n)]
    return [colormaps["viridis"](i / (n - 1)) for i in range(n)]


def _metric_list(metrics: Any) -> list[str]:
    names = distinct_list(metrics, "plot metrics", "metric names", lambda m: check_name(m, "plot metric"))
    if not names:
        raise InvalidValueError("plot metrics is empty: name at least one metric to plot")
    return names


def _trial_list(trial_ids: Any) -> list[int] | None:
    """The trial ids asked for, each once; None for every trial."""
    if trial_ids is None:
        return None
    chosen = distinct_list(trial_ids, "plot trial_ids", "trial ids", lambda t: checked_id(t, "plot trial id"))
    if not chosen:
        raise InvalidValueError("plot trial_ids is empty: pass None for every trial, or name some")
    return chosen


def _refuse_unknown_trials(experiment: ExperimentData, chosen: list[int] | None, extents: pa.Table) -> None:
    """Refuse trial ids the experiment has not, naming them all, before anything is drawn.

    A trial with points in ``extents`` is stored; only the others are looked
    up, one ``trial`` read each (usually none), so the check does not read
    every trial of a large experiment.
    """
    with_points = set(extents.column("trial_id").to_pylist())
    missing = []
    for trial in chosen or []:
        if trial not in with_points:
            try:
                experiment.trial(trial)
            except UnknownObjectError:
                missing.append(trial)
    if missing:
        raise UnknownObjectError(
            f"experiment {experiment.experiment_id!r} has no trial {', '.join(map(str, missing))}: nothing plotted"
        )


def _refuse_metrics_without_points(experiment: ExperimentData, metrics: list[str],
                                   lines: dict[tuple[int, str], _Line], trial_ids: list[int] | None) -> None:
    """An unknown (or misspelt) metric, or one of no numbers, would be an empty panel: refuse it, naming it."""
    drawn = {metric for _, metric in lines}
    missing = [metric for metric in metrics if metric not in drawn]
    if missing:
        where = "" if trial_ids is None else f" in trial{'s' if len(trial_ids) > 1 else ''} " + \
            ", ".join(map(str, trial_ids))
        raise InvalidValueError(
            f"experiment {experiment.experiment_id!r} has no numeric telemetry point of metric "
            f"{', '.join(map(repr, missing))}{where} in the time range asked for: nothing plotted"
        )


# ---------------------------------------------------------------- results


def plot_results(experiment: ExperimentData, path: str | os.PathLike[str], *, x: str, y: str,
                 size_px: tuple[int, int] = (960, 540)) -> Path:
    """Write a PNG of one ``results_table`` column against another, one point per trial; return its path.

    See ``results_figure`` for what is drawn and what is refused. The file
    is exactly ``size_px`` (width, height) pixels; nothing is written when an
    argument is refused.
    """
    target = _checked_target(path)
    return _save_png(results_figure(experiment, x=x, y=y, size_px=size_px), target)


@_literal_text
def results_figure(experiment: ExperimentData, *, x: str, y: str, size_px: tuple[int, int] = (960, 540)) -> Figure:
    """The figure ``plot_results`` saves, for a notebook or further drawing.

    ``x`` and ``y`` name columns of ``experiment.results_table``, typically
    ``x="config.<tunable>"`` and ``y="result.<metric>"``; ``y`` must be
    numeric. Each trial with a number in ``y`` is one point, coloured by
    status. A numeric ``x`` is an axis; any other (strings, bools, mixed
    values) is a category per distinct value, sorted, with the points of a
    category spread a little sideways so they do not hide each other. When
    ``y`` is one of the experiment's objectives, its best trials (by
    ``best()`` on that objective) are marked with a star.
    """
    figure_class = _matplotlib_figure()
    width, height = _checked_size(size_px)
    table = experiment.results_table
    x_field, y_field = (_results_field(experiment, table, name, axis) for name, axis in ((x, "x"), (y, "y")))
    y_values = _numeric_column(experiment, table, y_field)
    numbered = [(i, value) for i, value in enumerate(y_values) if value is not None]
    if not numbered:
        raise InvalidValueError(f"experiment {experiment.experiment_id!r}: no trial has a number in {y!r}: "
                                "nothing plotted")
    rows = table.take(pa.array([i for i, _ in numbered], pa.int64()))
    figure = _new_figure(figure_class, width, height)
    ax = figure.subplots()
    positions = _x_positions(ax, x_field, rows.column(x_field.name))
    _draw_results(ax, rows, positions, [value for _, value in numbered], _best_trials(experiment, y))
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.grid(True, alpha=0.3)
    figure.suptitle(f"{experiment.experiment_id}: {y} by {x}")
    return figure


def _results_field(experiment: ExperimentData, table: pa.Table, name: Any, axis: str) -> pa.Field:
    check_name(name, f"plot {axis} column")
    if name not in table.column_names:
        known = [column for column in table.column_names if column.startswith(("config.", "result."))]
        raise InvalidValueError(
            f"experiment {experiment.experiment_id!r} results have no column {name!r} to plot as {axis}; "
            f"its config and result columns: {', '.join(known) or 'none'}"
        )
    field: pa.Field = table.schema.field(name)
    return field


def _numeric_column(experiment: ExperimentData, table: pa.Table, field: pa.Field) -> list[float | None]:
    if not (pa.types.is_integer(field.type) or pa.types.is_floating(field.type)):
        raise InvalidValueError(
            f"experiment {experiment.experiment_id!r}: column {field.name!r} holds {field.type} values "
            f"({'mixed types' if (field.metadata or {}).get(ENCODING_KEY) else 'not numbers'}), "
            "a results plot needs numbers for y"
        )
    return _numeric_view(table.column(field.name))


def _x_positions(ax: Axes, field: pa.Field, column: pa.ChunkedArray) -> list[Any]:
    """Where each point sits on the x axis: numbers and times as they are, anything else as labelled categories."""
    if pa.types.is_integer(field.type) or pa.types.is_floating(field.type):
        return [float("nan") if v is None else float(v) for v in column.to_pylist()]
    if pa.types.is_timestamp(field.type):
        return list(column.to_pylist())  # matplotlib puts datetimes on a date axis
    values = ["(none)" if v is ABSENT or v is None else v for v in column_to_python(field, column)]
    categories = sorted({_category_key(v): v for v in values}.items())
    index = {key: i for i, (key, _) in enumerate(categories)}
    seen: dict[int, int] = {}
    positions = []
    for value in values:
        category = index[_category_key(value)]
        nth = seen[category] = seen.get(category, -1) + 1
        positions.append(category + _SPREAD[nth % len(_SPREAD)])
    ax.set_xticks(range(len(categories)), [_label(v) for _, v in categories])
    return positions


def _category_key(value: Any) -> tuple[str, Any]:
    """Sorts values of one type among themselves (False before True, 2 before 10), types apart."""
    if isinstance(value, (bool, int, float, str)):
        return (type(value).__name__, value)
    return (type(value).__name__, json.dumps(value, sort_keys=True, default=str))


def _label(value: Any) -> str:
    if isinstance(value, str):
        return value
    return repr(value) if isinstance(value, (bool, int, float)) else json.dumps(value, default=str)


def _best_trials(experiment: ExperimentData, y: str) -> tuple[set[int], str] | None:
    """The trials best on ``y`` when it is an objective (with its direction), else None."""
    metric = y.removeprefix("result.")
    direction = experiment.objectives.get(metric) if y.startswith("result.") else None
    if direction is None:
        return None
    best = experiment.best({metric: direction})
    return set(best.column("trial_id").to_pylist()), direction


def _draw_results(ax: Axes, rows: pa.Table, positions: list[Any], values: list[float],
                  best: tuple[set[int], str] | None) -> None:
    statuses = rows.column("status").to_pylist()
    trial_ids = rows.column("trial_id").to_pylist()
    for n, status in enumerate(sorted(set(statuses))):
        chosen = [i for i, s in enumerate(statuses) if s == status]
        ax.scatter([positions[i] for i in chosen], [values[i] for i in chosen], s=28, color=f"C{n}",
                   label=status.lower(), zorder=2, rasterized=len(chosen) > _RASTER_ABOVE)
    if best is not None:
        marked = [i for i, trial in enumerate(trial_ids) if trial in best[0]]
        if marked:
            ax.scatter([positions[i] for i in marked], [values[i] for i in marked], s=220, marker="*",
                       facecolor="none", edgecolor="black", linewidth=1.2, label=f"best ({best[1]})", zorder=3)
    ax.legend(loc="best")


# ---------------------------------------------------------------- optimization history and Pareto front


@_literal_text
def history_figure(experiment: ExperimentData, *, size_px: tuple[int, int] = (960, 400)) -> Figure:
    """Each objective of the SUCCEEDED trials by trial id, with the best value so far as a step line.

    One panel per objective (its direction in the label). A panel says so
    when no trial has a number for its objective yet. Many trials are drawn
    as one raster layer inside the vector figure (``_RASTER_ABOVE``), so the
    figure's size does not grow with them.
    """
    figure_class = _matplotlib_figure()
    width, height = _checked_size(size_px)
    objectives = experiment.objectives
    if not objectives:
        raise InvalidValueError(f"experiment {experiment.experiment_id!r} has no objectives: "
                                "no optimization history to draw")
    table = experiment.results_table
    figure = _new_figure(figure_class, width, height)
    axes = figure.subplots(len(objectives), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (metric, direction) in zip(axes, objectives.items()):
        trial_ids, values = _succeeded_numbers(table, f"result.{metric}")
        ax.set_ylabel(f"{metric} ({direction})")
        ax.grid(True, alpha=0.3)
        if not values:
            ax.text(0.5, 0.5, "no result yet", transform=ax.transAxes, ha="center", va="center")
            continue
        ax.plot(trial_ids, values, linestyle="none", marker="o", markersize=3, color="C0", label=metric,
                rasterized=len(values) > _RASTER_ABOVE)
        best = list(itertools.accumulate(values, min if direction == "min" else max))
        ax.step(trial_ids, best, where="post", color="C1", linewidth=1.5, label="best so far")
        ax.legend(loc="best")
    axes[-1].set_xlabel("trial id")
    return figure


@_literal_text
def pareto_figure(experiment: ExperimentData, *, size_px: tuple[int, int] = (640, 480)) -> Figure:
    """The SUCCEEDED trials on the experiment's two objectives, the Pareto front (``best()``) joined up.

    Refused (InvalidValueError) unless the experiment has exactly two
    objectives.
    """
    figure_class = _matplotlib_figure()
    width, height = _checked_size(size_px)
    objectives = experiment.objectives
    if len(objectives) != 2:
        raise InvalidValueError(f"experiment {experiment.experiment_id!r} has {len(objectives)} objective(s): "
                                "a Pareto front is drawn for exactly two")
    (first, first_direction), (second, second_direction) = objectives.items()
    results = experiment.results_table
    table = results.filter(pc.equal(results["status"], "SUCCEEDED"))
    front = experiment.best()
    figure = _new_figure(figure_class, width, height)
    ax = figure.subplots()
    everyone = _pairs(table, first, second)
    ax.scatter([x for x, _ in everyone], [y for _, y in everyone], color="0.6", s=12, label="trials",
               rasterized=len(everyone) > _RASTER_ABOVE)
    best = _pairs(front, first, second)
    ax.scatter([x for x, _ in best], [y for _, y in best], color="C3", s=30, label="Pareto front", zorder=3)
    ax.plot([x for x, _ in best], [y for _, y in best], color="C3", linewidth=1, drawstyle="steps-post")
    ax.set_xlabel(f"{first} ({first_direction})")
    ax.set_ylabel(f"{second} ({second_direction})")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best")
    return figure


def _succeeded_numbers(table: pa.Table, column: str) -> tuple[list[int], list[float]]:
    """Trial ids and values of ``column`` for the SUCCEEDED trials holding a number there, by trial id."""
    if column not in table.column_names:
        return [], []
    pairs = [(trial, value) for trial, status, value in zip(table.column("trial_id").to_pylist(),
                                                             table.column("status").to_pylist(),
                                                             _numeric_view(table.column(column)))
             if status == "SUCCEEDED" and value is not None]
    return [trial for trial, _ in pairs], [value for _, value in pairs]


def _pairs(table: pa.Table, first: str, second: str) -> list[tuple[float, float]]:
    """(first, second) result values of each row holding a number in both."""
    xs, ys = (_numeric_or_empty(table, f"result.{name}") for name in (first, second))
    return [(x, y) for x, y in zip(xs, ys) if x is not None and y is not None]


def _numeric_or_empty(table: pa.Table, column: str) -> list[float | None]:
    """A results column as floats (None where no number), or all None when the column is missing."""
    if column not in table.column_names:
        return [None] * table.num_rows
    return _numeric_view(table.column(column))


# ---------------------------------------------------------------- figures and files


def _matplotlib_figure() -> type[Figure]:
    """matplotlib's Figure class, or MissingDependencyError saying what to install."""
    try:
        importlib.import_module("matplotlib")  # first: a stub in sys.modules must not be bypassed
        figure_module = importlib.import_module("matplotlib.figure")
    except ImportError as exc:
        raise MissingDependencyError(
            "plots need matplotlib, an optional extra: pip install 'mlos_store[plot]'"
        ) from exc
    figure_class: type[Figure] = figure_module.Figure
    return figure_class


def _new_figure(figure_class: type[Figure], width: int, height: int) -> Figure:
    """A figure of exactly width x height pixels on its own Agg canvas (nothing global is touched)."""
    canvas_class = importlib.import_module("matplotlib.backends.backend_agg").FigureCanvasAgg
    figure = figure_class(figsize=(width / _DPI, height / _DPI), dpi=_DPI, layout="constrained")
    canvas_class(figure)
    return figure


def warming_figure() -> Figure:
    """A small figure drawn as every figure here is (constrained layout, text, a line, a band, a legend).

    Making it, and writing it, loads what a process's first figure would
    otherwise load (matplotlib, its fonts, the glyphs of digits and letters):
    a server draws it at start so its first request does not pay for that.
    """
    figure = _new_figure(_matplotlib_figure(), 600, 300)
    ax = figure.subplots()
    ax.plot([0.0, 1.0, 2.0], [1.0, 0.5, 2.0], label="trial 0123456789")
    ax.fill_between([0.0, 1.0, 2.0], [0.5, 0.0, 1.5], [1.5, 1.0, 2.5], alpha=0.2, linewidth=0)
    ax.scatter([1.0], [1.0], rasterized=True)
    ax.set_xlabel("abcdefghijklmnopqrstuvwxyz (-.,:)")
    ax.set_ylabel("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    ax.grid(True, alpha=0.3)
    figure.suptitle("telemetry")
    figure.legend(loc="outside right upper")
    return figure


def _checked_size(size_px: Any) -> tuple[int, int]:
    low, high = _SIZE_RANGE
    if (not isinstance(size_px, (tuple, list)) or len(size_px) != 2
            or not all(isinstance(n, int) and not isinstance(n, bool) and low <= n <= high for n in size_px)):
        raise InvalidValueError(f"plot size_px must be (width, height) in pixels, each an int from {low} to {high}; "
                                f"got {size_px!r}")
    return size_px[0], size_px[1]


def _checked_target(path: str | os.PathLike[str]) -> Path:
    target = Path(path)
    if target.is_dir():
        raise InvalidValueError(f"plot path {str(target)!r} is a folder; name the PNG file to write")
    if not target.parent.is_dir():
        raise InvalidValueError(f"plot path {str(target)!r}: folder {str(target.parent)!r} does not exist")
    return target


def _save_png(figure: Figure, target: Path) -> Path:
    """Render to a temporary file beside ``target`` and move it into place: no half-written PNG, ever."""
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            figure.savefig(out, format="png", dpi=_DPI)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target
