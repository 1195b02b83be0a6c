"""Do writes stay fast as the store grows? (issue 15)

A store written turn by turn (``mode="shared", linger=0``: lock, attach,
one call, detach = checkpoint, unlock, what contention between processes
gives) is grown to N trials with the real workload, never bulk-filled:
each trial is ``new_trial`` -> ``update(RUNNING)`` -> ``update_telemetry``
(20 points) -> ``update(SUCCEEDED, {"score": ...})``. At each checkpoint
(0, N/10, N/2, N trials) the script measures on that lived store:

* each call's median cost over ``--sample`` trials with a turn per call,
  and with the file opened ``mode="exclusive"`` (then closed again);
* the turn alone: ``get_trial_by_id`` of an absent id (one point query),
  shared with a turn of its own, and on the exclusive store;
* the file's size (+ .wal) against the same rows copied in bulk into a
  freshly created store (``COPY FROM DATABASE ... (DATA)``), and the
  share of free blocks in the lived file;
* the throughput of W writer processes plus one reader (``load`` of the
  trials since its last look) on the file in the default shared mode for
  ``--seconds`` (their trials count toward the growth);
* bare DuckDB doing the same four transactions on a connection held open
  (``growth_baseline.sql``), on a file of as many trials, interleaved trial
  by trial with the exclusive store;
* the store's empty twin: a fresh copy of the store as it was before its
  first trial, timed trial by trial beside it (shared and exclusive) and
  its writers' throughput right after. The grown store over its twin is
  the growth with the machine's load taken out: on a shared machine the
  empty store measured at size 0, minutes earlier, is no fair reference.

A second store, held open (``mode="exclusive"``), is grown to M trials
(1 M telemetry points at M = 50,000) with the same per-call measurements
at 0, M/5 and M (its empty twin beside it), plus ``update_telemetry`` of
1,000 points against bare DuckDB inserting them (rate ratio).

Prints Markdown tables: medians in ms, the growth ratio of each figure to
its value at size 0 (target <= 1.2x; for rates, the slowdown) and the
ratio of the exclusive store to bare DuckDB (target <= 1.5x; telemetry
rate >= 0.7x) and the ratio to the empty twin (target <= 1.2x). Progress goes to stderr. Only the public API is used, so
the script runs on any schema version.

    python benchmarks/bench_growth.py [--quick] [--trials N] [--held-trials M] [--writers W]
        [--seconds S] [--sample K] [--json PATH] [--skip-held] [--skip-writers]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from mlos_store import Experiment, Status, Storage

BASELINE_SQL = Path(__file__).with_name("growth_baseline.sql")
T0 = datetime(2026, 1, 1, tzinfo=UTC)
EXPERIMENT = {"experiment_id": "growth", "trial_id": 1, "root_env_config": "", "description": "issue 15",
              "tunables": {"x": 0, "y": 0.0, "kind": "a"}, "opt_targets": {"score": "min"}}
METRICS = ("cpu", "mem", "lat", "tput")
POINTS = 20
BIG_POINTS = 1_000
CALLS = ("new_trial", "RUNNING", "telemetry", "SUCCEEDED", "trial")
ABSENT_TRIAL_ID = 2**62  # get_trial_by_id of it: one point query that finds nothing
WRITER_X_BASE = 10**9  # writer w's tunable x values start at (w + 1) * WRITER_X_BASE
TWIN_X_BASE = 10**15  # the empty twin's trials (its own file, but its values apart all the same)

# ------------------------------------------------------------ the workload


def log(message: str) -> None:
    """Progress on stderr (growth takes minutes), stamped with the wall clock."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def points(index: int, count: int = POINTS) -> pa.Table:
    """``count`` telemetry points of trial ``index``: a sample a second of each metric, after its start."""
    stamps = [start_of(index) + timedelta(seconds=s) for s in range(count // len(METRICS))]
    return pa.table({
        "ts": pa.array([t for t in stamps for _ in METRICS], pa.timestamp("us", tz="UTC")),
        "metric": [m for _ in stamps for m in METRICS],
        "value": [float((index + i) % 97) for i in range(len(stamps) * len(METRICS))],
    })


def start_of(index: int) -> datetime:
    return T0 + timedelta(minutes=index % 1_000_000)  # writer indexes start far up (WRITER_X_BASE)


def tunables(index: int) -> dict[str, Any]:
    return {"x": index, "y": index / 3, "kind": "abc"[index % 3]}


@contextlib.contextmanager
def experiment(path: Path, read_only: bool = False, **settings: Any) -> Iterator[Experiment]:
    """The benchmark's experiment on the store at ``path`` (created on first use), entered if writable."""
    with Storage(path, read_only=read_only, **settings) as storage:
        if read_only:
            found = storage.get_experiment_by_id(str(EXPERIMENT["experiment_id"]))
            assert found is not None
            yield found
        else:
            with storage.experiment(**EXPERIMENT) as exp:  # type: ignore[arg-type]
                yield exp


class Timer:
    """Milliseconds of each call, appended per name when a timings dict is given."""

    def __init__(self, timings: dict[str, list[float]] | None) -> None:
        self.timings = timings
        self.start = self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        if self.timings is not None:
            self.timings.setdefault(name, []).append((now - self.last) * 1e3)
        self.last = now

    def total(self, name: str) -> None:
        if self.timings is not None:
            self.timings.setdefault(name, []).append((time.perf_counter() - self.start) * 1e3)


def store_trial(exp: Experiment, index: int, timings: dict[str, list[float]] | None = None,
                n_points: int = POINTS) -> int:
    """One trial's life through the four public calls; its trial id (= trials stored, ids being dense)."""
    batch, ts = points(index, n_points), start_of(index)
    timer = Timer(timings)
    trial = exp.new_trial(tunables(index), ts_start=ts)
    timer.lap("new_trial")
    trial.update(Status.RUNNING, ts)
    timer.lap("RUNNING")
    trial.update_telemetry(Status.RUNNING, ts, batch)
    timer.lap("telemetry")
    trial.update(Status.SUCCEEDED, ts + timedelta(seconds=30), {"score": float(index % 101)})
    timer.lap("SUCCEEDED")
    timer.total("trial")
    return trial.trial_id


def grow(exp: Experiment, count: int, target: int, label: str) -> int:
    """Add trials until ``target`` are stored; the count. Every 10 s, on stderr, the recent cost per trial."""
    last_note, noted = time.monotonic(), count
    while count < target:
        count = store_trial(exp, count + 1)
        if time.monotonic() - last_note >= 10:
            per_trial = (time.monotonic() - last_note) / (count - noted) * 1e3
            log(f"{label}: {count:,} / {target:,} trials, the last {count - noted:,} at {per_trial:.0f} ms each")
            last_note, noted = time.monotonic(), count
    return count


# ------------------------------------------------------------ bare DuckDB


def named_statements(text: str) -> dict[str, str]:
    """``{name: statement}`` of a file in the catalog's ``-- name: verb_noun :kind`` format."""
    statements: dict[str, list[str]] = {}
    name = None
    for line in text.splitlines():
        header = re.match(r"-- name: (\w+) :\w+", line)
        if header:
            name = header.group(1)
            statements[name] = []
        elif name and not line.startswith("--"):
            statements[name].append(line)
    return {name: "\n".join(lines).strip() for name, lines in statements.items()}


class Bare:
    """Bare DuckDB held open: the same four transactions per trial as the store's calls."""

    def __init__(self, path: Path) -> None:
        self.sql = named_statements(BASELINE_SQL.read_text())
        self.con = duckdb.connect(str(path))
        self.con.execute("SET TimeZone = 'UTC'")
        for name in ("growth_trial_schema", "growth_result_schema", "growth_telemetry_schema"):
            self.con.execute(self.sql[name])
        self.count = 0

    def transaction(self, *statements: tuple[str, dict[str, Any]]) -> None:
        self.con.begin()
        for name, params in statements:
            self.con.execute(self.sql[name], params)
        self.con.commit()

    def trial(self, index: int, timings: dict[str, list[float]] | None = None, n_points: int = POINTS) -> None:
        batch, ts = points(index, n_points), start_of(index)
        self.count += 1
        trial_id = self.count
        timer = Timer(timings)
        self.transaction(("growth_trial_insert", {"trial_id": trial_id, "ts": ts, **tunables(index)}))
        timer.lap("new_trial")
        self.transaction(("growth_trial_start", {"trial_id": trial_id, "ts": ts}))
        timer.lap("RUNNING")
        self.con.register("incoming", batch)
        try:
            self.transaction(("growth_telemetry_insert", {"trial_id": trial_id}))
        finally:
            self.con.unregister("incoming")
        timer.lap("telemetry")
        end = {"trial_id": trial_id, "ts": ts + timedelta(seconds=30)}
        self.transaction(("growth_trial_end", end),
                         ("growth_result_insert", {"trial_id": trial_id, "score": float(index % 101)}))
        timer.lap("SUCCEEDED")
        timer.total("trial")

    def grow_to(self, target: int) -> None:
        while self.count < target:
            self.trial(self.count + 1)

    def close(self) -> None:
        self.con.close()


# ------------------------------------------------------------ measurements


def medians(timings: dict[str, list[float]], prefix: str) -> dict[str, float]:
    return {f"{prefix} {call} ms": statistics.median(values) for call, values in timings.items()}


Timings = dict[str, list[float]]


def side_by_side(exp: Experiment, bare: Bare, count: int, sample: int, n_points: int = POINTS,
                 twin: Experiment | None = None) -> tuple[Timings, Timings, Timings, int]:
    """Store, bare DuckDB and the store's empty twin, trial by trial in turn, bare grown to the store's size
    first: the store's timings, bare's, the twin's (empty without a twin) and the store's count after."""
    bare.grow_to(count)
    store_ms: Timings = {}
    bare_ms: Timings = {}
    twin_ms: Timings = {}
    for _ in range(sample):
        count = store_trial(exp, count + 1, store_ms, n_points)
        bare.trial(count, bare_ms, n_points)
        if twin is not None:
            store_trial(twin, TWIN_X_BASE + count, twin_ms, n_points)
    return store_ms, bare_ms, twin_ms, count


class EmptyTwin:
    """A store as it was before its first trial, copied afresh for each checkpoint.

    Timed trial by trial beside the grown store, it gives the empty-store
    cost at the same moment, under the same load: the grown store's cost
    over its twin's is its growth with the machine's load taken out, the
    figure the issue's 1.2x target is about.
    """

    def __init__(self, workdir: Path) -> None:
        self.pristine, self.path = workdir / "empty_pristine.duckdb", workdir / "empty_twin.duckdb"
        with experiment(self.pristine, mode="exclusive"):
            pass

    def fresh(self) -> Path:
        for stale in (self.path, Path(f"{self.path}.wal")):
            stale.unlink(missing_ok=True)
        shutil.copyfile(self.pristine, self.path)
        return self.path


def read_ms(exp: Experiment, sample: int) -> float:
    """Median ms of ``get_trial_by_id`` of an absent id: one point query, so with linger=0 about a turn."""
    times = []
    for _ in range(sample):
        start = time.perf_counter()
        assert exp.get_trial_by_id(ABSENT_TRIAL_ID) is None
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def file_mb(path: Path) -> float:
    wal = Path(f"{path}.wal")
    return (path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)) / 1e6


def sizes(path: Path, workdir: Path) -> dict[str, float]:
    """The closed store's size (+ .wal), its free blocks, and the size of its rows copied in bulk.

    The copy goes into a store freshly created through the public API (so
    its schema, constraints and indexes are the lived store's), emptied,
    then filled by one ``COPY FROM DATABASE ... (DATA)`` and checkpointed.
    """
    copy = workdir / "bulk_copy.duckdb"
    for stale in (copy, Path(f"{copy}.wal")):
        stale.unlink(missing_ok=True)
    Storage(copy, mode="exclusive").close()
    con = duckdb.connect()
    try:
        con.execute("ATTACH $path AS lived (TYPE duckdb, READ_ONLY)", {"path": str(path)})
        con.execute("ATTACH $path AS bulk (TYPE duckdb)", {"path": str(copy)})
        total, free = next(row[3:6:2] for row in con.sql("PRAGMA database_size").fetchall() if row[0] == "lived")
        con.execute("USE bulk")  # the schema's CHECKs call its macros unqualified
        tables = con.sql("SELECT table_name FROM duckdb_tables() WHERE database_name = 'bulk'").fetchall()
        con.begin()
        for (table,) in tables:
            con.execute(f'DELETE FROM bulk."{table}"')
        con.commit()
        con.execute("COPY FROM DATABASE lived TO bulk (DATA)")
        con.execute("USE memory")
        con.execute("DETACH bulk")
    finally:
        con.close()
    store, bulk = file_mb(path), file_mb(copy)
    return {"store MB": store, "bulk copy MB": bulk, "store / bulk copy": store / bulk,
            "free blocks %": 100 * free / max(total, 1)}


def writer(path: str, index: int, seconds: float, ready: Any, go: Any, done: Any) -> None:
    """A writer process: trials in the default shared mode, started until ``seconds`` have passed.

    Puts how many it finished and when the last one ended: on a slow store
    one trial can outlast the window, so a count of trials ended in time
    could be 0 while the writers still make progress.
    """
    with experiment(Path(path)) as exp:
        ready.put(index)
        go.wait()
        start, x = time.monotonic(), (index + 1) * WRITER_X_BASE
        while time.monotonic() < start + seconds:
            x += 1
            store_trial(exp, x)
        done.put(("writer", x - (index + 1) * WRITER_X_BASE, time.monotonic() - start))


def reader(path: str, seen: int, seconds: float, ready: Any, go: Any, done: Any) -> None:
    """The reader process: ``load`` of the trials since its last look, as an optimizer polls, for ``seconds``."""
    with experiment(Path(path), read_only=True) as exp:
        ready.put(-1)
        go.wait()
        start, loads = time.monotonic(), 0
        while time.monotonic() < start + seconds:
            trial_ids = exp.load(last_trial_id=seen)[0]
            seen = max(trial_ids, default=seen)
            loads += 1
        done.put(("reader", loads, time.monotonic() - start))


def throughput(path: Path, count: int, writers: int, seconds: float) -> dict[str, float]:
    """Trials/s of ``writers`` processes and loads/s of one reader, all started before the clock.

    Each counts what it finished over the time until its last one ended;
    the rate is the total over the longest such time.
    """
    ctx = multiprocessing.get_context("spawn")
    ready, done, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=writer, args=(str(path), w, seconds, ready, go, done)) for w in range(writers)]
    procs.append(ctx.Process(target=reader, args=(str(path), count, seconds, ready, go, done)))
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.get(timeout=120)
    go.set()
    results = [done.get(timeout=seconds + 300) for _ in procs]
    for proc in procs:
        proc.join()
        assert proc.exitcode == 0, proc
    rates = {}
    for kind, name in (("writer", "writers trials/s"), ("reader", "reader loads/s")):
        done_n = [(n, elapsed) for who, n, elapsed in results if who == kind]
        rates[name] = sum(n for n, _ in done_n) / max(elapsed for _, elapsed in done_n)
    return rates


# ------------------------------------------------------------ the two stores


def log_figures(label: str, figures: dict[str, float]) -> None:
    """A checkpoint's figures on stderr as soon as measured, so a run cut short still tells them."""
    log(f"{label} figures: " + json.dumps({k: round(v, 3) for k, v in figures.items()}))


def checkpoints(total: int, fractions: tuple[float, ...]) -> list[int]:
    return sorted({0, *(int(total * f) for f in fractions), total})


def lived_checkpoint(path: Path, bare: Bare, twin: EmptyTwin, count: int,
                     args: argparse.Namespace) -> tuple[dict[str, float], int]:
    """Every figure at one size of the store grown turn by turn, and of its empty twin beside it; the count after."""
    figures: dict[str, float] = {"trials stored": count}
    with experiment(path, linger=0) as exp, experiment(twin.fresh(), linger=0) as empty:
        shared, bare_beside_shared, twin_shared, count = side_by_side(exp, bare, count, args.sample, twin=empty)
        figures.update(medians(shared, "shared"))
        figures.update(medians(bare_beside_shared, "bare beside shared"))
        figures.update(medians(twin_shared, "empty twin shared"))
        figures["shared turn: get_trial_by_id ms"] = read_ms(exp, args.sample)
    with experiment(path, mode="exclusive") as exp, experiment(twin.fresh(), mode="exclusive") as empty:
        store_ms, bare_ms, twin_ms, count = side_by_side(exp, bare, count, args.sample, twin=empty)
        exclusive_read = read_ms(exp, args.sample)
    figures.update(medians(store_ms, "exclusive"))
    figures.update(medians(twin_ms, "empty twin exclusive"))
    figures["exclusive get_trial_by_id ms"] = exclusive_read
    figures.update(medians(bare_ms, "bare"))
    figures.update(sizes(path, path.parent))
    if not args.skip_writers:
        log(f"lived store at {count:,} trials: {args.writers} writers + 1 reader for {args.seconds} s, "
            "then the same on its empty twin")
        figures.update(throughput(path, count, args.writers, args.seconds))
        figures.update({f"empty twin {name}": rate
                        for name, rate in throughput(twin.fresh(), 0, args.writers, args.seconds).items()})
        with experiment(path, read_only=True) as exp:
            count = max(exp.load(last_trial_id=count)[0], default=count)
    return figures, count


def lived_store(args: argparse.Namespace, workdir: Path) -> dict[int, dict[str, float]]:
    """The store grown turn by turn (shared, linger=0): figures at each checkpoint."""
    path, bare, count = workdir / "lived.duckdb", Bare(workdir / "lived_bare.duckdb"), 0
    twin, results = EmptyTwin(workdir), {}
    try:
        for target in checkpoints(args.trials, (0.1, 0.5)):
            if count < target:  # the writers may have passed it already
                log(f"lived store: growing turn by turn from {count:,} to {target:,} trials")
            with experiment(path, linger=0) as exp:
                count = grow(exp, count, target, "lived store (shared, linger=0)")
            log(f"lived store: measuring at {count:,} trials")
            results[target], count = lived_checkpoint(path, bare, twin, count, args)
            log_figures("lived store", results[target])
    finally:
        bare.close()
    return results


def held_checkpoint(exp: Experiment, bare: Bare, twin: EmptyTwin, count: int,
                    sample: int) -> tuple[dict[str, float], int]:
    """Per-call figures on the held-open store and its empty twin, and the 1,000-point telemetry rate against
    bare DuckDB."""
    figures: dict[str, float] = {"trials stored": count}
    with experiment(twin.fresh(), mode="exclusive") as empty:
        store_ms, bare_ms, twin_ms, count = side_by_side(exp, bare, count, sample, twin=empty)
    figures.update(medians(store_ms, "exclusive"))
    figures.update(medians(twin_ms, "empty twin exclusive"))
    figures.update(medians(bare_ms, "bare"))
    store_ms, bare_ms, _, count = side_by_side(exp, bare, count, max(3, sample // 3), BIG_POINTS)
    for prefix, timings in (("exclusive", store_ms), ("bare", bare_ms)):
        seconds = statistics.median(timings["telemetry"]) / 1e3
        figures[f"{prefix} telemetry {BIG_POINTS:,} points/s"] = BIG_POINTS / seconds
    return figures, count


def held_store(args: argparse.Namespace, workdir: Path) -> dict[int, dict[str, float]]:
    """The store held open (exclusive) from start to end: figures at each checkpoint."""
    bare, count, results = Bare(workdir / "held_bare.duckdb"), 0, {}
    twin = EmptyTwin(workdir)
    try:
        with experiment(workdir / "held.duckdb", mode="exclusive") as exp:
            for target in checkpoints(args.held_trials, (0.2,)):
                if count < target:
                    log(f"held-open store: growing from {count:,} to {target:,} trials")
                count = grow(exp, count, target, "held-open store (exclusive)")
                bare.grow_to(count)
                log(f"held-open store: measuring at {count:,} trials")
                results[target], count = held_checkpoint(exp, bare, twin, count, args.sample)
                log_figures("held-open store", results[target])
    finally:
        bare.close()
    return results


# ------------------------------------------------------------ report


def growth_ratio(name: str, value: float, first: float) -> float | None:
    """How many times worse than at size 0: cost / cost at 0, or rate at 0 / rate; None for sizes."""
    if name.endswith(" ms"):
        return value / first if first else math.inf
    if name.endswith("/s"):
        return first / value if value else math.inf
    return None


def vs_bare(figures: dict[str, float]) -> dict[str, float]:
    """Store / bare DuckDB per call (ms), each against the bare trials interleaved with it, and
    store rate / bare rate for big telemetry."""
    ratios = {call: figures[f"exclusive {call} ms"] / figures[f"bare {call} ms"] for call in CALLS}
    if "shared trial ms" in figures:
        ratios |= {f"shared {call}": figures[f"shared {call} ms"] / figures[f"bare beside shared {call} ms"]
                   for call in CALLS}
    rate = f"telemetry {BIG_POINTS:,} points/s"
    if f"exclusive {rate}" in figures:
        ratios[f"{rate} (rate ratio)"] = figures[f"exclusive {rate}"] / figures[f"bare {rate}"]
    return ratios


def vs_twin(figures: dict[str, float]) -> dict[str, float]:
    """The grown store / its empty twin timed beside it, per mode and call (ms), and the twin's writer
    throughput / the grown store's: the growth with the machine's load taken out."""
    ratios = {f"{mode} {call}": figures[f"{mode} {call} ms"] / figures[f"empty twin {mode} {call} ms"]
              for mode in ("shared", "exclusive") for call in CALLS if f"empty twin {mode} {call} ms" in figures}
    if "empty twin writers trials/s" in figures:
        ratios["writers trials/s (slowdown)"] = figures["empty twin writers trials/s"] / figures["writers trials/s"]
    return ratios


def number(name: str, value: float) -> str:
    text = f"{value:,.0f}" if abs(value) >= 1000 or value == int(value) else f"{value:.3g}"
    return text + "x" if " / " in name else text


def markdown(title: str, results: dict[int, dict[str, float]]) -> str:
    """Figures by size, each with its growth ratio, then the ratios to bare DuckDB by size."""
    sizes_ = list(results)
    first = results[sizes_[0]]
    header = ["| {} | " + " | ".join(f"{results[n]['trials stored']:,.0f} trials" for n in sizes_) + " |",
              "|---|" + "---:|" * len(sizes_)]
    lines = [f"### {title}", "",
             "Each figure by trials stored when measured (in brackets: growth ratio to the first "
             "column, target <= 1.2x; for rates the slowdown).", "",
             header[0].format("figure"), header[1]]
    for name in list(first)[1:]:  # after "trials stored", the header
        cells = []
        for n in sizes_:
            value = results[n][name]
            ratio = growth_ratio(name, value, first[name]) if n else None
            cells.append(number(name, value) + (f" ({ratio:.2f}x)" if ratio is not None else ""))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "mlos_store / bare DuckDB, interleaved trial by trial (ratio; exclusive target <= 1.5x, "
              "telemetry rate ratio target >= 0.7x; in brackets: that ratio's growth from the first column, "
              "the store's growth with the machine's load taken out):", "", header[0].format("call"), header[1]]
    bare = {n: vs_bare(results[n]) for n in sizes_}
    for call in bare[sizes_[0]]:
        cells = [f"{bare[n][call]:.2f}x" + (f" ({bare[n][call] / bare[sizes_[0]][call]:.2f}x)" if n else "")
                 for n in sizes_]
        lines.append(f"| {call} | " + " | ".join(cells) + " |")
    lines += ["", "The store / its empty twin, a fresh copy of the store as it was before its first trial, timed "
              "trial by trial beside it (the growth with the machine's load taken out; target <= 1.2x):", "",
              header[0].format("vs empty store"), header[1]]
    twin = {n: vs_twin(results[n]) for n in sizes_}
    for name in twin[sizes_[0]]:
        lines.append(f"| {name} | " + " | ".join(f"{twin[n][name]:.2f}x" for n in sizes_) + " |")
    return "\n".join(lines)


def summary(results: dict[int, dict[str, float]]) -> dict[str, Any]:
    """The JSON form: figures, growth ratios and ratios to bare DuckDB, by checkpoint."""
    first = results[min(results)]
    return {str(n): {"figures": figures,
                     "growth_ratio": {k: growth_ratio(k, v, first[k]) for k, v in figures.items()
                                      if growth_ratio(k, v, first[k]) is not None},
                     "vs_bare": vs_bare(figures), "vs_empty_twin": vs_twin(figures)}
            for n, figures in results.items()}


def machine() -> dict[str, Any]:
    return {"cpu_count": os.cpu_count(), "python": platform.python_version(), "duckdb": duckdb.__version__,
            "pyarrow": pa.__version__, "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "load_average": os.getloadavg()}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for the smoke test (< 60 s)")
    parser.add_argument("--trials", type=int, default=10_000, help="trials of the store grown turn by turn")
    parser.add_argument("--held-trials", type=int, default=50_000, help="trials of the store held open")
    parser.add_argument("--writers", type=int, default=8, help="writer processes (plus one reader)")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long the writers run")
    parser.add_argument("--sample", type=int, default=30, help="trials (and reads) timed per checkpoint")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    parser.add_argument("--skip-held", action="store_true", help="no held-open store")
    parser.add_argument("--skip-writers", action="store_true", help="no multi-process throughput")
    args = parser.parse_args(argv)
    if args.quick:
        args.trials, args.held_trials, args.writers, args.seconds, args.sample = 60, 300, 2, 2.0, 5
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report: dict[str, Any] = {"settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                              "machine": machine()}
    with tempfile.TemporaryDirectory() as tmp:
        lived = lived_store(args, Path(tmp))
        held = {} if args.skip_held else held_store(args, Path(tmp))
    print(f"{POINTS} telemetry points per trial; per-call medians of {args.sample} trials, ms; "
          f"turn = get_trial_by_id of an absent id (one point query)\n")
    print(markdown(f"Lived store: grown turn by turn (mode='shared', linger=0) to {args.trials:,} trials; "
                   f"{args.writers} writers + 1 reader for {args.seconds:g} s", lived))
    report["lived"] = summary(lived)
    if held:
        print()
        print(markdown(f"Held-open store (mode='exclusive') grown to {args.held_trials:,} trials", held))
        report["held"] = summary(held)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
