"""Experiments to and from Parquet datasets in the Hive layout.

An export is a folder with one dataset per table, each partitioned by
experiment (telemetry also by trial), which Spark, Ray, DuckDB, polars or
pyarrow read as they are::

    <path>/experiment/experiment_id=<id>/part-0.parquet
    <path>/objective/..., experiment_tunable/..., tunable_param/...,
    <path>/trial/..., trial_param/..., trial_status/..., trial_result/...
    <path>/telemetry/experiment_id=<id>/trial_id=<n>/part-0.parquet

Values keep the store's four columns (value_kind, value, value_int,
value_text), so ``value`` is numeric for other engines and a dataset reads
back exactly. Telemetry is streamed from DuckDB to the files in batches, so
memory stays bounded whatever its size. Partition values are URI-encoded in
paths, so any experiment id is safe.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import pyarrow as pa

from .catalog import Catalog, Query
from .engine import Engine
from .errors import InvalidValueError, UnknownObjectError
from .progress import ProgressCallback, Steps
from .values import experiment_id_list

if TYPE_CHECKING:
    import pyarrow.dataset as ds


def _ds() -> Any:
    """``pyarrow.dataset``, imported when first needed (it imports pandas if installed; mlos_store must not)."""
    import pyarrow.dataset

    return pyarrow.dataset


class Table(NamedTuple):
    """One stored table as a dataset folder: how it is exported and imported."""

    folder: str
    export: Query  # rows of one experiment, by $experiment_id
    insert: Query  # reads those rows as `incoming`
    partition: tuple[str, ...]


def tables(sql: Catalog) -> tuple[Table, ...]:
    """Every exported table, in import order (configs before the trials that use them)."""
    by_experiment = ("experiment_id",)
    return (
        Table("experiment", sql.export_experiment, sql.import_experiment_insert, by_experiment),
        Table("objective", sql.export_objective, sql.objective_insert, by_experiment),
        Table("experiment_tunable", sql.export_experiment_tunable, sql.experiment_tunable_insert, by_experiment),
        Table("tunable_param", sql.export_tunable_param, sql.import_tunable_param_insert, by_experiment),
        Table("trial", sql.export_trial, sql.import_trial_insert, by_experiment),
        Table("trial_param", sql.export_trial_param, sql.import_trial_param_insert, by_experiment),
        Table("trial_status", sql.export_trial_status, sql.import_trial_status_insert, by_experiment),
        Table("trial_result", sql.export_trial_result, sql.import_trial_result_insert, by_experiment),
        Table("telemetry", sql.export_telemetry, sql.import_telemetry_insert, ("experiment_id", "trial_id")),
    )


_PARTITION_TYPES = {"experiment_id": pa.string(), "trial_id": pa.int64()}
#: Rows DuckDB hands over per batch while exporting.
EXPORT_BATCH_ROWS = 100_000
#: Files pyarrow keeps open at once (telemetry arrives in trial order, so few are needed).
_MAX_OPEN_FILES = 64


def _partitioning(columns: tuple[str, ...]) -> ds.Partitioning:
    return _ds().partitioning(pa.schema([(c, _PARTITION_TYPES[c]) for c in columns]), flavor="hive")


def export_experiment(engine: Engine, experiment_id: str, path: str | os.PathLike[str], *,
                      progress: ProgressCallback | None = None) -> None:
    """Write one experiment to the dataset folder ``path`` (created if need be).

    Other experiments already in the folder stay; this experiment's
    partitions are replaced. Raises UnknownObjectError for an unknown id.
    ``progress`` hears of each table written (``mlos_store.progress``).
    """
    if not engine.fetch_value(engine.catalog.experiment_exists, experiment_id=experiment_id):
        raise UnknownObjectError(f"experiment {experiment_id!r} is not stored")
    root = Path(path)
    if root.exists() and not root.is_dir():
        raise InvalidValueError(f"cannot export to {os.fspath(path)!r}: it is a file, not a folder")
    steps = Steps(len(tables(engine.catalog)), progress)
    for table in tables(engine.catalog):
        reader = engine.stream(table.export, batch_size=EXPORT_BATCH_ROWS, experiment_id=experiment_id)
        steps.step(_ds().write_dataset(reader, root / table.folder, format="parquet",
                                       partitioning=_partitioning(table.partition),
                                       basename_template="part-{i}.parquet",
                                       existing_data_behavior="delete_matching", max_partitions=1 << 30,
                                       max_open_files=_MAX_OPEN_FILES))


def dataset_experiment_ids(path: str | os.PathLike[str]) -> list[str]:
    """The experiment ids in a dataset folder, sorted."""
    dataset = _dataset(Path(path), "experiment", ("experiment_id",))
    if dataset is None:
        return []
    return sorted(dataset.to_table(columns=["experiment_id"]).column("experiment_id").to_pylist())


def import_experiments(engine: Engine, path: str | os.PathLike[str],
                       experiment_ids: Iterable[str] | None = None, *,
                       progress: ProgressCallback | None = None) -> list[str]:
    """Store the experiments of a dataset folder (all, or ``experiment_ids``); returns their ids.

    One transaction: an experiment id already stored, or not in the
    dataset, is refused before anything is written, and a failure leaves
    the store as it was. Config ids are remapped through the config hash:
    a config this store already holds keeps its id. ``progress`` hears of
    each table of each experiment read in (``mlos_store.progress``).
    """
    root = Path(path)
    if not (root / "experiment").is_dir():
        raise InvalidValueError(f"{os.fspath(path)!r} is not an mlos_store Parquet export (no 'experiment' folder)")
    available = dataset_experiment_ids(root)
    wanted = (available if experiment_ids is None
              else experiment_id_list(experiment_ids, "import_parquet experiment_ids"))
    unknown = sorted(set(wanted) - set(available))
    if unknown:
        raise UnknownObjectError(f"{os.fspath(path)!r} holds no experiment {', '.join(map(repr, unknown))}")
    with engine.transaction():
        for experiment_id in wanted:
            if engine.fetch_value(engine.catalog.experiment_exists, experiment_id=experiment_id):
                raise InvalidValueError(f"experiment {experiment_id!r} is already stored; nothing was imported")
        steps = Steps(len(wanted) * len(tables(engine.catalog)), progress)
        for experiment_id in wanted:
            _import_one(engine, root, experiment_id, steps)
    return list(wanted)


def _import_one(engine: Engine, root: Path, experiment_id: str, steps: Steps) -> None:
    for table in tables(engine.catalog):
        _import_table(engine, root, experiment_id, table)
        steps.step(None)


def _import_table(engine: Engine, root: Path, experiment_id: str, table: Table) -> None:
    dataset = _dataset(root, table.folder, table.partition)
    if dataset is None:
        return  # the export had no rows for this table
    rows = dataset.scanner(filter=_ds().field("experiment_id") == experiment_id)
    if table.folder == "tunable_param":  # configs first, so their params and trials find this store's ids
        config_rows = rows.to_table()
        engine.ingest(engine.catalog.import_tunable_config_insert, config_rows)
        engine.ingest(table.insert, config_rows)
    elif table.insert.params:  # objective_insert and experiment_tunable_insert take the id as a parameter
        engine.ingest(table.insert, _renamed(rows.to_table()), experiment_id=experiment_id)
    else:
        engine.ingest(table.insert, rows.to_reader())


def _renamed(table: pa.Table) -> pa.Table:
    """Declared tunables as the named-values rows ``experiment_tunable_insert`` reads."""
    return table.rename_columns(["name" if c == "tunable_name" else c for c in table.column_names])


def _dataset(root: Path, folder: str, partition: tuple[str, ...]) -> ds.Dataset | None:
    """The dataset of one table, or None if the export wrote no file for it."""
    if not (root / folder).is_dir():
        return None
    dataset = _ds().dataset(root / folder, format="parquet", partitioning=_partitioning(partition))
    return dataset if dataset.files else None
