"""Telemetry at scale: mlos_store against bare DuckDB doing the same work.

Workload: trials of POINTS points each (5 metrics). Each phase runs the
baseline and mlos_store in interleaved rounds and prints the medians and the
ratio baseline rate / store rate (1.00x = as fast as bare DuckDB; time
ratios are store / baseline, so lower is better there).

* per-trial ingest: ``trial.update_telemetry`` (one transaction per trial)
  against bare DuckDB committing the same Arrow rows in the same
  transactions into a bare table.
* the same per-trial ingest against bare DuckDB running the statements the
  store runs per call (read the trial's status and latest point, insert the
  already converted rows): the library's own overhead.
* opt-in buffer: ``Experiment.telemetry_buffer()``, every trial added then
  one ``flush()``, against the same per-trial bare transactions.
* bulk ingest: ``Experiment.ingest_telemetry`` of every trial's points in
  one Arrow table against one bare ``INSERT ... SELECT`` transaction.
* on a store of LARGE trials: one trial's ``telemetry_table`` against the
  raw query on the same table (and on a store 10x smaller, to show it does
  not grow with other trials); ``telemetry_summary`` against the raw
  aggregate; the streaming Parquet export against DuckDB's own partitioned
  ``COPY``, each in a fresh subprocess whose peak RSS is printed.

Stores are opened ``mode="exclusive"`` (one process holding the file, like
the baselines' connections); the shared mode's per-turn cost is measured by
``bench_sharing.py``.

    python benchmarks/bench_telemetry.py [--quick] [--trials N] [--large N] [--points K] [--rounds R]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
from harness import arguments, interleaved, median, ratio_row, table_header

from mlos_store import Experiment, Status, Storage
from mlos_store.catalog import Query, parse_queries
from mlos_store.telemetry import telemetry_rows

BASELINE = {q.name: q for q in parse_queries(Path(__file__).with_name("baseline_telemetry.sql").read_text(),
                                                "benchmarks/baseline_telemetry.sql")}
T0 = datetime(2026, 1, 1, tzinfo=UTC)
METRICS = ("cpu", "mem", "latency", "throughput", "disk")
EXPERIMENT = "bench"
MIB = 1024 * 1024
#: One process works alone, as the bare baselines do: the store holds its file from open to close.
MODE = "exclusive"


def trial_points(points: int) -> pa.Table:
    """One trial's points: POINTS / 5 timestamps 1 ms apart, 5 metrics each."""
    steps = points // len(METRICS)
    return pa.table({
        "ts": pa.array([T0 + timedelta(milliseconds=i) for i in range(steps) for _ in METRICS],
                       pa.timestamp("us", tz="UTC")),
        "metric": pa.array([m for _ in range(steps) for m in METRICS], pa.string()),
        "value": pa.array([float((i * 7919) % 1000) / 10 for i in range(steps * len(METRICS))], pa.float64()),
    })


def many_trials(points: pa.Table, trials: int) -> pa.Table:
    """Every trial's points in one table with a trial_id column, trial by trial."""
    table = pa.concat_tables([points] * trials)
    ids = pa.array([t for t in range(1, trials + 1) for _ in range(points.num_rows)], pa.int64())
    return table.add_column(0, "trial_id", ids)


def raw(con: duckdb.DuckDBPyConnection, query: Query, data: pa.Table | None = None, **params: object) -> object:
    """Run a baseline query on a bare DuckDB connection."""
    if data is not None:
        con.register("incoming", data)
    try:
        if query.kind == "arrow":
            return con.sql(query.sql, params=params or None).to_arrow_table()
        return con.execute(query.sql, params or None).fetchall()
    finally:
        if data is not None:
            con.unregister("incoming")


def raw_connection(path: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path))
    con.execute("SET TimeZone = 'UTC'")
    return con


def new_experiment(storage: Storage) -> Experiment:
    return storage.experiment(experiment_id=EXPERIMENT, trial_id=1, root_env_config="", description="",
                              tunables={"x": 0}, opt_targets={"latency": "min"})


# ---------------------------------------------------------------- ingest


def store_per_trial(path: Path, trials: int, points: pa.Table) -> float:
    with Storage(path, mode=MODE) as storage, new_experiment(storage) as exp:
        running = []
        for i in range(trials):
            trial = exp.new_trial({"x": i})
            trial.update(Status.RUNNING, T0)
            running.append(trial)
        start = time.perf_counter()
        for trial in running:
            trial.update_telemetry(Status.RUNNING, T0, points)
        return time.perf_counter() - start


def baseline_per_trial(path: Path, trials: int, points: pa.Table) -> float:
    con = raw_connection(path)
    raw(con, BASELINE["bare_telemetry_schema"])
    start = time.perf_counter()
    for trial_id in range(1, trials + 1):
        con.begin()
        raw(con, BASELINE["bare_telemetry_insert"], points, experiment_id=EXPERIMENT, trial_id=trial_id)
        con.commit()
    seconds = time.perf_counter() - start
    con.close()
    return seconds


def store_buffered(path: Path, trials: int, points: pa.Table) -> float:
    """The opt-in buffer: every trial's points added, then one flush (one transaction)."""
    with Storage(path, mode=MODE) as storage, new_experiment(storage) as exp:
        ids = [exp.new_trial({"x": i}).trial_id for i in range(trials)]
        start = time.perf_counter()
        with exp.telemetry_buffer() as buffer:
            for trial_id in ids:
                buffer.add(trial_id, points)
        return time.perf_counter() - start


def same_statements_per_trial(path: Path, trials: int, points: pa.Table) -> float:
    """Bare DuckDB running the statements a store call runs (status and latest point, then the insert).

    The rows are converted to the store's value columns once, outside the
    timing: the difference to ``store_per_trial`` is the library's own work.
    """
    rows = telemetry_rows(points, "baseline")
    with Storage(path, mode=MODE) as storage, new_experiment(storage) as exp:
        for i in range(trials):
            exp.new_trial({"x": i}).update(Status.RUNNING, T0)
    con = raw_connection(path)
    start = time.perf_counter()
    for trial_id in range(1, trials + 1):
        con.begin()
        con.execute(BASELINE["raw_trial_state"].sql, {"experiment_id": EXPERIMENT, "trial_id": trial_id}).fetchall()
        raw(con, BASELINE["raw_telemetry_append"], rows, experiment_id=EXPERIMENT, trial_id=trial_id)
        con.commit()
    seconds = time.perf_counter() - start
    con.close()
    return seconds


def store_bulk(path: Path, trials: int, table: pa.Table) -> float:
    with Storage(path, mode=MODE) as storage, new_experiment(storage) as exp:
        for i in range(trials):
            exp.new_trial({"x": i})
        start = time.perf_counter()
        exp.ingest_telemetry(table)
        return time.perf_counter() - start


def baseline_bulk(path: Path, trials: int, table: pa.Table) -> float:
    con = raw_connection(path)
    raw(con, BASELINE["bare_telemetry_schema"])
    start = time.perf_counter()
    con.begin()
    raw(con, BASELINE["bare_telemetry_insert_many"], table, experiment_id=EXPERIMENT)
    con.commit()
    seconds = time.perf_counter() - start
    con.close()
    return seconds


# ---------------------------------------------------------------- reads on a large store


def build_store(path: Path, trials: int, points: pa.Table) -> None:
    """A store of ``trials`` trials of points, ingested in chunks of trials, one transaction each."""
    chunk = 1_000
    with Storage(path, mode=MODE) as storage, new_experiment(storage) as exp:
        for i in range(trials):
            exp.new_trial({"x": i})
        for first in range(0, trials, chunk):
            table = many_trials(points, min(chunk, trials - first))
            ids = pa.compute.add(table.column("trial_id"), first)
            exp.ingest_telemetry(table.set_column(0, "trial_id", ids))


def timed_pair(baseline: Callable[[], object], store: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median seconds of ``repeat`` interleaved runs of each, after one warm-up of each."""
    baseline()
    store()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeat):
        for run, spent in ((baseline, times[0]), (store, times[1])):
            start = time.perf_counter()
            run()
            spent.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def read_phases(path: Path, trials: int, repeat: int) -> dict[str, tuple[float, float]]:
    """(baseline, store) seconds of the one-trial read and the summary on one store file."""
    middle = trials // 2 + 1
    with Storage(path, mode=MODE) as storage:
        exp = new_experiment(storage)
        con = raw_connection(path)  # the same database, opened a second time in this process
        one_trial = timed_pair(
            lambda: raw(con, BASELINE["raw_trial_read"], experiment_id=EXPERIMENT, trial_id=middle),
            lambda: exp.telemetry_table(middle), repeat * 20)
        assert exp.telemetry_table(middle).num_rows == raw(  # type: ignore[attr-defined]
            con, BASELINE["raw_trial_read"], experiment_id=EXPERIMENT, trial_id=middle).num_rows
        summary = timed_pair(lambda: raw(con, BASELINE["raw_summary"], experiment_id=EXPERIMENT),
                             lambda: exp.telemetry_summary(), repeat)
        con.close()
    return {"one-trial read": one_trial, "summary stats": summary}


def export_child(store: str, out: str, which: str) -> None:
    """Run one export in this (fresh) process; print its seconds and peak RSS as JSON."""
    start = time.perf_counter()
    if which == "store":
        with Storage(store, mode=MODE) as storage:
            new_experiment(storage).export_parquet(out)
    else:
        con = raw_connection(Path(store))
        Path(out).mkdir(parents=True)
        raw(con, BASELINE["raw_export"], experiment_id=EXPERIMENT, path=str(Path(out) / "telemetry"))
        con.close()
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def export_phase(path: Path, tmp: Path, which: str) -> dict[str, float]:
    out = tmp / f"export-{which}-{time.monotonic_ns()}"
    result = subprocess.run([sys.executable, __file__, "--export-child", str(path), str(out), which],
                            capture_output=True, text=True, check=True)
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


# ---------------------------------------------------------------- report


def row(phase: str, base: float, store: float, unit: str = "s") -> None:
    ratio_row(phase, base, store, digits=4, unit=unit)


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__, rounds=3)
    parser.add_argument("--trials", type=int, default=1_000, help="trials of the ingest phases")
    parser.add_argument("--large", type=int, default=10_000, help="trials of the store the reads run on")
    parser.add_argument("--points", type=int, default=1_000, help="points per trial (5 metrics)")
    parser.add_argument("--export-child", nargs=3, metavar=("STORE", "OUT", "WHICH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.export_child:
        export_child(*args.export_child)
        return 0
    if args.quick:
        args.trials, args.large, args.points, args.rounds = 20, 50, 500, 1
    points = trial_points(args.points)
    bulk = many_trials(points, args.trials)
    runs: dict[str, dict[str, Callable[[Path], float]]] = {
        "per-trial ingest": {"baseline": lambda p: baseline_per_trial(p, args.trials, points),
                             "store": lambda p: store_per_trial(p, args.trials, points)},
        "per-trial ingest vs bare DuckDB running the same statements": {
            "baseline": lambda p: same_statements_per_trial(p, args.trials, points),
            "store": lambda p: store_per_trial(p, args.trials, points)},
        "opt-in buffer, one flush, vs per-trial transactions": {
            "baseline": lambda p: baseline_per_trial(p, args.trials, points),
            "store": lambda p: store_buffered(p, args.trials, points)},
        "bulk ingest": {"baseline": lambda p: baseline_bulk(p, args.trials, bulk),
                        "store": lambda p: store_bulk(p, args.trials, bulk)},
    }
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)

        def in_fresh_file(number: int, name: str, run: Callable[[Path], float]) -> Callable[[int], float]:
            return lambda round_no: run(tmp / f"{number}-{name}-{round_no}.duckdb")

        ingest = interleaved(args.rounds, {(phase, name): in_fresh_file(number, name, run)
                                           for number, (phase, runners) in enumerate(runs.items())
                                           for name, run in runners.items()})
        small, large = tmp / "small.duckdb", tmp / "large.duckdb"
        build_store(small, max(1, args.large // 10), points)
        build_store(large, args.large, points)
        reads_small = read_phases(small, max(1, args.large // 10), args.rounds)
        reads = read_phases(large, args.large, args.rounds)
        exports: dict[str, list[dict[str, float]]] = {"baseline": [], "store": []}
        for _ in range(args.rounds):
            for which in exports:
                exports[which].append(export_phase(large, tmp, which))

    n_points = args.trials * points.num_rows
    print(f"ingest: {args.trials} trials x {points.num_rows} points ({len(METRICS)} metrics), "
          f"median of {args.rounds} rounds; ratio = store time / baseline time")
    table_header("phase", "baseline", "mlos_store")
    for phase in runs:
        base, store = median(ingest[phase, "baseline"]), median(ingest[phase, "store"])
        row(phase, base, store)
        print(f"|   rate (points/s), store/baseline | {n_points / base:,.0f} | {n_points / store:,.0f} "
              f"| {base / store:.2f}x |")
    large_points = args.large * points.num_rows
    print(f"\nreads: store of {args.large} trials ({large_points:,} points); "
          f"one-trial read also on {max(1, args.large // 10)} trials")
    table_header("phase", "raw DuckDB", "mlos_store")
    row(f"one-trial read, {large_points // 10:,} points stored", *reads_small["one-trial read"])
    row(f"one-trial read, {large_points:,} points stored", *reads["one-trial read"])
    row(f"summary stats over {large_points:,} points", *reads["summary stats"])
    base = median(e["seconds"] for e in exports["baseline"])
    store = median(e["seconds"] for e in exports["store"])
    row(f"Parquet export of {large_points:,} points (DuckDB COPY vs streamed)", base, store)
    base_mem = median(e["peak_mib"] for e in exports["baseline"])
    store_mem = median(e["peak_mib"] for e in exports["store"])
    row("  export peak RSS of the process", base_mem, store_mem, "MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
