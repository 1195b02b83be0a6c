-- name: store_probe :one
-- What the open database holds: how many user objects (tables, views,
-- sequences, macros, types), and whether the store marker table is one of
-- them. Tells a new database from a store from a foreign DuckDB file
-- before anything is written.
SELECT
    (SELECT count(*) FROM duckdb_tables()
      WHERE database_name = current_database())
    + (SELECT count(*) FROM duckdb_views()
        WHERE database_name = current_database() AND NOT internal)
    + (SELECT count(*) FROM duckdb_sequences()
        WHERE database_name = current_database())
    + (SELECT count(*) FROM duckdb_functions()
        WHERE database_name = current_database() AND NOT internal)
    + (SELECT count(*) FROM duckdb_types()
        WHERE database_name = current_database() AND NOT internal) AS object_count,
    (SELECT count(*) FROM duckdb_tables()
      WHERE database_name = current_database()
        AND schema_name = 'main' AND table_name = 'store_info') AS has_store_info;

-- name: store_format_version :one
-- The store marker and the highest schema version applied.
SELECT
    (SELECT value FROM store_info WHERE key = 'format') AS format,
    (SELECT max(version) FROM schema_migration) AS version;

-- name: schema_migration_record :none
-- Records that a schema file was applied; runs in the same transaction.
INSERT INTO schema_migration (version, name, applied_at)
VALUES ($version, $name, now());
