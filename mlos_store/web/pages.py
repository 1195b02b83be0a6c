"""What each page of the web view shows, as plain JSON-ready data, from the library's public read API only.

The HTML pages and the JSON endpoints are built from these same
dictionaries, so a script reading ``/api/...`` sees exactly what a page
shows. Values are exact (``convert.exact_columns``) and JSON-ready
(``cli_output.json_ready``: timestamps as ISO text, NaN as a string).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..analysis import ExperimentData, TrialData
from ..cli_output import json_ready
from ..convert import exact_columns
from ..errors import InvalidValueError, UnknownObjectError
from ..status import Status
from ..storage import Storage

#: Rows of the trials table per page.
PAGE_ROWS = 100
#: Statuses in the order pages show them.
STATUSES = [status.name for status in Status if status is not Status.UNKNOWN]
#: The fixed columns of the trials table, before ``config.*`` and ``result.*``.
TRIAL_COLUMNS = ["trial_id", "status", "ts_start", "ts_end", "trial_runner_id", "tunable_config_id"]
#: Most rows of the Pareto front an experiment page lists.
FRONT_ROWS = 20


def experiment_of(storage: Storage, experiment_id: str) -> ExperimentData:
    """The stored experiment ``experiment_id``, or UnknownObjectError (a 404)."""
    experiments = storage.experiments
    if experiment_id not in experiments:
        raise UnknownObjectError(f"no experiment {experiment_id!r} in this store")
    return experiments[experiment_id]


def store_state(storage: Storage) -> list[dict[str, Any]]:
    """Trials by status and telemetry points per experiment: what a page polls to see that something changed."""
    return [json_ready(row) for row in storage.overview().experiments.to_pylist()]


def chart_state(storage: Storage, experiment_id: str) -> tuple[int, ...]:
    """What every chart of an experiment depends on: trials, trials in each final status, telemetry points.

    Results are stored only with a final status and a final status never
    changes, and a telemetry point once stored stays as it was; so while
    these counts stay the same, so does every chart (``charts.ChartCache``).
    """
    row = next((row for row in store_state(storage) if row["experiment_id"] == experiment_id), None)
    if row is None:
        raise UnknownObjectError(f"no experiment {experiment_id!r} in this store")
    return tuple(int(row[name]) for name in ("trials", "succeeded", "canceled", "failed", "timed_out",
                                             "telemetry_points"))


def experiments_page(storage: Storage) -> dict[str, Any]:
    """Every experiment: its record (origin, merges), objectives, trials by status, telemetry points, best trial."""
    counts = {row["experiment_id"]: row for row in store_state(storage)}
    experiments = []
    for experiment_id, data in storage.experiments.items():
        count = counts.get(experiment_id, {})
        experiments.append({
            **_record(data), "trials": count.get("trials", 0), "telemetry_points": count.get("telemetry_points", 0),
            "by_status": {status: count.get(status.lower(), 0) for status in STATUSES},
            "best": _best_trial(data),
        })
    return {"experiments": experiments}


def _record(data: ExperimentData) -> dict[str, Any]:
    """What the experiments list and an experiment page both show of its record: origin and merges too."""
    return {"experiment_id": data.experiment_id, "description": data.description,
            "objectives": data.objectives, "root_env_config": data.root_env_config[0],
            "git_repo": data.git_repo, "git_commit": data.git_commit, "merges": merges_of(data)}


def merges_of(data: ExperimentData) -> list[dict[str, Any]]:
    """The experiments merged into this one (``ExperimentData.merges``), by id, each with when it was merged."""
    return [{"experiment_id": merged, "ts_merged": json_ready(ts)} for merged, ts in data.merges]


def _best_trial(data: ExperimentData) -> dict[str, Any] | None:
    """The first of ``ranked()`` (by the objectives in order): trial id and objective values; None if none."""
    objectives = data.objectives
    if not objectives:
        return None
    ranked = data.ranked().slice(0, 1)
    if ranked.num_rows == 0:
        return None
    [row] = _rows(ranked.select(["trial_id", *(f"result.{name}" for name in objectives)]))
    return {"trial_id": row["trial_id"], "results": {name: row[f"result.{name}"] for name in objectives}}


def experiment_page(storage: Storage, experiment_id: str) -> dict[str, Any]:
    """One experiment: its record (origin, merges), counts, tunables and Pareto front (its telemetry:
    ``telemetry_page``)."""
    data = experiment_of(storage, experiment_id)
    counts = next((row for row in store_state(storage) if row["experiment_id"] == experiment_id), {})
    results = data.results_table
    objectives = data.objectives
    front = data.best().slice(0, FRONT_ROWS) if objectives else results.slice(0, 0)
    return {
        **_record(data), "trials": counts.get("trials", 0), "telemetry_points": counts.get("telemetry_points", 0),
        "by_status": {status: counts.get(status.lower(), 0) for status in STATUSES},
        "tunables": [name for name in results.column_names if name.startswith("config.")],
        "metrics": [name for name in results.column_names if name.startswith("result.")],
        "pareto_front": _rows(front.select([c for c in front.column_names if c == "trial_id" or c.startswith(
            ("config.", "result."))])),
    }


def telemetry_page(storage: Storage, experiment_id: str) -> dict[str, Any]:
    """An experiment's telemetry statistics per metric: a page of its own, since it reads every point.

    From ``telemetry_extents``, not ``telemetry_summary``: the page shows no
    percentile, and leaving them out (no point sorted) makes the read
    several times cheaper on millions of points.
    """
    data = experiment_of(storage, experiment_id)
    return {"experiment_id": experiment_id, "metrics": telemetry_by_metric(data.telemetry_extents())}


def telemetry_by_metric(summary: pa.Table) -> list[dict[str, Any]]:
    """Per metric over every trial of a ``telemetry_extents`` (or ``telemetry_summary``): trials, points, min,
    max, mean, first, last."""
    if summary.num_rows == 0:
        return []
    weighted = pc.multiply(summary["mean"], pc.cast(summary["count"], pa.float64()))
    table = summary.select(["metric", "trial_id", "count", "min", "max", "first_ts", "last_ts"]) \
        .append_column("weighted", weighted)
    grouped = table.group_by("metric").aggregate([
        ("trial_id", "count_distinct"), ("count", "sum"), ("min", "min"), ("max", "max"), ("weighted", "sum"),
        ("first_ts", "min"), ("last_ts", "max")]).sort_by("metric")
    rows = []
    for row in grouped.to_pylist():
        total = row["count_sum"]
        rows.append(json_ready({
            "metric": row["metric"], "trials": row["trial_id_count_distinct"], "points": total,
            "min": row["min_min"], "max": row["max_max"],
            "mean": None if row["weighted_sum"] is None or not total else row["weighted_sum"] / total,
            "first_ts": row["first_ts_min"], "last_ts": row["last_ts_max"]}))
    return rows


def trials_page(storage: Storage, experiment_id: str, *, status: str | None = None, sort: str = "trial_id",
                order: str = "asc", page: int = 1) -> dict[str, Any]:
    """One page of the trials table (``results_table``), filtered by status and sorted by any column."""
    table = experiment_of(storage, experiment_id).results_table
    columns = TRIAL_COLUMNS + [name for name in table.column_names if name.startswith(("config.", "result."))]
    if sort not in columns:
        raise InvalidValueError(f"cannot sort the trials by {sort!r}: not a column of them")
    if order not in ("asc", "desc"):
        raise InvalidValueError(f"order must be 'asc' or 'desc', got {order!r}")
    if status is not None:
        if status not in STATUSES:
            raise InvalidValueError(f"no trial status {status!r} (one of {', '.join(STATUSES)})")
        table = table.filter(pc.equal(table["status"], status))
    table = table.select(columns).sort_by([(sort, "ascending" if order == "asc" else "descending"),
                                           ("trial_id", "ascending")])
    pages = max(1, -(-table.num_rows // PAGE_ROWS))
    if page < 1 or page > pages:
        raise InvalidValueError(f"no page {page} of the trials (pages 1 to {pages})")
    return {"experiment_id": experiment_id, "status": status, "sort": sort, "order": order, "page": page,
            "pages": pages, "total": table.num_rows, "columns": columns,
            "rows": _rows(table.slice((page - 1) * PAGE_ROWS, PAGE_ROWS))}


def trial_page(storage: Storage, experiment_id: str, trial_id: int) -> dict[str, Any]:
    """One trial: status and its history, times, runner, tunable values and trial config, results, telemetry
    statistics."""
    data = experiment_of(storage, experiment_id)
    trial = trial_of(data, trial_id)
    page: dict[str, Any] = json_ready({
        "experiment_id": experiment_id, "trial_id": trial_id, "status": trial.status.name,
        "ts_start": trial.ts_start, "ts_end": trial.ts_end, "trial_runner_id": trial.trial_runner_id,
        "tunable_config_id": trial.tunable_config_id,
        "tunable_config_trial_group_id": trial.tunable_config_trial_group_id,
        "config": trial.tunable_config.config_dict, "trial_config": trial.metadata_dict,
        "results": trial.results_dict,
        "status_history": [{"ts": ts, "status": status.name} for ts, status in trial.status_history()],
        "telemetry": _rows(data.telemetry_summary(trial_id).drop_columns(["trial_id"])),
    })
    return page


def trial_of(data: ExperimentData, trial_id: int) -> TrialData:
    """Trial ``trial_id`` of the experiment, or UnknownObjectError (a 404).

    ``ExperimentData.trial`` reads that trial alone, where ``trials`` or
    ``results_table`` would read all of them (0.1-0.3 s for 10,000 trials).
    """
    return data.trial(trial_id)


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    """The rows of a table as JSON-ready dicts of exact values."""
    columns = exact_columns(table)
    names = [name for name, _ in columns]
    return [dict(zip(names, map(json_ready, row))) for row in zip(*(values for _, values in columns))]
