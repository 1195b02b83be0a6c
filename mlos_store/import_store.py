"""Copying whole experiments from another store file into this one.

The use case: each machine of a distributed run writes its own store file,
and the results must come together in one. The source file is attached
read-only (DuckDB ``ATTACH``, its path a bound parameter) and every table is
copied by one set-based ``INSERT ... SELECT`` (``sql/queries/import_store.sql``),
streamed inside DuckDB, all in one transaction: an import is complete or
leaves this store exactly as it was.

Identity rules:

* Experiments keep their ids. One already stored here must have the same
  objectives and tunables of fitting types; it keeps its stored record and
  gains the trials and tunables it lacks (as when an experiment is resumed).
* Trials keep their experiment and trial ids. A trial already stored here
  under the same ids, created at the same time with the same tunable
  values, is the same trial (an earlier import or sync): it takes the
  source's later life (status, start and end times, runner; missing
  history entries, results and telemetry points), but never a step back
  (a stored final status stays; PENDING, READY, RUNNING, final only move
  forward), so importing a file twice adds nothing. Any other trial under
  those ids refuses the whole import (TrialConflictError): runners of one
  experiment number their trials apart by opening it as their own shard
  (``storage.experiment(..., shard=k)``), or use their own experiment ids
  and ``Experiment.merge``.
* Telemetry is read from where the last import of this source stopped:
  ``sync_source`` keeps, per source store identity and experiment, how many
  of its telemetry rows are stored here (the source only appends). Rows
  read are still anti-joined against the points stored here.
* Tunable configs are matched by the hash of their values: equal values get
  the id stored here; new ones keep their source id when it is free here,
  else take a new id above every id in use. Each source hash is first
  recomputed from its values (a forged one refuses the import).
* Each point once, no orphans: a telemetry point the source holds twice is
  copied once (its first stored value). Rows the source holds without their
  parent (telemetry or values of a trial it lacks, a trial whose config it
  lacks) refuse the import, naming them, rather than being dropped silently
  or stored as orphans.

The source must hold exactly this store's catalog (tables, columns,
constraints, views, macros, types, sequences), checked from DuckDB's catalog
functions before any of its tables is read, and be a regular file (a FIFO is
refused from its metadata, never opened).

The source's OS lock is held shared while it is attached (``Engine.attached``):
stores using the file in the shared mode let go of it and wait meanwhile, so
what is copied is one consistent state of it. A source held beyond this
store's timeout raises StoreBusyError; one DuckDB keeps locked outside
mlos_store raises StoreUnavailableError. Nothing changes here then.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple, NoReturn

import pyarrow as pa
import pyarrow.compute as pc

from .engine import MEMORY, Engine, check_duckdb_file
from .errors import (
    InvalidValueError,
    NotAStoreError,
    ObjectiveConflictError,
    SchemaVersionError,
    StoreUnavailableError,
    TrialConflictError,
    TunableConflictError,
    UnknownObjectError,
)
from .progress import ProgressCallback, Steps
from .tunables import config_hash_of
from .values import experiment_id_list, sorted_runs

_LISTED_CONFLICTS = 5
#: Steps of ``_copy`` (a statement each, the two that empty the work tables one): what ``progress`` hears.
_COPY_STEPS = 16


@dataclass(frozen=True)
class ImportReport:
    """What one import added to the store."""

    path: str
    #: The experiments imported from the file (new here or extended), by id.
    experiment_ids: tuple[str, ...]
    new_experiments: int
    new_trials: int
    new_configs: int
    new_telemetry_points: int
    #: Trials stored before that moved on (status, times, runner) from the source's state.
    advanced_trials: int = 0
    #: Results and status history entries added to trials (new or stored before).
    new_results: int = 0
    new_history_entries: int = 0


class _Position(NamedTuple):
    """Where a source stands for this import: its identity, its telemetry rows now, and the first not brought."""

    store_id: str
    telemetry_rows: int
    telemetry_from: int


def import_store(engine: Engine, path: str | os.PathLike[str],
                 experiment_ids: Iterable[str] | None = None, *,
                 progress: ProgressCallback | None = None, shown_as: str | None = None,
                 follow: bool = True) -> ImportReport:
    """Copy experiments (all, or those named) from the store file at ``path``; see the module doc.

    ``progress`` hears of each copying statement run (``mlos_store.progress``).
    The one pipeline of every import: ``import_parquet`` stages a lake into
    a temporary store file and imports that, naming the lake (``shown_as``)
    in its messages and keeping no watermark (``follow`` False: the staging
    file is gone afterwards).
    """
    source = _checked_source(engine, path)
    shown = shown_as or source
    sql = engine.catalog
    with engine.attached(sql.import_store_attach, sql.import_store_detach, source):
        _check_source_store(engine, shown)
        with engine.transaction():
            chosen = _chosen_experiments(engine, shown, experiment_ids)
            if not chosen:
                return ImportReport(shown, (), 0, 0, 0, 0)
            position = _position(engine, chosen) if follow else _Position("", 0, 0)
            _refuse_conflicts(engine, shown, chosen, position.telemetry_from)
            report = _copy(engine, shown, chosen, position.telemetry_from, Steps(_COPY_STEPS, progress))
            if follow:
                engine.execute(sql.import_store_watermark_clear, source_store_id=position.store_id,
                               experiment_ids=chosen, telemetry_rows=position.telemetry_rows)
                engine.execute(sql.import_store_watermark_record, source_store_id=position.store_id,
                               experiment_ids=chosen, telemetry_rows=position.telemetry_rows)
            return report


def _position(engine: Engine, chosen: list[str]) -> _Position:
    """The source's identity and telemetry rows now, and its first row not brought here for ``chosen``.

    The source's telemetry is only ever appended, so what an earlier import
    or sync of it brought is its first rows: only the later ones need
    reading. The watermark prunes, it proves nothing: every row read is
    still anti-joined against the points stored here.
    """
    sql = engine.catalog
    row = engine.fetch_one(sql.import_store_source_identity)
    assert row is not None  # one row by construction (two scalar subqueries)
    telemetry_from = engine.fetch_value(sql.import_store_telemetry_from, source_store_id=row.store_id,
                                        experiment_ids=chosen, telemetry_rows=row.telemetry_rows)
    return _Position(row.store_id, int(row.telemetry_rows), int(telemetry_from))


def _checked_source(engine: Engine, path: str | os.PathLike[str]) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidValueError(f"import_store needs the path of a store file, got {path!r}")
    source = os.fspath(path)
    if source == MEMORY:
        raise InvalidValueError("import_store needs the path of a store file, not ':memory:'")
    if engine.read_only:
        raise StoreUnavailableError(f"{engine.path!r} is open read-only: open it read-write to import into it")
    if not os.path.exists(source):
        raise NotAStoreError(f"cannot import {source!r}: no such file")
    check_duckdb_file(source)  # also refuses, unopened, what is not a regular file (a FIFO would block)
    if os.path.lexists(f"{source}.wal"):  # DuckDB reads the write-ahead log on ATTACH
        refuse_unless_regular_file(f"{source}.wal")
    if not engine.in_memory and os.path.samefile(source, engine.file):
        raise InvalidValueError(f"cannot import {source!r} into itself")
    return os.path.abspath(source)


def refuse_unless_regular_file(path: str) -> None:
    """Refuse, from its metadata alone, a path that is not a regular file (or a link to one).

    Opening a FIFO blocks until someone writes to it, and a device or socket
    is no export either: such a path given as an import source must never be
    opened.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise NotAStoreError(f"cannot import {path!r}: {exc.strerror or exc}; nothing was imported") from exc
    if not stat.S_ISREG(mode):
        raise NotAStoreError(f"cannot import {path!r}: not a regular file; it was not opened and nothing was imported")


def check_config_hashes(rows: pa.Table, source: str) -> set[str]:
    """Refuse configs whose stored hash is not the hash of their values; returns the hashes.

    A config's hash is its identity across stores: an import gives a trial
    the config stored here under the same hash. A source whose hash was
    made equal to one of this store's configs would make a trial that ran
    x=999 read x=100, so the hash is recomputed from the values, by the one
    function that makes it (``tunables.config_hash_of``). ``rows``: the
    columns config_id, config_hash, name (null for a config without values)
    and the four value columns.
    """

    stored = _stored_hashes(rows, source)
    valued = _distinct_rows(rows.filter(pc.is_valid(rows.column("name")))).sort_by(
        [("config_id", "ascending"), ("name", "ascending")])
    computed = dict.fromkeys(stored, config_hash_of(valued.slice(0, 0)))  # a config without values
    for start, length in sorted_runs(valued, ["config_id"]):
        computed[valued.column("config_id")[start].as_py()] = config_hash_of(valued.slice(start, length))
    for config_id, config_hash in stored.items():
        if computed[config_id] != config_hash:
            raise InvalidValueError(
                f"cannot import {source!r}: config {config_id} is stored with the hash {config_hash!r}, which is "
                "not the hash of its values (a damaged or crafted source); nothing was imported")
    return set(stored.values())


def _stored_hashes(rows: pa.Table, source: str) -> dict[Any, str]:
    """Each config's stored hash; a config given two hashes is refused."""
    stored: dict[Any, str] = {}
    for config_id, config_hash in zip(rows.column("config_id").to_pylist(), rows.column("config_hash").to_pylist()):
        if stored.setdefault(config_id, config_hash) != config_hash:
            raise InvalidValueError(f"cannot import {source!r}: config {config_id} is stored with two hashes; "
                                    "nothing was imported")
    return stored


def _distinct_rows(rows: pa.Table) -> pa.Table:
    """The rows, each once (a source may repeat a row; the same value twice is still one value)."""
    keys = list(zip(rows.column("config_id").to_pylist(), rows.column("name").to_pylist()))
    if len(set(keys)) == len(keys):  # (not Table.group_by: it imports pyarrow.dataset, and pandas with it)
        return rows  # the usual case: nothing repeated, nothing to convert
    unique = list(dict.fromkeys(tuple(row.items()) for row in rows.to_pylist()))
    return pa.Table.from_pylist([dict(row) for row in unique], schema=rows.schema)


def _check_source_store(engine: Engine, source: str) -> None:
    """Refuse a DuckDB file that is not a store, a store of another schema version, or a crafted one.

    The source's catalog must equal this store's (same tables, columns,
    constraints, views, macros, types, sequences), checked from the catalog
    alone before any table is read: a view or generated column standing in
    for a table could otherwise run anything (``read_text``, a huge
    ``range``) in this process. Only the marker tables, once found to be
    plain tables, are read first, for the schema version.
    """
    sql = engine.catalog
    probe = engine.fetch_one(sql.import_store_source_probe)
    if probe is None or not probe[0]:
        raise NotAStoreError(f"{source!r} is a DuckDB database but not an mlos_store database; nothing was imported")
    differences = engine.fetch_table(sql.import_store_source_unexpected_objects).to_pylist()
    if any(d["name"].split(".")[:2] in (["main", "store_info"], ["main", "schema_migration"]) for d in differences):
        _refuse_unexpected(source, differences)
    row = engine.fetch_one(sql.import_store_source_format_version)
    store_format, version = row if row is not None else (None, None)
    if store_format != "mlos_store":
        raise NotAStoreError(f"{source!r} is not an mlos_store database (format {store_format!r})")
    if version != sql.schema_version:
        advice = ("upgrade mlos_store to import it" if version is not None and version > sql.schema_version
                  else "open it once read-write with this mlos_store to upgrade it")
        raise SchemaVersionError(
            f"{source!r} has schema version {version}, this mlos_store imports version "
            f"{sql.schema_version}: {advice}"
        )
    if differences:
        _refuse_unexpected(source, differences)


def _refuse_unexpected(source: str, differences: list[dict[str, str]]) -> NoReturn:
    listed = ", ".join(f"{d['problem']} {d['kind']} {d['name']!r}" for d in differences[:_LISTED_CONFLICTS])
    more = f" and {len(differences) - _LISTED_CONFLICTS} more" if len(differences) > _LISTED_CONFLICTS else ""
    raise NotAStoreError(
        f"{source!r} is not an mlos_store database as this mlos_store makes them ({listed}{more}); "
        "none of its tables was read and nothing was imported"
    )


def _chosen_experiments(engine: Engine, source: str, experiment_ids: Iterable[str] | None) -> list[str]:
    stored = engine.fetch_table(engine.catalog.import_store_source_experiment_list).column("experiment_id").to_pylist()
    if experiment_ids is None:
        return list(stored)
    chosen = experiment_id_list(experiment_ids, "import_store experiment_ids")
    for experiment_id in chosen:
        if experiment_id not in stored:
            raise UnknownObjectError(f"{source!r} has no experiment {experiment_id!r}; nothing was imported")
    return chosen


def _refuse_conflicts(engine: Engine, source: str, chosen: list[str], telemetry_from: int) -> None:
    """Refuse the import, before anything is written, if it would change what is stored here.

    Telemetry rows are checked from ``telemetry_from`` on (those before were
    checked when an earlier sync brought them).
    """
    sql = engine.catalog
    orphans = engine.fetch_table(sql.import_store_source_orphans, experiment_ids=chosen,
                                 telemetry_from=telemetry_from).to_pylist()
    if orphans:
        listed = ", ".join(f"{o['row_count']} {o['rows_of']} row(s) of {o['experiment_id']!r} trial {o['trial_id']}"
                           for o in orphans[:_LISTED_CONFLICTS])
        raise InvalidValueError(f"cannot import {source!r}: it holds rows without their trial or config "
                                f"({listed}); nothing was imported")
    check_config_hashes(engine.fetch_table(sql.import_store_source_config_values, experiment_ids=chosen), source)
    _refuse_broken_rules(engine, source, chosen, telemetry_from)
    times = engine.fetch_table(sql.import_store_source_unreadable_times, experiment_ids=chosen,
                               telemetry_from=telemetry_from).to_pylist()
    if times:
        listed = ", ".join(f"{t['table_name']}.{t['column_name']} {t['ts']} ({t['experiment_id']!r} trial "
                           f"{t['trial_id']})" for t in times)
        raise InvalidValueError(f"cannot import {source!r}: timestamps outside years 1 to 9999, which no read "
                                f"could return ({listed}); nothing was imported")
    objectives = engine.fetch_table(sql.import_store_objective_conflicts, experiment_ids=chosen).to_pylist()
    if objectives:
        listed = ", ".join(
            f"{o['experiment_id']!r} {o['optimization_target']!r}: {o['source_direction']} there, "
            f"{o['store_direction']} here" for o in objectives[:_LISTED_CONFLICTS])
        raise ObjectiveConflictError(f"cannot import {source!r}: objectives differ ({listed}); nothing was imported")
    tunables = engine.fetch_table(sql.import_store_tunable_conflicts, experiment_ids=chosen).to_pylist()
    if tunables:
        listed = ", ".join(
            f"{t['experiment_id']!r} {t['tunable_name']!r}: {t['source_kind']} there, {t['store_kind']} here"
            for t in tunables[:_LISTED_CONFLICTS])
        raise TunableConflictError(f"cannot import {source!r}: tunable types differ ({listed}); nothing was imported")
    trials = engine.fetch_table(sql.import_store_trial_conflicts, experiment_ids=chosen).to_pylist()
    if trials:
        listed = ", ".join(f"{t['experiment_id']!r} trial {t['trial_id']}" for t in trials[:_LISTED_CONFLICTS])
        raise TrialConflictError(
            f"cannot import {source!r}: {len(trials)} trial id(s) are taken here by other trials ({listed}); "
            "nothing was imported. Open the experiment as its own shard on each runner "
            "(storage.experiment(..., shard=k)) or give each runner its own experiment id and merge them"
        )


def _refuse_broken_rules(engine: Engine, source: str, chosen: list[str], telemetry_from: int) -> None:
    """Refuse rows the API would never have stored (empty metric names, values of undeclared tunables)."""
    broken = engine.fetch_table(engine.catalog.import_store_source_broken_rules, experiment_ids=chosen,
                                telemetry_from=telemetry_from).to_pylist()
    if broken:
        listed = ", ".join(f"{b['table_name']}: {b['rule']} ({b['row_count']} row(s), {b['experiment_id']!r} "
                           f"trial {b['trial_id']})" for b in broken)
        raise InvalidValueError(f"cannot import {source!r}: rows the API never stores ({listed}); "
                                "nothing was imported")


def _copy(engine: Engine, source: str, chosen: list[str], telemetry_from: int, steps: Steps) -> ImportReport:
    """Every table, one statement each, parents before children; the work tables emptied last."""
    sql = engine.catalog
    step = steps.step
    new_experiments = step(engine.count(sql.import_store_experiment_insert, experiment_ids=chosen))
    step(engine.count(sql.import_store_objective_insert, experiment_ids=chosen))
    step(engine.count(sql.import_store_experiment_tunable_insert, experiment_ids=chosen))
    step(engine.count(sql.import_store_config_map_fill, experiment_ids=chosen))
    new_configs = step(engine.count(sql.import_store_tunable_config_insert))
    step(engine.fetch_value(sql.import_store_config_ids_reserve))
    step(engine.count(sql.import_store_tunable_param_insert))
    step(engine.count(sql.import_store_new_trial_fill, experiment_ids=chosen))
    new_trials = step(engine.count(sql.import_store_trial_insert))
    step(engine.count(sql.import_store_trial_param_insert))
    advanced = step(engine.count(sql.import_store_trial_advance, experiment_ids=chosen))
    history = step(engine.count(sql.import_store_trial_status_insert, experiment_ids=chosen))
    results = step(engine.count(sql.import_store_trial_result_insert, experiment_ids=chosen))
    repeated = engine.fetch_value(sql.import_store_source_repeated_points, experiment_ids=chosen,
                                  telemetry_from=telemetry_from)
    new_points = step(engine.count(sql.import_store_telemetry_insert_distinct if repeated
                                   else sql.import_store_telemetry_insert,  # the streaming copy, unless it may not
                                   experiment_ids=chosen, telemetry_from=telemetry_from))
    step(engine.count(sql.import_store_merge_insert, experiment_ids=chosen))
    engine.execute(sql.import_store_config_map_clear)
    engine.execute(sql.import_store_new_trial_clear)
    step(None)  # the work tables emptied
    return ImportReport(source, tuple(chosen), new_experiments, new_trials, new_configs, new_points,
                        advanced, results, history)
