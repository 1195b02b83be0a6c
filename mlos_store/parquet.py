"""Experiments to and from a Parquet lake: the export is ``lake.py`` (layout 2); here, what an import
does with a lake's rows.

``lake.lake_experiments`` reads and checks a lake (manifests, files, row
counts, columns and Arrow types) before any row is read; ``_read`` gives
one dataset of one experiment as a ``pyarrow.dataset``; the import stores
them with the ``import_*`` queries of ``sql/queries/export.sql``, each
reading the rows registered as ``incoming``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc

from . import lake as lakes
from .catalog import Catalog, Query
from .engine import Engine
from .errors import InvalidValueError, StoreUnavailableError
from .import_store import check_config_hashes, import_store
from .lake import Lake, Manifest
from .progress import ProgressCallback, Steps
from .values import check_timestamp_range

if TYPE_CHECKING:
    import pyarrow.dataset as ds


class Table(NamedTuple):
    """One stored table as a dataset of the lake: how it is imported."""

    folder: str
    insert: Query  # reads the rows as `incoming`, stores them under $experiment_id
    streamed: bool  # read in batches (telemetry), not whole


def tables(sql: Catalog) -> tuple[Table, ...]:
    """Every dataset, in import order (configs before the trials that use them)."""
    return (
        Table("experiment", sql.import_experiment_insert, False),
        Table("objective", sql.import_objective_insert, False),
        Table("experiment_tunable", sql.import_experiment_tunable_insert, False),
        Table("tunable_param", sql.import_tunable_param_insert, False),
        Table("trial", sql.import_trial_insert, False),
        Table("trial_param", sql.import_trial_param_insert, False),
        Table("trial_status", sql.import_trial_status_insert, False),
        Table("trial_result", sql.import_trial_result_insert, False),
        Table("telemetry", sql.import_telemetry_insert, True),
    )


def export_experiment(engine: Engine, experiment_id: str, path: str | os.PathLike[str], *, filesystem: Any = None,
                      source: str | None = None, progress: ProgressCallback | None = None) -> None:
    """Write what changed of one experiment into the lake at ``path`` (``lake.export_experiment``)."""
    steps = Steps(len(lakes.DATASETS), progress)
    lakes.export_experiment(engine, experiment_id, path, filesystem=filesystem, source=source,
                            step=lambda: steps.step(None))


# ---------------------------------------------------------------- import


def import_experiments(engine: Engine, path: str | os.PathLike[str],
                       experiment_ids: Iterable[str] | None = None, *, filesystem: Any = None,
                       progress: ProgressCallback | None = None) -> list[str]:
    """Store the experiments of a lake (all, or ``experiment_ids``); returns their ids.

    Before anything is written: the lake and each chosen experiment are
    checked by ``lake.lake_experiments`` (layout, manifests, every listed
    file whole, its rows, columns and types), and each config's hash
    must be the hash of its values (a trial takes this store's config of
    that hash, so a forged hash would change its values).

    Then the rows are staged into a temporary store file (a row repeated
    in the files once, a telemetry point with its first value; config ids
    given by hash) and imported from there by ``import_store``'s pipeline:
    the same statements, checks and rules as a store file or a sync (an
    experiment already stored is extended, its trials moving on; rows of a
    trial the export lacks, empty metric names, undeclared tunables and
    forged hashes refuse the import), one transaction, so any failure
    leaves this store as it was. ``progress`` hears of each table of each
    experiment staged (``mlos_store.progress``).
    """
    root = lakes.open_lake(path, filesystem)
    chosen = lakes.lake_experiments(root, experiment_ids)
    wanted = [manifest.experiment_id for manifest in chosen]
    for manifest in chosen:  # until imports combine shards: their experiment records would be stored twice
        if len(manifest.sources) > 1:
            raise InvalidValueError(f"cannot import {root.shown!r}: experiment {manifest.experiment_id!r} was "
                                    f"exported by {len(manifest.sources)} stores; import it from one store's "
                                    "export at a time; nothing was imported")
    folders = lakes.DATASETS
    configs = {m.experiment_id: _checked_configs(root, m, engine.catalog) for m in chosen}
    if engine.read_only:
        raise StoreUnavailableError(f"{engine.path!r} is open read-only: open it read-write to import into it")
    with tempfile.TemporaryDirectory(prefix="mlos_store_lake_") as staging_folder:
        staged = os.path.join(staging_folder, "staged.duckdb")
        steps = Steps(len(wanted) * len(folders), progress)

        def fill(stage: Engine) -> None:
            for manifest in chosen:
                _import_one(stage, root, manifest, configs[manifest.experiment_id], steps)

        _stage(staged, engine.catalog, fill)
        import_store(engine, staged, wanted, shown_as=root.shown, follow=False)
    return list(wanted)


def _stage(path: str, catalog: Catalog, fill: Callable[[Engine], None]) -> None:
    """A new store file at ``path`` filled by ``fill`` in one transaction: a lake's rows as a store holds them.

    The staging store is what lets one pipeline import a lake: its rows go
    in as the files hold them (config ids given by hash, repeats dropped),
    and ``import_store`` then checks and copies them like any store file's.
    """
    stage = Engine(path, catalog=catalog, mode="exclusive")
    try:
        with stage.transaction():
            fill(stage)
    finally:
        stage.close()


def _checked_configs(root: Lake, manifest: Manifest, sql: Catalog) -> pa.Table | None:
    """The experiment's config rows, their hashes checked against their values and the trials' hashes."""
    by_folder = {t.folder: t for t in tables(sql)}
    configs, trials = _read(root, manifest, by_folder["tunable_param"]), _read(root, manifest, by_folder["trial"])
    rows = None if configs is None else configs.to_table()
    hashes = set() if rows is None else check_config_hashes(rows.rename_columns(
        ["name" if c == "tunable_name" else c for c in rows.column_names]), root.shown)
    used = set() if trials is None else set(trials.to_table(columns=["config_hash"]).column("config_hash").to_pylist())
    if not used <= hashes:
        raise InvalidValueError(
            f"cannot import {root.shown!r}: trials of {manifest.experiment_id!r} use config hashes the "
            f"export holds no values for ({', '.join(map(repr, sorted(map(str, used - hashes))[:3]))}); "
            "nothing was imported")
    return rows


def _import_one(engine: Engine, root: Lake, manifest: Manifest, configs: pa.Table | None, steps: Steps) -> None:
    experiment_id = manifest.experiment_id
    for table in tables(engine.catalog):
        _import_table(engine, root, manifest, table, configs)
        steps.step(None)
    orphans = engine.fetch_table(engine.catalog.import_orphan_rows, experiment_id=experiment_id).to_pylist()
    if orphans:
        listed = ", ".join(f"{o['row_count']} {o['table_name']} row(s) of trial {o['trial_id']}" for o in orphans[:5])
        raise InvalidValueError(
            f"cannot import {root.shown!r}: experiment {experiment_id!r} has rows of trials its trial table "
            f"lacks ({listed}); nothing was imported")


def _import_table(engine: Engine, root: Lake, manifest: Manifest, table: Table, configs: pa.Table | None) -> None:
    experiment_id = manifest.experiment_id
    if table.folder == "tunable_param":  # configs first, so their params and trials find this store's ids
        if configs is not None:
            engine.ingest(engine.catalog.import_tunable_config_insert, configs)
            engine.ingest(table.insert, configs)
        return
    dataset = _read(root, manifest, table)
    if dataset is None:
        return  # the export had no rows for this table
    what = f"cannot import {root.shown!r}: {table.folder}"
    if table.streamed:  # telemetry: streamed, numbered
        times = [f.name for f in dataset.schema if pa.types.is_timestamp(f.type)]
        for batch in dataset.scanner(columns=times).to_batches():  # checked before the ingest, which streams
            _check_times(batch, what)
        engine.ingest(table.insert, _numbered(dataset.scanner().to_reader()), experiment_id=experiment_id)
    else:
        rows = dataset.to_table()
        _check_times(rows, what)
        engine.ingest(table.insert, rows, experiment_id=experiment_id)


def _check_times(rows: pa.Table | pa.RecordBatch, what: str) -> None:
    """Refuse timestamps outside years 1 to 9999: a crafted file's later ones would be stored and then
    break every read of them (as ``update_telemetry`` refuses them)."""
    for field in rows.schema:
        if pa.types.is_timestamp(field.type):
            check_timestamp_range(pc.drop_null(rows.column(field.name)), f"{what} column {field.name!r}")


def _numbered(reader: pa.RecordBatchReader) -> pa.RecordBatchReader:
    """The rows with ``row_idx``, their place in the files, so a repeated point keeps its first value."""
    schema = reader.schema.append(pa.field("row_idx", pa.int64()))

    def batches() -> Iterator[pa.RecordBatch]:
        start, counting = 0, pa.array([], pa.int64())
        for batch in reader:
            if len(counting) < batch.num_rows:  # 0, 1, 2, ... made once per batch size, then sliced
                counting = pa.array(range(batch.num_rows), pa.int64())
            index = pc.add(counting.slice(0, batch.num_rows), pa.scalar(start, pa.int64()))
            yield pa.RecordBatch.from_arrays([*batch.columns, index], schema=schema)
            start += batch.num_rows

    return pa.RecordBatchReader.from_batches(schema, batches())


def _read(root: Lake, manifest: Manifest, table: Table) -> ds.Dataset | None:
    """The rows of one table of the experiment, from exactly the files its manifests list (None: no rows)."""
    return lakes.dataset(manifest, table.folder)
