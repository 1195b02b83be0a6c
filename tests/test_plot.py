"""Plots: PNG files of the requested size, drawn from what is stored, refused cleanly on bad input."""

from __future__ import annotations

import struct
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from conftest import T0

from mlos_store import (
    ExperimentData,
    InvalidValueError,
    MissingDependencyError,
    Status,
    Storage,
    StoreError,
    UnknownObjectError,
)
from mlos_store.plot import (
    MAX_POINTS_PER_LINE,
    plot_results,
    plot_telemetry,
    results_figure,
    telemetry_figure,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
BUSY_POINTS = 3 * MAX_POINTS_PER_LINE + 17


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk, after checking the signature."""
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE and head[12:16] == b"IHDR"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


@pytest.fixture(scope="module")
def data() -> Iterator[ExperimentData]:
    """An experiment with telemetry (a small trial, a late one, a busy one) and results of every kind.

    Trial 1: cpu and mem every 0.5 s from T0, and a string metric 'phase'.
    Trial 2: cpu and mem every 1 s from T0 + 60 s. Trial 3: BUSY_POINTS cpu
    points every 10 ms. Results: latency (the objective) and a string note.
    """
    with Storage() as storage:
        exp = storage.experiment(experiment_id="plots", trial_id=1, root_env_config="env.jsonc", description="",
                                 tunables={"threads": 4, "mode": "a", "fast": False},
                                 opt_targets={"latency": "min"})
        with exp:
            runs: list[tuple[dict[str, Any], Status, dict[str, Any] | None]] = [
                ({"threads": 2, "mode": "b"}, Status.SUCCEEDED, {"latency": 5.0, "note": "ok"}),
                ({"threads": 8, "mode": "a", "fast": True}, Status.SUCCEEDED, {"latency": 3.0, "note": "ok"}),
                ({"threads": 4, "mode": "c"}, Status.FAILED, None),
                ({"threads": 6, "mode": "a"}, Status.SUCCEEDED, {"latency": 4.0, "note": "slow"}),
            ]
            trials = []
            for tunables, status, results in runs:
                trial = exp.new_trial(tunables, ts_start=T0)
                trial.update(Status.RUNNING, T0)
                trials.append((trial, status, results))
            small = [(T0 + timedelta(seconds=0.5 * i), metric, float(10 * i + n))
                     for i in range(10) for n, metric in enumerate(["cpu", "mem"])]
            trials[0][0].update_telemetry(Status.RUNNING, T0, [*small, (T0, "phase", "warmup")])
            late = T0 + timedelta(seconds=60)
            trials[1][0].update_telemetry(Status.RUNNING, late, [
                (late + timedelta(seconds=i), metric, float(i)) for i in range(5) for metric in ["cpu", "mem"]])
            stamps = [T0 + timedelta(milliseconds=10 * i) for i in range(BUSY_POINTS)]
            trials[2][0].update_telemetry(Status.RUNNING, T0, pa.table({
                "ts": pa.array(stamps, pa.timestamp("us", tz="UTC")), "metric": ["cpu"] * BUSY_POINTS,
                "value": [float(i % 100) for i in range(BUSY_POINTS)]}))
            for trial, status, results in trials:
                trial.update(status, T0 + timedelta(seconds=120), results)
        yield storage.experiments["plots"]


def xs(line: Any) -> list[Any]:
    """A drawn line's x values as a list (matplotlib types them as any array-like)."""
    return list(line.get_xdata())


def ys(line: Any) -> list[Any]:
    return list(line.get_ydata())


def points_of(collection: Any) -> list[list[float]]:
    """A scatter's points as [[x, y], ...]."""
    return [list(point) for point in collection.get_offsets().tolist()]


def legend_of(ax: Any) -> list[str]:
    """The texts of the axes' legend, which must have one."""
    legend = ax.get_legend()
    assert legend is not None
    return [text.get_text() for text in legend.get_texts()]


def labels_of(ax: Any) -> list[str]:
    return [line.get_label() for line in ax.get_lines()]


def test_telemetry_plot_is_a_png_of_exactly_the_requested_size(data: ExperimentData, tmp_path: Path) -> None:
    path = plot_telemetry(data, tmp_path / "t.png", metrics=["cpu", "mem"], trial_ids=[1, 2], size_px=(641, 379))
    assert path == tmp_path / "t.png"
    assert png_size(path) == (641, 379)
    default = plot_telemetry(data, str(tmp_path / "d.png"), metrics=["cpu"])
    assert png_size(default) == (960, 540)
    from PIL import Image  # comes with matplotlib
    with Image.open(path) as image:
        image.verify()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.png", "t.png"]  # no temporary left behind


def test_telemetry_figure_draws_a_panel_per_metric_and_a_line_per_selected_trial(data: ExperimentData) -> None:
    figure = telemetry_figure(data, metrics=["mem", "cpu"], trial_ids=[2, 1])
    mem, cpu = figure.axes
    assert (mem.get_ylabel(), cpu.get_ylabel()) == ("mem", "cpu")
    assert labels_of(mem) == labels_of(cpu) == ["trial 1", "trial 2"]
    assert [text.get_text() for text in figure.legends[0].get_texts()] == ["trial 1", "trial 2"]
    first, late = cpu.get_lines()
    # x is seconds since each trial's first point: the late trial starts at 0 too
    assert xs(first) == [0.5 * i for i in range(10)]
    assert ys(first) == [float(10 * i) for i in range(10)]
    assert xs(late) == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert ys(mem.get_lines()[0]) == [float(10 * i + 1) for i in range(10)]


def test_telemetry_figure_keeps_to_the_time_range(data: ExperimentData) -> None:
    figure = telemetry_figure(data, metrics=["cpu"], trial_ids=[1], since=T0 + timedelta(seconds=1),
                              until=T0 + timedelta(seconds=3))
    [line] = figure.axes[0].get_lines()
    assert ys(line) == [20.0, 30.0, 40.0, 50.0]  # [since, until): points at 1.0 .. 2.5 s
    assert xs(line) == [0.0, 0.5, 1.0, 1.5]


def test_a_busy_trial_is_drawn_from_the_downsample_not_point_by_point(data: ExperimentData) -> None:
    figure = telemetry_figure(data, metrics=["cpu"], trial_ids=[1, 3])
    small, busy = figure.axes[0].get_lines()
    assert len(xs(small)) == 10  # few points: every one drawn
    drawn = len(ys(busy))
    most = min(MAX_POINTS_PER_LINE, 960)  # a point per pixel column of the default figure, 960 pixels wide
    assert most // 2 < drawn <= most + 1 < BUSY_POINTS
    span = timedelta(milliseconds=10 * (BUSY_POINTS - 1))
    bucket = timedelta(microseconds=-(-span // timedelta(microseconds=1) // most))
    buckets = data.telemetry_downsample(bucket, 3, metrics=["cpu"])
    assert ys(busy) == buckets.column("mean").to_pylist()
    assert sum(buckets.column("count").to_pylist()) == BUSY_POINTS
    assert len(figure.axes[0].collections) == 1  # the busy trial's min-max band, nothing for the small one


def test_a_narrow_figure_draws_a_busy_trial_with_no_more_points_than_pixel_columns(data: ExperimentData) -> None:
    figure = telemetry_figure(data, metrics=["cpu"], trial_ids=[3], size_px=(400, 300))
    [busy] = figure.axes[0].get_lines()
    assert 200 < len(ys(busy)) <= 401


def test_an_unknown_trial_is_refused_even_beside_trials_with_points(data: ExperimentData) -> None:
    with pytest.raises(UnknownObjectError, match=r"experiment 'plots' has no trial 98, 99: nothing plotted"):
        telemetry_figure(data, metrics=["cpu"], trial_ids=[1, 98, 3, 99])
    assert data.telemetry_extents(4).num_rows == 0
    figure = telemetry_figure(data, metrics=["cpu"], trial_ids=[1, 4])  # stored, with no point: drawn without it
    assert len(figure.axes[0].get_lines()) == 1


def test_results_plot_is_a_png_of_exactly_the_requested_size(data: ExperimentData, tmp_path: Path) -> None:
    path = plot_results(data, tmp_path / "r.png", x="config.threads", y="result.latency", size_px=(500, 300))
    assert path == tmp_path / "r.png"
    assert png_size(path) == (500, 300)


def test_results_figure_plots_each_trial_with_a_number_and_marks_the_best(data: ExperimentData) -> None:
    ax = results_figure(data, x="config.threads", y="result.latency").axes[0]
    succeeded, best = ax.collections  # the failed trial has no latency: not drawn
    assert points_of(succeeded) == [[2.0, 5.0], [8.0, 3.0], [6.0, 4.0]]
    assert points_of(best) == [[8.0, 3.0]]
    assert legend_of(ax) == ["succeeded", "best (min)"]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("config.threads", "result.latency")


def test_a_y_that_is_not_an_objective_has_no_best_marker(data: ExperimentData) -> None:
    ax = results_figure(data, x="config.threads", y="trial_id").axes[0]
    failed, succeeded = ax.collections  # one colour per status, by status name
    assert points_of(failed) == [[4.0, 3.0]]
    assert points_of(succeeded) == [[2.0, 1.0], [8.0, 2.0], [6.0, 4.0]]
    assert legend_of(ax) == ["failed", "succeeded"]


@pytest.mark.parametrize(("column", "labels", "offsets"), [
    # trials 1, 2, 4 have a latency (the failed trial's mode 'c' is no category); a category's
    # second point is moved a little sideways so it does not hide the first
    ("config.mode", ["a", "b"], [[1.0, 5.0], [0.0, 3.0], [0.05, 4.0]]),
    ("config.fast", ["False", "True"], [[0.0, 5.0], [1.0, 3.0], [0.05, 4.0]]),
    ("status", ["SUCCEEDED"], [[0.0, 5.0], [0.05, 3.0], [-0.05, 4.0]]),
])
def test_a_categorical_x_gets_one_sorted_category_per_value(data: ExperimentData, column: str, labels: list[str],
                                                            offsets: list[list[float]]) -> None:
    ax = results_figure(data, x=column, y="result.latency").axes[0]
    assert [tick.get_text() for tick in ax.get_xticklabels()] == labels
    assert points_of(ax.collections[0]) == offsets


def test_a_time_x_is_a_date_axis(data: ExperimentData) -> None:
    from matplotlib.dates import date2num

    ax = results_figure(data, x="ts_start", y="result.latency").axes[0]
    day = date2num(T0)  # type: ignore[no-untyped-call]  # matplotlib's untyped converter
    assert points_of(ax.collections[0]) == [[day, latency] for latency in (5.0, 3.0, 4.0)]


REFUSALS = [
    (lambda d, p: plot_telemetry(d, p, metrics=["cpu", "cpu_pcct"]), InvalidValueError, "'cpu_pcct'"),
    (lambda d, p: plot_telemetry(d, p, metrics=["phase"]), InvalidValueError,  # strings only
     "no numeric telemetry point of metric 'phase'"),
    (lambda d, p: plot_telemetry(d, p, metrics=["mem"], trial_ids=[3]), InvalidValueError, "'mem' in trial 3"),
    (lambda d, p: plot_telemetry(d, p, metrics="cpu"), InvalidValueError, "list of metric names"),
    (lambda d, p: plot_telemetry(d, p, metrics=[]), InvalidValueError, "metrics is empty"),
    (lambda d, p: plot_telemetry(d, p, metrics=["cpu"], trial_ids=[1, 99]), UnknownObjectError, "no trial 99"),
    (lambda d, p: plot_telemetry(d, p, metrics=["cpu"], size_px=(0, 540)), InvalidValueError, "size_px"),
    (lambda d, p: plot_results(d, p, x="config.thread", y="result.latency"), InvalidValueError,
     "no column 'config.thread' to plot as x; its config and result columns: config.fast, config.mode"),
    (lambda d, p: plot_results(d, p, x="config.threads", y="result.latency_ms"), InvalidValueError,
     "no column 'result.latency_ms' to plot as y"),
    (lambda d, p: plot_results(d, p, x="config.threads", y="result.note"), InvalidValueError,
     "column 'result.note' holds string values"),
]


@pytest.mark.parametrize(("call", "error", "message"), REFUSALS)
def test_bad_input_is_refused_naming_it_and_nothing_is_written(data: ExperimentData, tmp_path: Path, call: Any,
                                                                error: type[StoreError], message: str) -> None:
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        call(data, tmp_path / "out.png")
    assert list(tmp_path.iterdir()) == []
    existing = tmp_path / "kept.png"
    existing.write_bytes(b"an earlier plot")
    with pytest.raises(error):
        call(data, existing)
    assert existing.read_bytes() == b"an earlier plot"
    assert list(tmp_path.iterdir()) == [existing]


def test_a_missing_folder_is_refused(data: ExperimentData, tmp_path: Path) -> None:
    with pytest.raises(InvalidValueError, match="does not exist"):
        plot_telemetry(data, tmp_path / "nowhere" / "t.png", metrics=["cpu"])
    assert list(tmp_path.iterdir()) == []


def test_without_matplotlib_a_plot_says_what_to_install(data: ExperimentData, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what an interpreter without matplotlib sees
    calls: tuple[Callable[[], Path], ...] = (
        lambda: plot_telemetry(data, tmp_path / "t.png", metrics=["cpu"]),
        lambda: plot_results(data, tmp_path / "r.png", x="config.threads", y="result.latency"))
    for call in calls:
        with pytest.raises(MissingDependencyError, match=r"need matplotlib.*pip install 'mlos_store\[plot\]'") as info:
            call()
        assert isinstance(info.value, ImportError)
    assert list(tmp_path.iterdir()) == []


def test_names_with_dollar_signs_are_drawn_as_written(tmp_path: Path) -> None:
    """matplotlib reads text between two '$' as math; a stored name is drawn as text, even when not valid math."""
    name = "$\\frac$ lat$"
    with Storage(tmp_path / "s.duckdb") as storage:
        with storage.experiment(experiment_id="$exp$", trial_id=1, root_env_config="", description="",
                                tunables={name: 1}, opt_targets={name: "min"}) as exp:
            for x in (1, 2, 3):
                trial = exp.new_trial({name: x}, ts_start=T0)
                trial.update(Status.RUNNING, T0)
                points = [(T0 + timedelta(seconds=i), name, float(i)) for i in range(3)]
                trial.update_telemetry(Status.RUNNING, T0, points)
                trial.update(Status.SUCCEEDED, T0 + timedelta(seconds=9), {name: float(x)})
        data = storage.experiments["$exp$"]
        figure = telemetry_figure(data, metrics=[name])
        assert name in [text.get_text() for ax in figure.axes for text in (ax.title, ax.yaxis.label)]
        png = plot_results(data, tmp_path / "r.png", x=f"config.{name}", y=f"result.{name}")
        assert png_size(png) == (960, 540)
