-- name: store_attach :none
-- Attaches the store file read-write as `store`, for one turn of a store
-- shared between processes (the engine holds the OS lock meanwhile).
ATTACH $path AS store (TYPE duckdb);

-- name: store_attach_read_only :none
-- Attaches the store file read-only as `store`: several processes may do
-- so at once, and nothing in the file can change.
ATTACH $path AS store (TYPE duckdb, READ_ONLY);

-- name: store_use :none
-- Makes the attached store the default database, so every named query
-- finds its tables, types and macros unqualified.
USE store;

-- name: store_leave :none
-- Returns to the connection's own in-memory database before detaching.
USE memory;

-- name: store_detach :none
-- Detaches the store file (DuckDB checkpoints it), ending a turn.
DETACH store;

-- name: store_attached :one
-- Whether the store file is still attached (after a DETACH that failed).
SELECT count(*) > 0 AS attached FROM duckdb_databases() WHERE database_name = 'store';
