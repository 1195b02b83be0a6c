-- name: session_use_utc :none
-- Timestamps come back in UTC whatever the machine's zone.
SET TimeZone = 'UTC';

-- name: session_no_replacement_scans :none
-- A table name can never bind to a caller's Python variable; Arrow inputs
-- are registered explicitly by the engine.
SET python_enable_replacements = false;

-- name: session_no_extension_autoinstall :none
-- SQL a person wrote (`mlos-store sql`) must not make DuckDB download or
-- install an extension behind their back.
SET autoinstall_known_extensions = false;

-- name: session_no_extension_autoload :none
-- Nor load one: an extension already installed stays unloaded.
SET autoload_known_extensions = false;

-- name: session_no_external_access :none
-- SQL a person wrote reads the attached store and nothing else: no other
-- file, no URL, no ATTACH. DuckDB can set this but never unset it for a
-- database, so it runs only on a private connection opened for that SQL.
SET enable_external_access = false;
