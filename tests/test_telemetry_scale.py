"""Telemetry at scale: input forms, the many-trials bulk path and streaming reads."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest
from conftest import T0

from mlos_store import Experiment, InvalidValueError, QueryError, Status, Storage, Trial, UnknownObjectError
from mlos_store.convert import telemetry_from_table

UTC_US = pa.timestamp("us", tz="UTC")
SEC = timedelta(seconds=1)
NAN = float("nan")

#: One value of each type the store keeps, with a metric name saying which.
TYPED_VALUES = [("int", 42), ("big_int", 2**62), ("float", 0.25), ("neg_zero", -0.0), ("nan", NAN),
                ("inf", math.inf), ("neg_inf", -math.inf), ("true", True), ("false", False), ("str", "idle"),
                ("empty_str", ""), ("none", None)]


def same_values(got: list[Any], want: list[Any]) -> bool:
    """Equal values of equal types; NaN equals NaN and -0.0 differs from 0.0."""
    return len(got) == len(want) and all(
        type(g) is type(w) and (repr(g) == repr(w) if isinstance(w, float) else g == w) for g, w in zip(got, want))


def tables_equal(a: pa.Table, b: pa.Table) -> bool:
    """Same schema (metadata included) and same cells, NaN equal to NaN and -0.0 apart from 0.0."""
    return a.schema.equals(b.schema, check_metadata=True) and all(
        [repr(v) for v in a.column(name).to_pylist()] == [repr(v) for v in b.column(name).to_pylist()]
        for name in a.column_names)


def running_trial(experiment: Experiment) -> Trial:
    trial = experiment.new_trial({})
    trial.update(Status.RUNNING, T0)
    return trial


def bulk_table(rows: list[tuple[int, datetime, str, Any]], value_type: pa.DataType | None = None) -> pa.Table:
    return pa.table({
        "trial_id": pa.array([r[0] for r in rows], pa.int64()),
        "ts": pa.array([r[1] for r in rows], UTC_US),
        "metric": pa.array([r[2] for r in rows], pa.string()),
        "value": pa.array([r[3] for r in rows], value_type),
    })


def stored(experiment: Experiment) -> list[tuple[int, datetime, str, Any]]:
    table = experiment.telemetry_table()
    ids = table.column("trial_id").to_pylist()
    return [(i, *point) for i, point in zip(ids, telemetry_from_table(table))]


# ---------------------------------------------------------------- the three input forms


def test_tuples_table_batch_and_reader_store_identical_data(experiment: Experiment) -> None:
    """Every form of one batch leaves exactly the same rows (values, types, order) in the store."""
    points = [(T0 + (i % 7) * SEC, f"m{i % 3}", float(i) / 3) for i in range(40)]
    table = pa.table({"ts": pa.array([p[0] for p in points], UTC_US), "metric": [p[1] for p in points],
                      "value": [p[2] for p in points]})
    forms = [points, table, table.to_batches()[0], table.to_reader(max_chunksize=6)]
    trials = [running_trial(experiment) for _ in forms]
    for trial, form in zip(trials, forms):
        trial.update_telemetry(Status.RUNNING, T0, form)
    tables = [experiment.telemetry_table(trial.trial_id).drop_columns(["trial_id"]) for trial in trials]
    assert tables[0].num_rows == 21  # 7 timestamps x 3 metrics; repeats within the batch kept once
    for other in tables[1:]:
        assert other.equals(tables[0], check_metadata=True)


# ---------------------------------------------------------------- naive and aware timestamps


@pytest.mark.parametrize("first_naive", [True, False], ids=["naive-then-aware", "aware-then-naive"])
def test_batch_mixing_naive_and_aware_timestamps_is_refused_and_nothing_stored(experiment: Experiment,
                                                                               first_naive: bool) -> None:
    trial = running_trial(experiment)
    naive, aware = datetime(2026, 1, 1, 12), T0
    rows = [(naive if first_naive else aware, "m", 1.0), (aware, "m", 2.0), (naive, "m", 3.0)]
    history = trial.status_history()
    with pytest.raises(InvalidValueError, match=r"row \d timestamp .* naive and aware timestamps cannot be mixed"):
        trial.update_telemetry(Status.SUCCEEDED, T0 + SEC, rows)
    assert experiment.load_telemetry(trial.trial_id) == []
    assert trial.status_history() == history


def test_batch_of_only_naive_timestamps_is_accepted_as_local_time(new_york_local_time: None,
                                                                  experiment: Experiment) -> None:
    trial = running_trial(experiment)
    trial.update_telemetry(Status.RUNNING, T0, [(datetime(2026, 1, 1, 12), "m", 1.0),
                                                (datetime(2026, 1, 1, 12, 0, 1), "m", 2.0)])
    assert [ts for ts, _, _ in experiment.load_telemetry(trial.trial_id)] == [
        datetime(2026, 1, 1, 17, tzinfo=UTC), datetime(2026, 1, 1, 17, 0, 1, tzinfo=UTC)]


# ---------------------------------------------------------------- the many-trials bulk path


def test_bulk_ingest_stores_each_trials_points(experiment: Experiment) -> None:
    first, second = running_trial(experiment), running_trial(experiment)
    experiment.ingest_telemetry(bulk_table([
        (second.trial_id, T0 + SEC, "cpu", 2.0), (first.trial_id, T0, "cpu", 1.0),
        (second.trial_id, T0, "mem", 3.0), (first.trial_id, T0 + SEC, "cpu", 4.0)]))
    assert experiment.load_telemetry(first.trial_id) == [(T0, "cpu", 1.0), (T0 + SEC, "cpu", 4.0)]
    assert experiment.load_telemetry(second.trial_id) == [(T0, "mem", 3.0), (T0 + SEC, "cpu", 2.0)]
    assert first.status == second.status == Status.RUNNING  # no status is recorded by the bulk path


def test_bulk_ingest_is_idempotent_with_overlapping_batches(experiment: Experiment) -> None:
    """Batches overlapping each other and the points already stored add only new points; first value stays."""
    trials = [running_trial(experiment).trial_id for _ in range(3)]
    experiment.ingest_telemetry(bulk_table([(t, T0 + i * SEC, "m", float(t * 10 + i))
                                            for t in trials[:2] for i in range(3)]))
    experiment.ingest_telemetry(bulk_table(
        [(t, T0 + i * SEC, "m", -1.0) for t in trials for i in range(1, 5)]  # overlaps trials 1-2, new for 3
        + [(trials[2], T0 + SEC, "m", -2.0)]))  # a repeat within the batch: the first row wins
    experiment.ingest_telemetry(bulk_table([(trials[0], T0, "m", -3.0)]))  # only old points
    got = stored(experiment)
    expected = sorted(
        [(t, T0 + i * SEC, "m", float(t * 10 + i)) for t in trials[:2] for i in range(3)]
        + [(t, T0 + i * SEC, "m", -1.0) for t in trials[:2] for i in range(3, 5)]
        + [(trials[2], T0 + i * SEC, "m", -1.0) for i in range(1, 5)])
    assert got == expected


def test_bulk_batch_in_point_order_still_skips_stored_points(experiment: Experiment) -> None:
    """The lean statement for ordered batches (no repeats to find) still anti-joins stored points."""
    trials = [running_trial(experiment).trial_id for _ in range(2)]
    experiment.ingest_telemetry(bulk_table([(t, T0 + i * SEC, m, 1.0) for t in trials for i in range(2)
                                            for m in ("cpu", "mem")]))
    experiment.ingest_telemetry(bulk_table([(t, T0 + i * SEC, m, 2.0) for t in trials for i in range(1, 3)
                                            for m in ("cpu", "mem")]))
    assert stored(experiment) == sorted(
        [(t, T0 + i * SEC, m, 1.0) for t in trials for i in range(2) for m in ("cpu", "mem")]
        + [(t, T0 + 2 * SEC, m, 2.0) for t in trials for m in ("cpu", "mem")])


REPEATS_AMONG_ORDERED_ROWS = [
    pytest.param([(0, "a", 1.0), (0, "b", 2.0), (0, "a", 3.0)], id="metric-back-at-same-ts"),
    pytest.param([(0, "a", 1.0), (1, "a", 2.0), (0, "a", 3.0)], id="ts-back"),
    pytest.param([(0, "a", 1.0), (0, "a", 3.0), (1, "b", 2.0)], id="adjacent-repeat"),
]


@pytest.mark.parametrize("rows", REPEATS_AMONG_ORDERED_ROWS)
def test_repeats_in_an_almost_ordered_batch_keep_the_first_row(experiment: Experiment,
                                                                 rows: list[tuple[int, str, float]]) -> None:
    """A batch that is nearly in point order but repeats a point is not mistaken for one without repeats."""
    per_trial, bulk = running_trial(experiment), running_trial(experiment)
    per_trial.update_telemetry(Status.RUNNING, T0, [(T0 + s * SEC, m, v) for s, m, v in rows])
    experiment.ingest_telemetry(bulk_table([(bulk.trial_id, T0 + s * SEC, m, v) for s, m, v in rows]))
    first = sorted({(T0 + s * SEC, m): v for s, m, v in reversed(rows)}.items())
    for trial in (per_trial, bulk):
        assert sorted(((ts, m), v) for ts, m, v in experiment.load_telemetry(trial.trial_id)) == first


def test_bulk_and_per_trial_ingest_share_point_identity(experiment: Experiment) -> None:
    trial = running_trial(experiment)
    trial.update_telemetry(Status.RUNNING, T0, [(T0, "m", 1.0)])
    experiment.ingest_telemetry(bulk_table([(trial.trial_id, T0, "m", 9.0), (trial.trial_id, T0 + SEC, "m", 2.0)]))
    trial.update_telemetry(Status.RUNNING, T0, [(T0 + SEC, "m", 8.0)])
    assert experiment.load_telemetry(trial.trial_id) == [(T0, "m", 1.0), (T0 + SEC, "m", 2.0)]


def test_bulk_ingest_accepts_ended_trials(experiment: Experiment) -> None:
    """A harness that buffers flushes after its trials ended: their points are taken, the status kept."""
    trial = running_trial(experiment)
    trial.update(Status.SUCCEEDED, T0 + SEC, {"score": 1.0})
    experiment.ingest_telemetry(bulk_table([(trial.trial_id, T0, "m", 1.0)]))
    assert experiment.load_telemetry(trial.trial_id) == [(T0, "m", 1.0)]
    assert trial.status == Status.SUCCEEDED


def test_bulk_ingest_of_unknown_trial_is_refused_and_nothing_stored(storage: Storage, experiment: Experiment) -> None:
    known = running_trial(experiment)
    with storage.experiment(experiment_id="other", trial_id=100, root_env_config="", description="",
                            tunables={}, opt_targets={}) as other:
        foreign = other.new_trial({}).trial_id
    batch = bulk_table([(known.trial_id, T0, "m", 1.0), (foreign, T0, "m", 2.0), (7777, T0, "m", 3.0)])
    with pytest.raises(UnknownObjectError, match=rf"experiment 'exp' has no trial {foreign}, 7777: "
                                                 "no telemetry was stored") as raised:
        experiment.ingest_telemetry(batch)
    assert isinstance(raised.value, KeyError)
    assert experiment.telemetry_table().num_rows == 0


@pytest.mark.parametrize(("table", "match"), [
    pytest.param(pa.table({"ts": pa.array([T0], UTC_US), "metric": ["m"], "value": [1.0]}),
                 re.escape("columns ['ts', 'metric', 'value'], expected exactly ['trial_id', 'ts', 'metric', "
                           "'value']"), id="no-trial-id"),
    pytest.param(pa.table({"trial": [1], "ts": pa.array([T0], UTC_US), "metric": ["m"], "value": [1.0]}),
                 "'trial'", id="renamed-trial-id"),
    pytest.param(pa.table({"trial_id": [1], "ts": pa.array([T0], UTC_US), "metric": ["m"], "value": [1.0],
                           "host": ["h"]}), "'host'", id="extra-column"),
    pytest.param(pa.table({"trial_id": ["1"], "ts": pa.array([T0], UTC_US), "metric": ["m"], "value": [1.0]}),
                 "'trial_id' is string, expected an integer", id="trial-id-str"),
    pytest.param(pa.table({"trial_id": [1.0], "ts": pa.array([T0], UTC_US), "metric": ["m"], "value": [1.0]}),
                 "'trial_id' is double, expected an integer", id="trial-id-float"),
    pytest.param(pa.table({"trial_id": pa.array([1, None], pa.int64()), "ts": pa.array([T0, T0], UTC_US),
                           "metric": ["m", "m"], "value": [1.0, 2.0]}), "'trial_id' holds nulls", id="trial-id-null"),
    pytest.param(pa.table({"trial_id": pa.array([2**64 - 1], pa.uint64()), "ts": pa.array([T0], UTC_US),
                           "metric": ["m"], "value": [1.0]}), "does not fit in 64 bits", id="trial-id-too-big"),
    pytest.param(pa.table({"trial_id": [1], "ts": ["2026-01-01"], "metric": ["m"], "value": [1.0]}),
                 "'ts' is string", id="ts-str"),
    pytest.param(pa.table({"trial_id": [1], "ts": pa.array([T0], UTC_US), "metric": [""], "value": [1.0]}),
                 "'metric' holds null or empty", id="metric-empty"),
    pytest.param(pa.table({"trial_id": [1], "ts": pa.array([T0], UTC_US), "metric": ["m"], "value": [[1.0]]}),
                 "'value'", id="value-list"),
])
def test_malformed_bulk_batch_is_refused_and_nothing_stored(experiment: Experiment, table: pa.Table,
                                                            match: str) -> None:
    running_trial(experiment)
    with pytest.raises(InvalidValueError, match=match):
        experiment.ingest_telemetry(table)
    assert experiment.telemetry_table().num_rows == 0


@pytest.mark.parametrize("points", [[(1, T0, "m", 1.0)], {"trial_id": [1]}, "points"], ids=["tuples", "dict", "str"])
def test_bulk_ingest_takes_only_arrow(experiment: Experiment, points: Any) -> None:
    running_trial(experiment)
    with pytest.raises(InvalidValueError, match="must be an Arrow table, record batch or reader"):
        experiment.ingest_telemetry(points)


def test_bulk_ingest_of_every_arrow_form_and_an_empty_batch(experiment: Experiment) -> None:
    ids = [running_trial(experiment).trial_id for _ in range(3)]
    table = bulk_table([(ids[0], T0, "m", 1.0)])
    experiment.ingest_telemetry(table)
    experiment.ingest_telemetry(bulk_table([(ids[1], T0, "m", 2.0)]).to_batches()[0])
    experiment.ingest_telemetry(bulk_table([(ids[2], T0, "m", 3.0), (ids[2], T0 + SEC, "m", 4.0)])
                                .to_reader(max_chunksize=1))
    experiment.ingest_telemetry(table.slice(0, 0))
    assert [(i, v) for i, _, _, v in stored(experiment)] == [(ids[0], 1.0), (ids[1], 2.0), (ids[2], 3.0),
                                                             (ids[2], 4.0)]


# ---------------------------------------------------------------- type round trips


def test_every_value_type_round_trips_through_tuples_and_bulk_arrow(experiment: Experiment) -> None:
    by_tuples, by_arrow = running_trial(experiment), running_trial(experiment)
    by_tuples.update_telemetry(Status.RUNNING, T0, [(T0, name, value) for name, value in TYPED_VALUES])
    for name, value in TYPED_VALUES:  # an Arrow column has one type: one batch per type
        experiment.ingest_telemetry(bulk_table([(by_arrow.trial_id, T0, name, value)],
                                               pa.null() if value is None else None))
    want = [value for _, value in sorted(TYPED_VALUES)]
    for trial in (by_tuples, by_arrow):
        got = experiment.load_telemetry(trial.trial_id)
        assert [metric for _, metric, _ in got] == sorted(name for name, _ in TYPED_VALUES)
        assert same_values([v for _, _, v in got], want), got


# ---------------------------------------------------------------- streaming reads


@pytest.fixture
def varied(experiment: Experiment) -> list[int]:
    """Three trials: floats only, ints only, and every type; two metrics over five seconds."""
    trials = [running_trial(experiment) for _ in range(3)]
    trials[0].update_telemetry(Status.RUNNING, T0, [(T0 + i * SEC, m, i / 4) for i in range(5) for m in ("a", "b")])
    trials[1].update_telemetry(Status.RUNNING, T0, [(T0 + i * SEC, m, i) for i in range(5) for m in ("a", "c")])
    trials[2].update_telemetry(Status.RUNNING, T0, [(T0 + i * SEC, name, value) for i in range(2)
                                                    for name, value in TYPED_VALUES])
    return [t.trial_id for t in trials]


@pytest.mark.parametrize("filters", [
    pytest.param({}, id="all-mixed"),
    pytest.param({"trial_ids": "floats"}, id="floats"),
    pytest.param({"trial_ids": "ints"}, id="ints"),
    pytest.param({"trial_ids": "ints-and-floats"}, id="ints-and-floats"),
    pytest.param({"metrics": ["str", "empty_str"]}, id="strings"),
    pytest.param({"metrics": "true"}, id="bools"),
    pytest.param({"metrics": "none"}, id="nulls"),
    pytest.param({"metrics": "big_int", "trial_ids": "all"}, id="big-int"),
    pytest.param({"start": T0 + SEC, "end": T0 + 3 * SEC}, id="time-range"),
    pytest.param({"metrics": "nothing"}, id="empty"),
])
@pytest.mark.parametrize("batch_size", [2, 1_000_000])
def test_streaming_read_equals_table_read(experiment: Experiment, varied: list[int], filters: dict[str, Any],
                                          batch_size: int) -> None:
    trial_sets = {"floats": varied[0], "ints": varied[1], "ints-and-floats": varied[:2], "all": varied}
    kwargs: dict[str, Any] = {k: trial_sets[v] if k == "trial_ids" else v for k, v in filters.items()}
    table = experiment.telemetry_table(**kwargs)
    reader = experiment.telemetry_reader(**kwargs, batch_size=batch_size)
    assert isinstance(reader, pa.RecordBatchReader)
    assert reader.schema.equals(table.schema, check_metadata=True)
    batches = list(reader)
    assert all(b.num_rows <= batch_size for b in batches)
    streamed = pa.Table.from_batches(batches, schema=reader.schema)
    assert tables_equal(streamed, table)
    assert same_values([v for *_, v in telemetry_from_table(streamed)], [v for *_, v in telemetry_from_table(table)])


def test_streaming_read_of_many_points_comes_in_batches(experiment: Experiment) -> None:
    ids = [running_trial(experiment).trial_id for _ in range(4)]
    n = 5_000
    experiment.ingest_telemetry(pa.table({
        "trial_id": pa.array([i for i in ids for _ in range(n)], pa.int64()),
        "ts": pa.array([T0 + timedelta(microseconds=k) for _ in ids for k in range(n)], UTC_US),
        "metric": ["m"] * (n * len(ids)), "value": pa.array(range(n * len(ids)), pa.float64())}))
    sizes = [batch.num_rows for batch in experiment.telemetry_reader(batch_size=3_000)]
    assert sum(sizes) == n * len(ids) and len(sizes) >= 7 and max(sizes) <= 3_000
    assert tables_equal(pa.Table.from_batches(experiment.telemetry_reader(ids[1:3], batch_size=3_000)),
                        experiment.telemetry_table(ids[1:3]))


def test_stream_refuses_points_of_a_kind_stored_after_its_layout_was_decided(
    storage: Storage, experiment: Experiment, monkeypatch: pytest.MonkeyPatch,
) -> None:
    trial = running_trial(experiment)
    trial.update_telemetry(Status.RUNNING, T0, [(T0, "m", 1.5)])
    stream = storage.engine.stream

    def stream_after_a_write(*args: Any, **kwargs: Any) -> pa.RecordBatchReader:
        monkeypatch.setattr(storage.engine, "stream", stream)
        trial.update_telemetry(Status.RUNNING, T0, [(T0 + SEC, "m", "text")])
        return stream(*args, **kwargs)

    monkeypatch.setattr(storage.engine, "stream", stream_after_a_write)
    reader = experiment.telemetry_reader()
    with pytest.raises(QueryError, match="new value kind was stored while it was being streamed"):
        reader.read_all()


@pytest.mark.parametrize("batch_size", [0, -1, 1.5, True])
def test_stream_refuses_a_bad_batch_size(experiment: Experiment, batch_size: Any) -> None:
    with pytest.raises(InvalidValueError, match="batch_size must be a positive int"):
        experiment.telemetry_reader(batch_size=batch_size)


def test_stream_refuses_bad_filters_like_the_table_read(experiment: Experiment) -> None:
    with pytest.raises(InvalidValueError, match="trial id must be an int, got str '1'"):
        experiment.telemetry_reader(["1"])  # type: ignore[list-item]
    with pytest.raises(InvalidValueError, match="metric name must be a non-empty str"):
        experiment.telemetry_reader(metrics=[""])


# ---------------------------------------------------------------- appends after the last stored point


def test_batch_starting_at_the_last_stored_timestamp_skips_only_stored_points(experiment: Experiment) -> None:
    """A batch later than every stored point is appended as is; one touching the last timestamp is checked."""
    trial = running_trial(experiment)
    trial.update_telemetry(Status.RUNNING, T0, [(T0, "a", 1.0), (T0 + SEC, "a", 2.0)])
    trial.update_telemetry(Status.RUNNING, T0, [(T0 + SEC, "a", 9.0), (T0 + SEC, "b", 3.0)])  # at the last ts
    trial.update_telemetry(Status.RUNNING, T0, [(T0 + 2 * SEC, "a", 4.0), (T0 + 2 * SEC, "a", 8.0)])  # after it
    trial.update_telemetry(Status.RUNNING, T0, [(T0 - SEC, "a", 0.0), (T0 + 2 * SEC, "a", 7.0)])  # before and at
    assert experiment.load_telemetry(trial.trial_id) == [
        (T0 - SEC, "a", 0.0), (T0, "a", 1.0), (T0 + SEC, "a", 2.0), (T0 + SEC, "b", 3.0), (T0 + 2 * SEC, "a", 4.0)]


def test_points_of_another_trial_do_not_count_as_stored(experiment: Experiment) -> None:
    first, second = running_trial(experiment), running_trial(experiment)
    first.update_telemetry(Status.RUNNING, T0, [(T0 + 5 * SEC, "a", 1.0)])
    second.update_telemetry(Status.RUNNING, T0, [(T0, "a", 2.0), (T0 + 5 * SEC, "a", 3.0)])
    assert experiment.load_telemetry(second.trial_id) == [(T0, "a", 2.0), (T0 + 5 * SEC, "a", 3.0)]


# ---------------------------------------------------------------- the opt-in buffer


def test_buffered_points_are_stored_only_by_flush(experiment: Experiment) -> None:
    first, second = running_trial(experiment), running_trial(experiment)
    buffer = experiment.telemetry_buffer()
    buffer.add(first.trial_id, [(T0, "a", 1.0), (T0 + SEC, "a", 2)])
    buffer.add(second.trial_id, bulk_table([(0, T0, "b", "x")]).drop_columns(["trial_id"]))
    buffer.add(first.trial_id, [(T0, "a", 9.0), (T0, "c", None)])  # a repeat across adds: the first stays
    assert buffer.pending == 5
    assert experiment.telemetry_table().num_rows == 0  # not stored, not visible
    buffer.flush()
    assert buffer.pending == 0
    assert stored(experiment) == [(first.trial_id, T0, "a", 1.0), (first.trial_id, T0, "c", None),
                                  (first.trial_id, T0 + SEC, "a", 2), (second.trial_id, T0, "b", "x")]
    buffer.flush()  # nothing left: stores nothing more
    assert experiment.telemetry_table().num_rows == 4


def test_buffer_refuses_bad_points_when_added_and_flushes_when_its_block_ends(experiment: Experiment) -> None:
    trial = running_trial(experiment)
    with experiment.telemetry_buffer() as buffer:
        with pytest.raises(InvalidValueError, match="row 0 metric"):
            buffer.add(trial.trial_id, [(T0, "", 1.0)])
        with pytest.raises(InvalidValueError, match="trial id must be an int"):
            buffer.add("1", [(T0, "m", 1.0)])  # type: ignore[arg-type]
        buffer.add(trial.trial_id, [(T0, "m", 1.0)])
    assert experiment.load_telemetry(trial.trial_id) == [(T0, "m", 1.0)]
    with pytest.raises(RuntimeError, match="boom"), experiment.telemetry_buffer() as buffer:
        buffer.add(trial.trial_id, [(T0 + SEC, "m", 2.0)])
        raise RuntimeError("boom")
    assert experiment.load_telemetry(trial.trial_id) == [(T0, "m", 1.0)]  # an exception leaves it unflushed


def test_flush_with_an_unknown_trial_stores_nothing_and_keeps_the_buffer(experiment: Experiment) -> None:
    trial = running_trial(experiment)
    buffer = experiment.telemetry_buffer()
    buffer.add(trial.trial_id, [(T0, "m", 1.0)])
    buffer.add(999, [(T0, "m", 2.0)])
    with pytest.raises(UnknownObjectError, match="no trial 999"):
        buffer.flush()
    assert experiment.telemetry_table().num_rows == 0
    assert buffer.pending == 2
