"""Where each write's time goes: the store, its own statements on bare DuckDB, and bare DuckDB's minimum.

Issue 15 asks every per-call write to be within 1.5x of bare DuckDB doing
the same transaction. A trial's four calls keep guarantees the bare
baseline of ``bench_growth.py`` does not (ids allocated in the insert,
configs shared by hash, a status history, typed values, guarded status
moves), so the store runs more statements than that baseline. This script
splits the gap in two, interleaving three writers trial by trial on files
of the same size:

* **store**: the public API, ``mode="exclusive"`` (the file held open);
* **same statements**: a DuckDB connection held open on a store file of the
  same schema, running exactly the catalog's statements each call runs
  (``sql/queries``, by name), in the same transactions, with parameters and
  Arrow rows prepared before the clock starts: DuckDB's cost of the
  guarantees, with no Python of the store's;
* **bare**: one statement per call on bare tables (``growth_baseline.sql``).

store / same statements is the store's own overhead (Python, checks,
conversion, the engine); same statements / bare is what the guarantees'
statements cost in DuckDB. It also prints DuckDB's floor on this machine,
an empty transaction (BEGIN + COMMIT) and a one-row insert transaction,
beside SQLite's (what mlos_bench's SqlStorage runs on in the comparison
suite): no store call can cost less than DuckDB's floor; and the telemetry
points inserted into the typed table with no guard (what the typed value
columns and their CHECK cost alone, so the best rate update_telemetry
could reach against bare DuckDB).

    python benchmarks/bench_floor.py [--quick] [--trials N] [--points P]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).parent))
from bench_growth import EXPERIMENT, Bare, Timer, experiment, points, start_of, store_trial, tunables  # noqa: E402

from mlos_store.catalog import load_catalog  # noqa: E402
from mlos_store.telemetry import telemetry_rows  # noqa: E402
from mlos_store.values import named_values_table  # noqa: E402

#: Trial ids of the floor's typed inserts, far above the trials the benchmark stores.
UNUSED_TRIAL_IDS = 10**9
CALLS = ("new_trial", "RUNNING", "telemetry", "SUCCEEDED", "trial")
#: The statements each call runs, in order, as the store runs them (one transaction per call).
STATEMENTS = {
    "new_trial": ("tunable_config_insert_new", "tunable_param_insert", "trial_insert", "trial_status_append"),
    "RUNNING": ("trial_advance", "trial_status_append"),
    "telemetry": ("telemetry_append_floats_if_state",),
    "SUCCEEDED": ("trial_end", "trial_status_record", "trial_result_insert"),
}


def _lists(rows: pa.Table) -> dict[str, list[Any]]:
    """A ``:rows`` statement's parameters: each column bound as a list, as the engine binds them."""
    return {name: rows.column(name).to_pylist() for name in rows.column_names}


class SameStatements:
    """The catalog's own statements on a store file held open by a bare DuckDB connection."""

    def __init__(self, path: Path) -> None:
        with experiment(path):
            pass  # a store file of the current schema, with the benchmark's experiment
        self.sql = load_catalog()
        self.con = duckdb.connect(str(path))
        self.con.execute("SET TimeZone = 'UTC'")
        self.count = 0
        self.experiment_id = str(EXPERIMENT["experiment_id"])

    def _run(self, query_name: str, /, **params: Any) -> Any:
        query = self.sql.queries[query_name]
        if "experiment_id" in query.params:
            params = {"experiment_id": self.experiment_id, **params}
        row = self.con.execute(query.sql, params or None).fetchone()
        return None if row is None else row[0]

    def _transaction(self, work: Callable[[], None]) -> None:
        self.con.begin()
        work()
        self.con.commit()

    def trial(self, index: int, timings: dict[str, list[float]] | None = None, n_points: int = 20) -> None:
        """The four transactions of one trial; parameters and Arrow rows are prepared before timing."""
        ts = start_of(index)
        config = _lists(named_values_table(tunables(index), "config", allow_json=False))
        telemetry = points(index, n_points)  # in the stored types, which the store inserts as they are
        first_ts = pc.min(telemetry.column("ts")).as_py()
        score = _lists(named_values_table({"score": float(index % 101)}, "metric", allow_json=True))
        self.count += 1
        trial_id = self.count

        def new_trial() -> None:
            config_id = self._run("tunable_config_insert_new", config_hash=f"{index:064x}")
            self._run("tunable_param_insert", config_id=config_id, **config)
            self._run("trial_insert", first_trial_id=1, config_id=config_id, ts_created=ts, ts_start=ts)
            self._run("trial_status_append", trial_id=trial_id, ts=ts, status="PENDING")

        def running() -> None:
            self._run("trial_advance", trial_id=trial_id, from_status="PENDING", to_status="RUNNING", ts=ts)
            self._run("trial_status_append", trial_id=trial_id, ts=ts, status="RUNNING")

        def append() -> None:
            self.con.register("incoming", telemetry)
            try:
                self._run("telemetry_append_floats_if_state", trial_id=trial_id, status="RUNNING", first_ts=first_ts)
            finally:
                self.con.unregister("incoming")

        def succeeded() -> None:
            end = ts + timedelta(seconds=30)
            self._run("trial_end", trial_id=trial_id, from_status="RUNNING", to_status="SUCCEEDED", ts=end)
            self._run("trial_status_record", trial_id=trial_id, ts=end, status="SUCCEEDED")
            self._run("trial_result_insert", trial_id=trial_id, **score)

        timer = Timer(timings)  # after the preparation above
        for name, work in (("new_trial", new_trial), ("RUNNING", running), ("telemetry", append),
                           ("SUCCEEDED", succeeded)):
            self._transaction(work)
            timer.lap(name)
        timer.total("trial")

    def grow_to(self, target: int) -> None:
        while self.count < target:
            self.trial(self.count + 1)

    def typed_insert(self, trial_id: int, n_points: int) -> float:
        """ms of a transaction appending ``n_points`` converted points with ``telemetry_append``: no guard.

        What the typed value columns and their CHECK cost alone, in trials no call uses: the
        telemetry call's guarded statement can be no cheaper, so bare / this bounds its rate ratio.
        """
        rows = telemetry_rows(points(trial_id, n_points), "telemetry")
        started = time.perf_counter()
        self.con.begin()
        self.con.register("incoming", rows)
        self._run("telemetry_append", trial_id=trial_id)
        self.con.unregister("incoming")
        self.con.commit()
        return (time.perf_counter() - started) * 1e3

    def close(self) -> None:
        self.con.close()


def transaction_floor(con: Any, rounds: int) -> dict[str, float]:
    """A database's floor on a file (medians, ms): an empty transaction, one of a one-row insert, and one of
    four one-row inserts (as many statements as ``new_trial`` runs), so the cost per statement shows."""
    con.execute("CREATE TABLE floor_row (row_id BIGINT, note VARCHAR)")
    timings: dict[str, list[float]] = {"empty transaction": [], "one-row insert transaction": [],
                                       "four one-row inserts, one transaction": []}
    for index in range(rounds):
        for name, statements in zip(timings, (0, 1, 4), strict=True):
            started = time.perf_counter()
            con.execute("BEGIN")
            for statement in range(statements):
                con.execute("INSERT INTO floor_row VALUES (?, ?)", (index, f"row {index}.{statement}"))
            con.execute("COMMIT")
            timings[name].append((time.perf_counter() - started) * 1e3)
    con.close()
    return {name: statistics.median(values) for name, values in timings.items()}


def floors(workdir: Path, rounds: int) -> dict[str, dict[str, float]]:
    """DuckDB's floor and SQLite's, each on a file of its own; SQLite as mlos_bench's SqlStorage opens it
    (Python's sqlite3 defaults: rollback journal, synchronous FULL), which the comparison suite times."""
    return {"duckdb floor": transaction_floor(duckdb.connect(str(workdir / "floor.duckdb")), rounds),
            "sqlite floor": transaction_floor(sqlite3.connect(workdir / "floor.sqlite", isolation_level=None), rounds)}


def measure(workdir: Path, trials: int, sample: int, n_points: int) -> dict[str, dict[str, list[float]]]:
    """Grow all three to ``trials``, then time ``sample`` trials of each, interleaved trial by trial
    (with an unguarded typed insert of the same points after each, the floor of the telemetry call)."""
    timings: dict[str, dict[str, list[float]]] = {"store": {}, "same statements": {}, "bare": {}}
    same, bare = SameStatements(workdir / "same.duckdb"), Bare(workdir / "bare.duckdb")
    typed: list[float] = []
    try:
        with experiment(workdir / "store.duckdb", mode="exclusive") as exp:
            count = 0
            while count < trials:
                count = store_trial(exp, count + 1)
            same.grow_to(count)
            bare.grow_to(count)
            for _ in range(sample):
                count = store_trial(exp, count + 1, timings["store"], n_points)
                same.trial(count, timings["same statements"], n_points)
                bare.trial(count, timings["bare"], n_points)
                typed.append(same.typed_insert(UNUSED_TRIAL_IDS + count, n_points))
        for database, figures in floors(workdir, sample).items():
            timings[database] = {name: [ms] for name, ms in figures.items()}
        timings["typed insert"] = {f"{n_points:,} typed points, unguarded": typed}
    finally:
        same.close()
        bare.close()
    return timings


def report(timings: dict[str, dict[str, list[float]]], trials: int, sample: int, n_points: int) -> str:
    med = {who: {call: statistics.median(v) for call, v in calls.items()} for who, calls in timings.items()
           if who in ("store", "same statements", "bare")}
    lines = [f"{trials:,} trials stored first; medians of {sample} interleaved trials; {n_points} telemetry points "
             "per update_telemetry; ratios: store / same statements = the store's own overhead, same "
             "statements / bare = what the guarantees' statements cost in DuckDB\n",
             "| call | statements | store ms | same statements ms | bare ms | store / same | same / bare "
             "| store / bare |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for call in CALLS:
        store, same, bare = med["store"][call], med["same statements"][call], med["bare"][call]
        count = sum(len(s) for s in STATEMENTS.values()) if call == "trial" else len(STATEMENTS[call])
        lines.append(f"| {call} | {count} | {store:.2f} | {same:.2f} | {bare:.2f} | {store / same:.2f}x "
                     f"| {same / bare:.2f}x | {store / bare:.2f}x |")
    duck, sqlite = ({name: values[0] for name, values in timings[f"{db} floor"].items()} for db in ("duckdb", "sqlite"))
    lines += ["", "Each database's floor on a file (no store call can cost less than DuckDB's; mlos_bench in the "
              "comparison suite runs on SQLite):", "",
              "| floor | DuckDB ms | SQLite ms | DuckDB / SQLite ratio |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {duck[name]:.3f} | {sqlite[name]:.3f} | {duck[name] / sqlite[name]:.2f}x |" for name in duck]
    typed = statistics.median(timings["typed insert"][f"{n_points:,} typed points, unguarded"])
    bare_telemetry = med["bare"]["telemetry"]
    lines.append(f"\nupdate_telemetry at bare DuckDB's rate: {bare_telemetry / med['store']['telemetry']:.2f}x "
                 f"(the unguarded typed insert alone would be {bare_telemetry / typed:.2f}x)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for the smoke test")
    parser.add_argument("--trials", type=int, default=1_000, help="trials stored before timing")
    parser.add_argument("--sample", type=int, default=200, help="trials timed, interleaved")
    parser.add_argument("--points", type=int, default=20, help="telemetry points per update_telemetry")
    args = parser.parse_args(argv)
    if args.quick:
        args.trials, args.sample = 20, 10
    with tempfile.TemporaryDirectory() as tmp:
        timings = measure(Path(tmp), args.trials, args.sample, args.points)
    print(report(timings, args.trials, args.sample, args.points))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
