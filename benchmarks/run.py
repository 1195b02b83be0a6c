"""The comparison suite: mlos_store against raw DuckDB and mlos_bench's SqlStorage.

Every backend stores the same deterministic workload (``workload.py``) and
runs the same phases; each backend's round runs in its own subprocess (so
peak memory is its own), rounds are interleaved with the backend order
rotated each round, and workload generation is kept out of the timed
regions. Prints one Markdown table per phase (median over the rounds, and
the ratio mlos_store / that backend: below 1 means mlos_store is faster)
and writes every round's raw numbers to ``--json``.

mlos_bench's backends run when ``mlos_bench`` is installed
(``pip install -e '.[bench]'``); they are skipped with a note otherwise.

    python benchmarks/run.py [--quick | --large] [--rounds R] [--backends a,b] [--json FILE]
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from workload import Backend, TrialPlan, Workload

#: Timed phases in the order the issue lists them (they run in RUN_ORDER).
PHASES = ("create_trials", "start_trials", "ingest_telemetry", "finish_trials", "load", "load_half",
          "load_telemetry", "results_table", "telemetry_stats", "pending_scan", "reopen")
RUN_ORDER = ("create_trials", "pending_scan", "start_trials", "ingest_telemetry", "finish_trials", "load",
             "load_half", "load_telemetry", "results_table", "telemetry_stats", "reopen")
#: Measured once per round besides the phases.
FOOTPRINT = ("file_size", "peak_memory")
TITLES = {
    "create_trials": "create trials (`new_trial` per trial)",
    "start_trials": "start trials (`update(RUNNING)` per trial)",
    "ingest_telemetry": "telemetry ingest (`update_telemetry` per trial)",
    "finish_trials": "finish with results (`update(final, metrics)` per trial)",
    "load": "`load()`",
    "load_half": "`load(last_trial_id=N/2)`",
    "load_telemetry": "`load_telemetry` for every trial",
    "results_table": "results table",
    "telemetry_stats": "per-trial telemetry stats (count, mean, min, max, percentiles)",
    "pending_scan": "pending-trial scan (`pending_trials(running=False)`, all pending)",
    "reopen": "reopen (close, open, resume the experiment, load it)",
    "file_size": "file size on disk",
    "peak_memory": "peak memory (process max RSS)",
}
UNITS = {**dict.fromkeys(PHASES, "s"), "file_size": "MB", "peak_memory": "MB"}
SIZES = {"quick": (100, 100), "default": (1_000, 1_000), "large": (10_000, 1_000)}
OWN_BACKENDS = ("mlos_store", "raw_duckdb")
REFERENCE = "mlos_store"
#: Trials whose telemetry is generated and handed over at once: bounds memory at any size.
CHUNK_TRIALS = 100
MB = 1_000_000


# ---------------------------------------------------------------- backends


def own_backend(name: str) -> Backend:
    if name == "mlos_store":
        from backend_store import StoreBackend
        return StoreBackend()
    from backend_raw import RawDuckDBBackend
    return RawDuckDBBackend()


def mlos_bench_backends() -> list[Backend]:
    """mlos_bench's backends, or none when it is not installed."""
    if importlib.util.find_spec("mlos_bench") is None:
        return []
    module = importlib.import_module("backend_mlos_bench")
    backends: list[Backend] = module.backends()
    return backends


def backend_by_name(name: str) -> Backend:
    if name in OWN_BACKENDS:
        return own_backend(name)
    for backend in mlos_bench_backends():
        if backend.name == name:
            return backend
    raise SystemExit(f"unknown backend {name!r}")


def chosen_backends(wanted: str | None) -> tuple[list[str], list[str]]:
    """The backend names to run, and notes about any left out."""
    notes = []
    available = list(OWN_BACKENDS)
    if importlib.util.find_spec("mlos_bench") is None:
        notes.append("mlos_bench is not installed: its backends are skipped (pip install -e '.[bench]').")
    else:
        available += [b.name for b in mlos_bench_backends()]
    if wanted is None:
        return available, notes
    names = [n.strip() for n in wanted.split(",") if n.strip()]
    unknown = [n for n in names if n not in available]
    if unknown:
        raise SystemExit(f"unknown or unavailable backends {unknown}; available: {available}")
    return names, notes


# ---------------------------------------------------------------- one round (child process)


@dataclass
class Round:
    """One backend's round: seconds per phase (scaled to the full size), counts, footprint."""

    backend: str
    trials_run: int
    scale: float
    seconds: dict[str, float]
    counts: dict[str, int]
    extrapolated: list[str]
    file_bytes: int
    peak_rss_bytes: int


def run_round(backend: Backend, n_trials: int, points: int, directory: Path) -> Round:
    """Every phase of one round on a fresh directory, in RUN_ORDER."""
    max_trials = getattr(backend, "max_trials", None)
    trials_run = min(n_trials, max_trials) if max_trials else n_trials
    workload = Workload(trials_run, points)
    seconds: dict[str, float] = {}
    counts: dict[str, int] = {}
    steps: dict[str, Callable[[], int]] = {
        "create_trials": backend.create_trials, "pending_scan": backend.pending_scan,
        "start_trials": backend.start_trials, "finish_trials": backend.finish_trials,
        "load": backend.load, "load_half": lambda: backend.load(workload.half_trial_id),
        "load_telemetry": backend.load_telemetry, "results_table": backend.results_table,
        "telemetry_stats": backend.telemetry_stats, "reopen": backend.reopen,
    }
    extrapolated = []
    backend.open(directory, workload)
    for phase in RUN_ORDER:
        if phase == "ingest_telemetry":
            seconds[phase], counts[phase], partial = ingest(backend, workload)
            extrapolated += [phase] if partial else []
            continue
        start = time.perf_counter()
        counts[phase] = steps[phase]()
        seconds[phase] = time.perf_counter() - start
    backend.close()
    check_counts(backend.name, counts, workload.expected_counts())
    scale = n_trials / trials_run
    if scale != 1:
        extrapolated = list(PHASES)
    return Round(backend.name, trials_run, scale, {p: s * scale for p, s in seconds.items()}, counts,
                 extrapolated, sum(f.stat().st_size for f in backend.files() if f.exists()),
                 resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)


def ingest(backend: Backend, workload: Workload) -> tuple[float, int, bool]:
    """Seconds of telemetry ingest, points stored, and whether the time is extrapolated.

    A backend with ``ingest_point_budget`` is timed on the first trials
    within the budget; the rest goes through its untimed
    ``backfill_telemetry``, and the time is scaled per point to all points.
    """
    budget = getattr(backend, "ingest_point_budget", None)
    trials = workload.trials
    timed = len(trials) if budget is None else min(len(trials), max(1, budget // max(workload.points_per_trial, 1)))
    seconds, stored = 0.0, 0
    for chunk in batches(workload, trials[:timed]):
        start = time.perf_counter()
        stored += backend.ingest_telemetry(chunk)
        seconds += time.perf_counter() - start
    timed_points = stored
    for chunk in batches(workload, trials[timed:]):
        stored += backend.backfill_telemetry(chunk)  # type: ignore[attr-defined]
    partial = timed < len(trials)
    if partial and timed_points:
        seconds = seconds / timed_points * workload.total_points
    return seconds, stored, partial


def batches(workload: Workload, trials: Sequence[TrialPlan]) -> Any:
    """Each slice of CHUNK_TRIALS trials with its points, generated just before it is used."""
    for first in range(0, len(trials), CHUNK_TRIALS):
        yield [(plan, workload.trial_telemetry(plan)) for plan in trials[first:first + CHUNK_TRIALS]]


def check_counts(name: str, counts: dict[str, int], expected: dict[str, int]) -> None:
    wrong = {phase: (counts.get(phase), want) for phase, want in expected.items() if counts.get(phase) != want}
    if wrong:
        raise SystemExit(f"backend {name} returned wrong counts (got, expected): {wrong}")


def warm_up() -> None:
    """Import pandas (when installed) before anything is timed.

    DuckDB imports it on the first Arrow registration, a one-off cost of
    about 0.3-0.5 s per process that would otherwise land in whichever
    phase of whichever backend registers Arrow first (mlos_bench imports
    it on import anyway), so every backend starts with it loaded.
    """
    if importlib.util.find_spec("pandas") is not None:
        importlib.import_module("pandas")


def child_main(args: argparse.Namespace) -> int:
    warm_up()
    result = run_round(backend_by_name(args.child), args.trials, args.points, Path(args.dir))
    Path(args.child_out).write_text(json.dumps(result.__dict__))
    return 0


# ---------------------------------------------------------------- rounds (parent)


def run_in_child(name: str, n_trials: int, points: int, round_no: int) -> dict[str, Any]:
    """One round of one backend in a fresh subprocess and directory; its numbers, or its error."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
        out = Path(tmp) / "round.json"
        work = Path(tmp) / "work"
        work.mkdir()
        command = [sys.executable, str(Path(__file__).resolve()), "--child", name, "--trials", str(n_trials),
                   "--points", str(points), "--dir", str(work), "--child-out", str(out)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0 or not out.exists():
            error = (done.stderr.strip().splitlines() or ["no output"])[-1]
            print(f"round {round_no}: {name} failed: {error}", file=sys.stderr)
            return {"round": round_no, "backend": name, "error": done.stderr[-4000:]}
        return {"round": round_no, **json.loads(out.read_text())}


def run_rounds(names: list[str], n_trials: int, points: int, rounds: int) -> list[dict[str, Any]]:
    """Every backend once per round, the order rotated each round."""
    runs = []
    for round_no in range(rounds):
        shift = round_no % len(names)
        for name in names[shift:] + names[:shift]:
            runs.append(run_in_child(name, n_trials, points, round_no))
    return runs


def measures(run: dict[str, Any]) -> dict[str, float]:
    """One round's numbers in the table's units: seconds per phase, MB for the footprint."""
    return {**run["seconds"], "file_size": run["file_bytes"] / MB, "peak_memory": run["peak_rss_bytes"] / MB}


def summarise(names: list[str], runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians per backend and measure, ratios mlos_store / backend, and which numbers are extrapolated."""
    medians: dict[str, dict[str, float]] = {}
    extrapolated: dict[str, list[str]] = {}
    trials_run: dict[str, int] = {}
    for name in names:
        done = [measures(r) for r in runs if r["backend"] == name and "error" not in r]
        if done:
            medians[name] = {m: statistics.median(d[m] for d in done) for m in PHASES + FOOTPRINT}
        flagged = {p for r in runs if r["backend"] == name for p in r.get("extrapolated", [])}
        extrapolated[name] = [p for p in PHASES if p in flagged]
        trials_run[name] = min((r["trials_run"] for r in runs if r["backend"] == name and "error" not in r),
                               default=0)
    reference = medians.get(REFERENCE)
    ratios = {name: {m: reference[m] / value if value else None for m, value in medians[name].items()}
              for name in medians} if reference else {}
    return {"medians": medians, "ratios": ratios, "extrapolated": extrapolated, "trials_run": trials_run}


def markdown(names: list[str], n_trials: int, summary: dict[str, Any]) -> str:
    """One table per phase and footprint measure: backend, median, ratio mlos_store / backend.

    Times scaled or extrapolated from part of the work say "(extrapolated)";
    the footprint of a backend run on fewer trials says at how many.
    """
    out = []
    for measure in PHASES + FOOTPRINT:
        unit = UNITS[measure]
        out += [f"### {TITLES[measure]}", "", f"| backend | median {unit} | mlos_store / backend |",
                "|---|---:|---:|"]
        for name in names:
            value = summary["medians"].get(name, {}).get(measure)
            ratio = summary["ratios"].get(name, {}).get(measure)
            mark = " (extrapolated)" if measure in summary["extrapolated"].get(name, []) else ""
            trials_run = summary["trials_run"].get(name, n_trials)
            if measure in FOOTPRINT and 0 < trials_run < n_trials:
                mark = f" (at {trials_run:,} trials)"
            shown = "failed" if value is None else f"{value:.4g}{mark}"
            out.append(f"| {name} | {shown} | {'n/a' if ratio is None else f'{ratio:.3g}x'} |")
        out.append("")
    return "\n".join(out)


def overview(names: list[str], n_trials: int, summary: dict[str, Any]) -> str:
    """Every measure in one table: a row per measure, per backend its median (and mlos_store / it)."""
    out = ["| measure | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for measure in PHASES + FOOTPRINT:
        cells = []
        for name in names:
            value = summary["medians"].get(name, {}).get(measure)
            ratio = summary["ratios"].get(name, {}).get(measure)
            mark = "*" if measure in summary["extrapolated"].get(name, []) else ""
            cell = "failed" if value is None else f"{value:.3g}{mark} {UNITS[measure]}"
            cells.append(cell if name == REFERENCE or ratio is None else f"{cell} ({ratio:.2g}x)")
        out.append(f"| {measure} | " + " | ".join(cells) + " |")
    out += ["", "(In parentheses: mlos_store / that backend, below 1 when mlos_store is faster or smaller; "
            "* extrapolated.)"]
    return "\n".join(out)


def machine() -> dict[str, Any]:
    def installed(package: str) -> str | None:
        try:
            return version(package)
        except PackageNotFoundError:
            return None

    return {
        "cpu_count": os.cpu_count(), "cpu": cpu_model(), "platform": platform.platform(),
        "python": platform.python_version(), "duckdb": installed("duckdb"), "pyarrow": installed("pyarrow"),
        "mlos_bench": installed("mlos-bench"), "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="100 trials x 100 points, 1 round: the smoke test")
    size.add_argument("--large", action="store_true", help="10,000 trials x 1,000 points")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 3; 1 with --quick)")
    parser.add_argument("--backends", help=f"comma-separated names (default: all available; {', '.join(OWN_BACKENDS)}, "
                                           "mlos_bench-duckdb, mlos_bench-sqlite)")
    parser.add_argument("--json", help="write every round's numbers, medians, ratios and the machine here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--trials", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--points", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    parser.add_argument("--child-out", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return child_main(args)
    size = "quick" if args.quick else "large" if args.large else "default"
    n_trials, points = SIZES[size]
    rounds = args.rounds or (1 if args.quick else 3)
    names, notes = chosen_backends(args.backends)
    runs = run_rounds(names, n_trials, points, rounds)
    summary = summarise(names, runs)
    report = {"size": {"name": size, "n_trials": n_trials, "points_per_trial": points,
                       "total_points": n_trials * points},
              "rounds": rounds, "backends": names, "reference": REFERENCE, "units": UNITS, "notes": notes,
              "machine": machine(), "runs": runs, **summary}
    print(f"## {n_trials:,} trials x {points:,} telemetry points, median of {rounds} interleaved rounds\n")
    for note in notes:
        print(f"Note: {note}\n")
    print(markdown(names, n_trials, summary))
    print("## Overview\n")
    print(overview(names, n_trials, summary))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 1 if any("error" in r for r in runs) else 0


if __name__ == "__main__":
    raise SystemExit(main())
