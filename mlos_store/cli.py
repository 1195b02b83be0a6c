"""The ``mlos-store`` command line (also ``python -m mlos_store``): a store from a terminal or a script.

Built on the standard library's argparse, so the package keeps duckdb and
pyarrow as its only requirements; argparse gives every sub-command its
``--help`` and exits with code 2 on a usage error. Every command is thin
wiring over the library's API (``Storage.experiments``, ``results_table``,
``best``, the telemetry reads, ``export_parquet``, the importers,
``mlos_store.plot``, ``mlos_store.demo``, ``mlos_store.web``, imported by
``serve`` only); tables are written by
``mlos_store.cli_output``.

Commands that only read open the store read-only in the shared mode, so
they wait their turn beside a running experiment instead of breaking it.

Exit codes: 0 done; 1 refused (the library's errors, a missing file, an
unknown experiment, bad or writing SQL, an OS error), with one line
``mlos-store: error: ...`` on stderr and no traceback; 2 a usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import warnings
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from . import demo
from .analysis import ExperimentData
from .arguments import iso_timestamp
from .cli_output import (
    FORMATS,
    ProgressBar,
    chosen_format,
    one_line,
    overview_json,
    overview_pairs,
    overview_table,
    render_pairs,
    render_text,
    write_batches,
    write_table,
    write_text,
)
from .errors import InvalidValueError, StoreError, UnknownObjectError
from .import_store import ImportReport
from .status import Status
from .storage import Storage

PROG = "mlos-store"
#: The columns of ``mlos-store trials``: the fixed columns of ``results_table``, status first.
TRIAL_COLUMNS = ["trial_id", "status", "ts_start", "ts_end", "tunable_config_id", "tunable_config_trial_group_id",
                 "trial_runner_id"]
EXPERIMENTS_SCHEMA = pa.schema([
    ("experiment_id", pa.string()), ("description", pa.string()), ("objectives", pa.string()),
    ("trials", pa.int64()), ("telemetry_points", pa.int64()), ("root_env_config", pa.string()),
    ("git_repo", pa.string()), ("git_commit", pa.string()),
])
_BUCKET = re.compile(r"^(?P<amount>\d+(?:\.\d+)?)(?P<unit>us|ms|s|m|h|d)$")
_BUCKET_UNITS = {"us": "microseconds", "ms": "milliseconds", "s": "seconds", "m": "minutes", "h": "hours",
                 "d": "days"}
#: Points per batch when raw telemetry streams out as CSV, JSON or Parquet.
TELEMETRY_BATCH_ROWS = 100_000
_SIZE = re.compile(r"^(?P<width>\d+)x(?P<height>\d+)$")

Command = Callable[[argparse.Namespace], None]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (0 done, 1 refused, 2 usage error)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        args.check(parser, args)
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else 2
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _warn_in_one_line
            args.run(args)
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly
        _silence_stdout()
        return 1
    except KeyboardInterrupt:  # Ctrl-C: the store keeps every committed change, nothing half-done
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except (StoreError, OSError) as exc:
        print(f"{PROG}: error: {one_line(str(exc))}", file=sys.stderr)
        return 1
    return 0


def _warn_in_one_line(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                      file: Any = None, line: str | None = None) -> None:
    """A warning (say, a CheckpointWarning: the change was stored) as one line, like an error."""
    print(f"{PROG}: warning: {one_line(str(message))}", file=sys.stderr)


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so flushing it at exit does not raise again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is no file (captured in a test): nothing will be flushed
        pass


# ---------------------------------------------------------------- the parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Look at mlos_store experiment stores: tables, "
                                     "telemetry, exports and imports, plots, read-only SQL.")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    store = argparse.ArgumentParser(add_help=False)
    store.add_argument("path", metavar="PATH", help="the store file")
    experiment = argparse.ArgumentParser(add_help=False, parents=[store])
    experiment.add_argument("experiment", metavar="EXP", help="the experiment id")
    output = _output_options()
    telemetry = _telemetry_filters()

    info = _command(commands, "info", run_info, "schema version, experiments, trials by status, telemetry "
                    "points, file size", parents=[store])
    info.add_argument("--format", "-f", choices=("text", "json"), default="text", help="output format")
    _command(commands, "experiments", run_experiments, "the stored experiments", parents=[store, output])
    trials = _command(commands, "trials", run_trials, "an experiment's trials", parents=[experiment, output])
    _status_option(trials)
    results = _command(commands, "results", run_results, "the results table: one row per trial with its "
                       "config.* tunables and result.* metrics", parents=[experiment, output])
    choice = results.add_mutually_exclusive_group()
    choice.add_argument("--best", type=_positive_int, metavar="N",
                        help="only the N best SUCCEEDED trials, best first, by the experiment's objectives "
                             "(the first decides, the next breaks ties)")
    choice.add_argument("--pareto", action="store_true",
                        help="only the trials no other beats on every objective (the Pareto front), best first")
    _status_option(choice)
    points = _command(commands, "telemetry", run_telemetry, "telemetry: raw points, or per trial and metric "
                      "--stats, or downsampled to --bucket", parents=[experiment, telemetry, output])
    shape = points.add_mutually_exclusive_group()
    shape.add_argument("--stats", action="store_true", help="count, min, max, mean, stddev, p50..p99, first and "
                       "last timestamp per trial and metric")
    shape.add_argument("--bucket", type=bucket_width, metavar="WIDTH", help="count, mean, min, max per time "
                       "bucket of WIDTH (e.g. 500ms, 1s, 5m, 1h; aligned to the Unix epoch)")
    export = _command(commands, "export", run_export, "write an experiment to Parquet datasets (Hive layout)",
                      parents=[experiment])
    export.add_argument("directory", metavar="DIR", help="the dataset folder (created if missing)")
    load = _command(commands, "import", run_import, "import experiments from Parquet datasets (a folder "
                    "`export` wrote) or from another store file", parents=[store])
    load.add_argument("source", metavar="SOURCE", help="a dataset folder, or a store file")
    load.add_argument("--experiment", nargs="+", action="extend", metavar="ID", help="only these experiments")
    _command(commands, "compact", run_compact, "rewrite the store file as compactly as a bulk copy of its rows "
             "(other processes wait meanwhile)", parents=[store])
    follow = _command(commands, "sync", run_sync, "bring a central store up to date with runners' store files "
                      "(new experiments, trials and their later life, telemetry); run it again to follow them",
                      parents=[store])
    follow.add_argument("sources", nargs="+", metavar="SOURCE", help="a runner's store file")
    follow.add_argument("--experiment", nargs="+", action="extend", metavar="ID", help="only these experiments")
    _plot_command(commands, experiment, telemetry)
    sql = _command(commands, "sql", run_sql, "run one read-only SQL statement (a SELECT) over the store's tables",
                   parents=[store, output])
    sql.add_argument("query", metavar="QUERY", help="one SELECT statement (SHOW TABLES and DESCRIBE work too)")
    serve = _command(commands, "serve", run_serve, "a read-only web view of the store in a browser (pages and "
                     "JSON endpoints); needs the [web] extra", parents=[store])
    serve.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1: this "
                       "machine only)")
    serve.add_argument("--port", type=int, default=8080, help="the port (default 8080; 0 picks a free one)")
    play = _command(commands, "demo", run_demo, "run the demo: a toy tuning loop on a store file (run it "
                    "again to resume)")
    demo.add_arguments(play)
    return parser


def _command(commands: Any, name: str, run: Command, summary: str,
             parents: Sequence[argparse.ArgumentParser] = ()) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(name, help=summary, description=summary,
                                                          parents=list(parents))
    parser.set_defaults(run=run, check=_no_check)
    return parser


def _no_check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Most commands need no check beyond argparse's own."""


def _output_options() -> argparse.ArgumentParser:
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--format", "-f", choices=FORMATS, default=None,
                        help="text (aligned columns, the default), csv, json (an array of objects) or parquet; "
                             "by default the -o FILE suffix decides (.csv, .json, .parquet)")
    output.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout")
    return output


def _telemetry_filters() -> argparse.ArgumentParser:
    filters = argparse.ArgumentParser(add_help=False)
    filters.add_argument("--trial", nargs="+", action="extend", type=int, metavar="ID", help="only these trials")
    filters.add_argument("--metric", nargs="+", action="extend", metavar="M", help="only these metrics")
    filters.add_argument("--since", type=iso_timestamp, metavar="TS",
                         help="points at or after TS (ISO 8601; without an offset, local time)")
    filters.add_argument("--until", type=iso_timestamp, metavar="TS", help="points before TS (ISO 8601)")
    return filters


def _status_option(parser: Any) -> None:
    parser.add_argument("--status", nargs="+", action="extend", type=str.upper, metavar="S",
                        choices=[s.name for s in Status if s is not Status.UNKNOWN],
                        help="only trials in these statuses (PENDING, READY, RUNNING, SUCCEEDED, CANCELED, "
                             "FAILED, TIMED_OUT)")


def _plot_command(commands: Any, experiment: argparse.ArgumentParser, telemetry: argparse.ArgumentParser) -> None:
    plot = _command(commands, "plot", run_plot, "plot telemetry over time per trial (--metric), or a result "
                    "against a tunable (--x config.NAME --y result.METRIC), to a PNG; needs the [plot] extra",
                    parents=[experiment, telemetry])
    plot.add_argument("--x", metavar="config.NAME", help="the tunable on the x axis")
    plot.add_argument("--y", metavar="result.METRIC", help="the result on the y axis")
    plot.add_argument("--output", "-o", metavar="FILE.png", required=True, help="the image to write")
    plot.add_argument("--size", type=pixel_size, default=(960, 540), metavar="WxH",
                      help="image size in pixels (default 960x540)")
    plot.set_defaults(check=_check_plot)


def _check_plot(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Either telemetry (--metric) or results (--x and --y), not both."""
    if (args.x is None) != (args.y is None):
        parser.error("plot: --x and --y go together")
    if args.x is not None and args.metric:
        parser.error("plot: give --metric (telemetry over time) or --x/--y (results), not both")
    if args.x is None and not args.metric:
        parser.error("plot: give --metric M (telemetry over time) or --x config.NAME --y result.METRIC")


def bucket_width(text: str) -> timedelta:
    """A bucket width such as ``500ms``, ``1s``, ``5m``, ``1h`` (units us, ms, s, m, h, d)."""
    match = _BUCKET.match(text.strip())
    width = None if match is None else timedelta(**{_BUCKET_UNITS[match["unit"]]: float(match["amount"])})
    if width is None or width < timedelta(microseconds=1):
        raise argparse.ArgumentTypeError(f"not a bucket width: {text!r} (say 500ms, 1s, 5m or 1h)")
    return width


def pixel_size(text: str) -> tuple[int, int]:
    match = _SIZE.match(text.strip())
    if match is None or int(match["width"]) < 1 or int(match["height"]) < 1:
        raise argparse.ArgumentTypeError(f"not an image size: {text!r} (say 960x540)")
    return int(match["width"]), int(match["height"])


def _positive_int(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"not a positive whole number: {text!r}")
    return number


# ---------------------------------------------------------------- commands


def _reader(path: str) -> Storage:
    """The store at ``path`` for reading: read-only, shared, so a running experiment keeps going."""
    return Storage(path, read_only=True)


def _experiment(storage: Storage, experiment_id: str) -> ExperimentData:
    experiments = storage.experiments
    if experiment_id not in experiments:
        stored = ", ".join(map(repr, experiments)) or "none"
        raise UnknownObjectError(f"no experiment {experiment_id!r} in {storage.path!r} (stored: {stored})")
    return experiments[experiment_id]


def _write(table: pa.Table, args: argparse.Namespace) -> None:
    write_table(table, chosen_format(args.format, args.output), args.output, sys.stdout)


def run_info(args: argparse.Namespace) -> None:
    with _reader(args.path) as storage:
        overview = storage.overview()
    if args.format == "json":
        write_text(json.dumps(overview_json(overview), indent=2) + "\n", None, sys.stdout)
        return
    sys.stdout.write(render_pairs(overview_pairs(overview)) + "\n" + render_text(overview_table(overview)))


def run_experiments(args: argparse.Namespace) -> None:
    with _reader(args.path) as storage:
        table = experiments_table(storage)
    _write(table, args)


def experiments_table(storage: Storage) -> pa.Table:
    """One row per experiment: its record, objectives ("metric min, ..."), trials and telemetry points."""
    counts = {row["experiment_id"]: row for row in storage.overview().experiments.to_pylist()}
    rows = []
    for experiment_id, data in storage.experiments.items():
        count = counts.get(experiment_id, {})
        rows.append({
            "experiment_id": experiment_id, "description": data.description,
            "objectives": ", ".join(f"{name} {direction}" for name, direction in data.objectives.items()),
            "trials": count.get("trials", 0), "telemetry_points": count.get("telemetry_points", 0),
            "root_env_config": data.root_env_config[0], "git_repo": data.git_repo, "git_commit": data.git_commit,
        })
    return pa.Table.from_pylist(rows, schema=EXPERIMENTS_SCHEMA)


def _with_status(table: pa.Table, statuses: list[str] | None) -> pa.Table:
    return table if not statuses else table.filter(pc.is_in(table["status"], pa.array(statuses, pa.string())))


def run_trials(args: argparse.Namespace) -> None:
    with _reader(args.path) as storage:
        table = _experiment(storage, args.experiment).results_table.select(TRIAL_COLUMNS)
    _write(_with_status(table, args.status), args)


def run_results(args: argparse.Namespace) -> None:
    with _reader(args.path) as storage:
        experiment = _experiment(storage, args.experiment)
        if args.best is not None:
            table = experiment.ranked().slice(0, args.best)
        elif args.pareto:
            table = experiment.best()
        else:
            table = _with_status(experiment.results_table, args.status)
    _write(table, args)


def run_telemetry(args: argparse.Namespace) -> None:
    """Raw points stream from the store to CSV, JSON or Parquet in bounded memory; the rest are tables."""
    filters: dict[str, Any] = {"metrics": args.metric or None, "start": args.since, "end": args.until}
    trial_ids = args.trial or None
    fmt = chosen_format(args.format, args.output)
    with _reader(args.path) as storage:
        experiment = _experiment(storage, args.experiment)
        if args.stats:
            table = experiment.telemetry_summary(trial_ids, **filters)
        elif args.bucket is not None:
            table = experiment.telemetry_downsample(args.bucket, trial_ids, **filters)
        elif fmt != "text":
            write_batches(experiment.telemetry_reader(trial_ids, **filters, batch_size=TELEMETRY_BATCH_ROWS),
                          fmt, args.output, sys.stdout)
            return
        else:
            table = experiment.telemetry_table(trial_ids, **filters)
    _write(table, args)


def run_export(args: argparse.Namespace) -> None:
    with _reader(args.path) as storage:
        _experiment(storage, args.experiment).export_parquet(args.directory, progress=ProgressBar("export"))
    print(f"exported experiment {args.experiment!r} to {args.directory}")


def run_import(args: argparse.Namespace) -> None:
    source = args.source
    lake_url = "://" in source  # a lake on object storage (s3://...) or a file:// URL
    if not lake_url and not os.path.exists(source):
        raise InvalidValueError(f"cannot import {source!r}: no such file or folder")
    with Storage(args.path) as storage:
        if lake_url or os.path.isdir(source):
            imported = storage.import_parquet(source, args.experiment, progress=ProgressBar("import"))
            print(f"imported {len(imported)} experiment(s) from the Parquet datasets in {source}: "
                  f"{', '.join(imported)}")
        else:
            report = storage.import_store(source, args.experiment, progress=ProgressBar("import"))
            print(import_summary(report))


def run_sync(args: argparse.Namespace) -> None:
    """Each source in turn, each its own transaction: a refused source leaves the others synced."""
    with Storage(args.path) as storage:
        for source in args.sources:
            print(sync_summary(storage.sync(source, args.experiment, progress=ProgressBar("sync"))))


def sync_summary(report: ImportReport) -> str:
    return (f"synced from {report.path}: {report.new_experiments} new experiment(s), {report.new_trials} new "
            f"trial(s), {report.advanced_trials} trial(s) moved on, {report.new_results} result(s), "
            f"{report.new_telemetry_points} telemetry point(s)")


def import_summary(report: ImportReport) -> str:
    return (f"imported from the store {report.path}: experiment(s) {', '.join(report.experiment_ids) or 'none'}; "
            f"new: {report.new_experiments} experiment(s), {report.new_trials} trial(s), {report.new_configs} "
            f"config(s), {report.new_telemetry_points} telemetry point(s)")


def run_compact(args: argparse.Namespace) -> None:
    if not os.path.isfile(args.path):
        raise InvalidValueError(f"cannot compact {args.path!r}: no such file")
    with Storage(args.path) as storage:
        before, after = storage.compact()
    print(f"compacted {args.path}: {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB")


def run_plot(args: argparse.Namespace) -> None:
    from . import plot  # matplotlib is an optional extra: without it, a plot raises MissingDependencyError

    with _reader(args.path) as storage:
        experiment = _experiment(storage, args.experiment)
        if args.x is not None:
            written = plot.plot_results(experiment, args.output, x=args.x, y=args.y, size_px=args.size)
        else:
            written = plot.plot_telemetry(experiment, args.output, metrics=args.metric, trial_ids=args.trial,
                                          since=args.since, until=args.until, size_px=args.size)
    print(f"wrote {written}")


def run_sql(args: argparse.Namespace) -> None:
    with _reader(args.path) as storage:
        table = storage.engine.fetch_user_query(args.query)
    _write(table, args)


def run_serve(args: argparse.Namespace) -> None:
    from . import web  # Jinja2 and matplotlib are the [web] extra: without them, MissingDependencyError

    server = web.make_server(args.path, host=args.host, port=args.port)
    try:
        print(f"serving {args.path} at {server.url} (read-only; Ctrl-C stops)", flush=True)
        server.serve_forever()
    finally:
        server.close()


def run_demo(args: argparse.Namespace) -> None:
    demo.run_demo(args.path, trials=args.trials, seed=args.seed, start=args.start, progress=ProgressBar("demo"))


if __name__ == "__main__":
    raise SystemExit(main())
