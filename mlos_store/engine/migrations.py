"""Creating a store and upgrading it: the schema version a file has, and the migrations past it."""

from __future__ import annotations

import contextlib

import duckdb

from ..errors import NotAStoreError, SchemaVersionError, StoreError
from .files import STORE_FORMAT
from .turns import Turns


class Migrations(Turns):
    """Reads a file's schema version without writing to it, and applies each newer schema file in order."""

    def _check_upgradable(self, version: int) -> None:
        if version < self.catalog.schema_version and self.read_only:
            raise SchemaVersionError(
                f"{self.path!r} has schema version {version}, this mlos_store needs "
                f"{self.catalog.schema_version}: open it once read-write to upgrade it"
            )

    def _inspect(self) -> int:
        """The schema version of an existing file, read without writing to it."""
        con = self._connect(read_only=True)
        try:
            return self._probe(con)
        finally:
            con.close()

    def _inspect_attached(self) -> int:
        return self._probe(self._con_or_raise())

    def _probe(self, con: duckdb.DuckDBPyConnection) -> int:
        """The schema version of the open database; refuses one that is not a store or is too new."""
        probe = self._fetch_row(con, self.catalog.store_probe)
        if probe.object_count == 0:
            return 0  # an empty DuckDB database: made a store like a new file
        if not probe.has_store_info:
            raise NotAStoreError(
                f"{self.path!r} is a DuckDB database but not an mlos_store database "
                f"({probe.object_count} foreign objects); it was left untouched"
            )
        stored = self._fetch_row(con, self.catalog.store_format_version)
        if stored.format != STORE_FORMAT:
            raise NotAStoreError(f"{self.path!r} is not an mlos_store database (format {stored.format!r})")
        if stored.version is None or stored.version > self.catalog.schema_version:
            raise SchemaVersionError(
                f"{self.path!r} has schema version {stored.version}, newer than this mlos_store knows "
                f"({self.catalog.schema_version}): upgrade mlos_store to open it"
            )
        return int(stored.version)

    def _migrate(self, con: duckdb.DuckDBPyConnection, *, from_version: int, close_on_failure: bool = True) -> None:
        """Apply each schema file past ``from_version``, each in one transaction.

        On failure the file keeps the last version fully applied and is
        released (the connection closed, or the file detached) before the
        error propagates.
        """
        for migration in self.catalog.migrations[from_version:]:
            try:
                con.begin()
                try:
                    con.execute(migration.sql)
                except duckdb.Error as exc:
                    raise SchemaVersionError(
                        f"{self.path!r}: schema file {migration.version:04d}_{migration.name}.sql failed, "
                        f"the store stays at version {migration.version - 1}: {exc}"
                    ) from exc
                self._run(con, self.catalog.schema_migration_record,
                          {"version": migration.version, "name": migration.name})
                con.commit()
            except BaseException:
                with contextlib.suppress(duckdb.Error):
                    con.rollback()
                if close_on_failure:
                    con.close()
                else:
                    with contextlib.suppress(duckdb.Error, StoreError):
                        self._detach()
                raise
