"""Server time of each page of ``mlos-store serve`` on a large experiment, against the library reads behind it.

The store: one experiment of ``--trials`` trials (10,000) with two
objectives and three tunables, and ``--points`` telemetry points (10M) in
two metrics: one trial holds ``--big`` of them (1M), the others share the
rest evenly. Built once in bulk (``new_trial`` per trial, then
``Experiment.ingest_telemetry`` of Arrow tables) and kept at ``--store``
for the next run.

Each round times, for every page, ``WebView.respond`` (the server's whole
work for a request: reads, charts, HTML or JSON; no network) on a first
view and on a view of the same unchanged page (charts and statistics from
the server's cache) and, side by side, the public API reads that page
makes with nothing drawn or rendered (the baseline); medians over
``--rounds`` rounds, and the first view's ratio to the reads.

A *first view* is a page the server has not shown before: nothing of it is
kept (every chart drawn, the telemetry statistics read), in a server that
has answered other pages already (matplotlib imported, DuckDB's and the
OS's caches warm). What a process pays once is measured apart, in
``server start`` (a new process: imports, then ``make_server``, which
draws a figure before answering: ``server.warm``) and ``first request after
start`` (that process's very first request; the OS's file cache stays
warm).

Targets (issue 16): every page under 1 s; the telemetry chart of the
1M-point trial under 0.5 s (``chart: trial (1M points)``). Charts are pages
of their own, which the experiment and trial pages load after themselves.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlos_store import Status, Storage
from mlos_store.web import make_server
from mlos_store.web.charts import CHART_SIZE
from mlos_store.web.pages import PAGE_ROWS

EXPERIMENT = "bench-web"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
METRICS = ("cpu", "mem")
INGEST_ROWS = 1_000_000
CHART_WIDTH = CHART_SIZE[0]


def build(path: Path, trials: int, points: int, big: int) -> None:
    """The benchmark store: trials first, then telemetry in bulk, 1M points per ingest call."""
    with Storage(path, mode="exclusive") as storage, storage.experiment(
            experiment_id=EXPERIMENT, trial_id=1, root_env_config="bench.jsonc", description="web benchmark",
            tunables={"threads": 1, "buffer_mb": 64, "mode": "a"},
            opt_targets={"latency": "min", "throughput": "max"}) as exp:
        rng = np.random.default_rng(7)
        for n in range(trials):
            start = T0 + timedelta(seconds=n)
            trial = exp.new_trial({"threads": int(rng.integers(1, 32)), "buffer_mb": int(rng.integers(16, 1024)),
                                   "mode": "abc"[n % 3]}, start)
            if n % 10 == 9:
                trial.update(Status.FAILED, start + timedelta(seconds=1))
            else:
                trial.update(Status.SUCCEEDED, start + timedelta(seconds=1),
                             {"latency": float(rng.gamma(4, 5)), "throughput": float(rng.normal(100, 15))})
        per_trial = (points - big) // (trials - 1)
        counts = np.full(trials, per_trial, dtype=np.int64)
        counts[0] = big
        for table in _telemetry_batches(counts):
            exp.ingest_telemetry(table)


def _telemetry_batches(counts: np.ndarray) -> list[pa.Table]:
    """Arrow tables (trial_id, ts, metric, value) of ``counts[i]`` points of trial i + 1, metrics alternating."""
    trial_ids = np.repeat(np.arange(1, len(counts) + 1), counts)
    offsets = np.arange(len(trial_ids)) - np.repeat(np.cumsum(counts) - counts, counts)
    stamps = np.datetime64(T0.replace(tzinfo=None), "us") + (offsets // 2) * np.timedelta64(10, "ms")
    values = np.random.default_rng(8).uniform(0, 100, len(trial_ids))
    metric = pa.array(np.where(offsets % 2 == 0, METRICS[0], METRICS[1]))
    table = pa.table({"trial_id": pa.array(trial_ids), "ts": pa.array(stamps).cast(pa.timestamp("us", tz="UTC")),
                      "metric": metric, "value": pa.array(values)})
    return [table.slice(start, INGEST_ROWS) for start in range(0, table.num_rows, INGEST_ROWS)]


def cases(storage: Storage, small: int) -> dict[str, tuple[str, Callable[[], object]]]:
    """Page name -> (its URL path, the library reads behind it)."""
    data = storage.experiments[EXPERIMENT]
    here = "/experiments/" + quote(EXPERIMENT, safe="")

    def experiment_reads() -> object:
        return storage.overview(), data.merges, data.results_table, data.best()

    def trial_reads(trial_id: int) -> object:
        return data.trial(trial_id).status_history(), data.telemetry_summary(trial_id)

    def chart_reads(trial_ids: list[int]) -> object:
        """What a telemetry chart reads: the trials, their extents, the busy one's downsample to 900 buckets."""
        for trial in trial_ids:
            data.trial(trial)
        extents = data.telemetry_extents(trial_ids)
        big = extents.filter(pc.equal(extents["trial_id"], 1))
        if big.num_rows:
            span = pc.max(big["last_ts"]).as_py() - pc.min(big["first_ts"]).as_py()
            data.telemetry_downsample(span / CHART_WIDTH + timedelta(microseconds=1), 1)
        return extents

    return {
        "experiments": ("/", lambda: (storage.overview(), data.merges, data.objectives, data.ranked())),
        "experiment": (here, experiment_reads),
        "experiment sorted+filtered": (f"{here}?status=SUCCEEDED&sort=result.latency&order=desc", experiment_reads),
        "experiment last page": (f"{here}?page={-(-data.results_table.num_rows // PAGE_ROWS)}", experiment_reads),
        "chart: history": (f"{here}/charts/history", lambda: data.results_table),
        "chart: Pareto front": (f"{here}/charts/pareto", lambda: (data.results_table, data.best())),
        "chart: latency by threads": (f"{here}/charts/results?x=config.threads",
                                      lambda: (data.results_table, data.best({"latency": "min"}))),
        "telemetry (per metric)": (f"{here}/telemetry", lambda: data.telemetry_extents()),
        "trials JSON": (f"/api{here}/trials?sort=config.buffer_mb", lambda: data.results_table),
        "trial (small)": (f"{here}/trials/{small}", lambda: trial_reads(small)),
        "trial (1M points)": (f"{here}/trials/1", lambda: trial_reads(1)),
        "chart: trial (small)": (f"{here}/trials/{small}/chart", lambda: chart_reads([small])),
        "chart: trial (1M points)": (f"{here}/trials/1/chart", lambda: chart_reads([1])),
        "chart: 1M + 2 overlaid": (f"{here}/trials/1/chart?compare={small},{small + 1}",
                                   lambda: chart_reads([1, small, small + 1])),
    }


#: The pages whose first request after a server's start is timed apart.
COLD_PAGES = ("chart: trial (1M points)", "telemetry (per metric)")


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=None,
                        help="the store (built if missing; default: bench_web.duckdb, --quick: a temporary one)")
    parser.add_argument("--quick", action="store_true", help="the test suite's size: 60 trials, 20,000 points")
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--points", type=int, default=10_000_000)
    parser.add_argument("--big", type=int, default=1_000_000, help="points of trial 1")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    if args.quick:
        args.trials, args.points, args.big, args.rounds = 60, 20_000, 5_000, 1
    with tempfile.TemporaryDirectory() as folder:
        if args.store is None:
            args.store = Path(folder) / "bench_web.duckdb" if args.quick else Path("bench_web.duckdb")
        return run(args)


#: Run in a new process: start a server on the store, then time its first request to a page.
COLD_SCRIPT = """
import sys, time
started = time.perf_counter()
from mlos_store.web import make_server
server = make_server(sys.argv[1], port=0)
start = time.perf_counter() - started
first = time.perf_counter()
assert server.view.respond(sys.argv[2]).status == 200
print(start, time.perf_counter() - first)
server.close()
"""


def cold_start(store: Path, paths: dict[str, str]) -> tuple[float, dict[str, float]]:
    """Seconds to start a server in a new process (imports included), and of each page as its first request."""
    firsts: dict[str, float] = {}
    starts = []
    for name, path in paths.items():
        out = subprocess.run([sys.executable, "-c", COLD_SCRIPT, str(store), path], capture_output=True, text=True,
                             check=True).stdout
        start, first = map(float, out.split())
        starts.append(start)
        firsts[name] = first
    return statistics.median(starts), firsts


def run(args: argparse.Namespace) -> int:
    if not args.store.exists():
        started = time.perf_counter()
        build(args.store, args.trials, args.points, args.big)
        print(f"built {args.store} ({args.trials:,} trials, {args.points:,} points) in "
              f"{time.perf_counter() - started:.0f} s", flush=True)
    load = os.getloadavg()[0]
    start_times: list[float] = []
    cold_times: dict[str, list[float]] = {name: [] for name in COLD_PAGES}
    server = make_server(args.store, port=0)
    try:
        view = server.view
        table = cases(server.storage, small=2)
        page_times: dict[str, list[float]] = {name: [] for name in table}
        read_times: dict[str, list[float]] = {name: [] for name in page_times}
        cached_times: dict[str, list[float]] = {name: [] for name in page_times}
        for path, _ in table.values():  # warm up: imports, first reads
            assert view.respond(path).status == 200, path
        for _ in range(args.rounds):
            for name, (path, read) in table.items():
                read_times[name].append(timed(read))
                view.forget_charts()  # a first view: every chart drawn, the statistics read
                page_times[name].append(timed(functools.partial(view.respond, path)))
                cached_times[name].append(timed(functools.partial(view.respond, path)))
            start, firsts = cold_start(args.store, {name: table[name][0] for name in COLD_PAGES})
            start_times.append(start)
            for name, first in firsts.items():
                cold_times[name].append(first)
    finally:
        server.close()
    print(f"\n{args.trials:,} trials, {args.points:,} telemetry points (trial 1: {args.big:,}); "
          f"medians of {args.rounds} rounds; load average {load:.1f} at the start, "
          f"{os.getloadavg()[0]:.1f} at the end, {os.cpu_count()} cores\n")
    print("first view: a page the server has not shown before (nothing of it kept: charts drawn, statistics "
          "read), in a server that has answered other pages; seen before: the same page again, unchanged\n")
    print("| page | library reads s | page s (first view) | ratio | page s (seen before) |\n|---|---:|---:|---:|---:|")
    for name in page_times:
        reads, page = statistics.median(read_times[name]), statistics.median(page_times[name])
        again = statistics.median(cached_times[name])
        print(f"| {name} | {reads:.3f} | {page:.3f} | {page / reads:.2f}x | {again:.3f} |")
    print(f"\nserver start in a new process (imports, make_server: opens the store, draws a first figure): "
          f"{statistics.median(start_times):.3f} s")
    for name in COLD_PAGES:
        print(f"first request after start, {name}: {statistics.median(cold_times[name]):.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
