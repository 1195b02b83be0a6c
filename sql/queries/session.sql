-- name: session_use_utc :none
-- Timestamps come back in UTC whatever the machine's zone.
SET TimeZone = 'UTC';

-- name: session_no_replacement_scans :none
-- A table name can never bind to a caller's Python variable; Arrow inputs
-- are registered explicitly by the engine.
SET python_enable_replacements = false;
