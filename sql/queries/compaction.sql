-- Compaction: the store's rows copied into a freshly created file, which
-- then replaces it. A file written turn by turn keeps partly used and free
-- blocks (DuckDB never shrinks a file); the copy packs the same rows as a
-- bulk write would. Run on a private connection while the engine holds the
-- file's OS lock exclusively and has let go of the file itself.

-- name: compaction_attach_source :none
-- Attaches the store file read-only as `compact_source` (DuckDB replays its
-- write-ahead log, so the copy holds every committed transaction).
ATTACH $path AS compact_source (TYPE duckdb, READ_ONLY);

-- name: compaction_attach_target :none
-- Attaches the freshly created store file the rows are copied into.
ATTACH $path AS compact_target (TYPE duckdb);

-- name: compaction_use_target :none
-- Makes the new file the default database: its CHECK constraints call the
-- schema's macros by their plain names, which resolve in the default one.
USE compact_target;

-- name: compaction_clear_target_info :none
-- The new file's own marker rows, which the copy brings back from the store.
DELETE FROM compact_target.store_info;

-- name: compaction_clear_target_migrations :none
-- The new file's own migration rows, which the copy brings back from the store.
DELETE FROM compact_target.schema_migration;

-- name: compaction_copy :none
-- Every row of every table, table by table, in one statement.
COPY FROM DATABASE compact_source TO compact_target (DATA);

-- name: compaction_advance_config_ids :value
-- Moves the new file's config id sequence to where the store's was, so the
-- next config id is never one already used (the copy takes rows only).
SELECT count(nextval('compact_target.main.tunable_config_id_seq'))
FROM range((SELECT coalesce(max(last_value), 0) FROM duckdb_sequences()
            WHERE database_name = 'compact_source' AND sequence_name = 'tunable_config_id_seq'));

-- name: compaction_advance_status_seq :value
-- Moves the new file's status history sequence to where the store's was.
SELECT count(nextval('compact_target.main.trial_status_seq'))
FROM range((SELECT coalesce(max(last_value), 0) FROM duckdb_sequences()
            WHERE database_name = 'compact_source' AND sequence_name = 'trial_status_seq'));

-- name: compaction_row_counts :arrow
-- Rows of each table in the store and in its copy, which must all agree
-- before the copy replaces the store (tests check every table is listed).
SELECT table_name, source_rows, target_rows FROM (VALUES
    ('store_info', (SELECT count(*) FROM compact_source.store_info), (SELECT count(*) FROM compact_target.store_info)),
    ('schema_migration', (SELECT count(*) FROM compact_source.schema_migration),
                         (SELECT count(*) FROM compact_target.schema_migration)),
    ('experiment', (SELECT count(*) FROM compact_source.experiment), (SELECT count(*) FROM compact_target.experiment)),
    ('objective', (SELECT count(*) FROM compact_source.objective), (SELECT count(*) FROM compact_target.objective)),
    ('experiment_tunable', (SELECT count(*) FROM compact_source.experiment_tunable),
                           (SELECT count(*) FROM compact_target.experiment_tunable)),
    ('tunable_config', (SELECT count(*) FROM compact_source.tunable_config),
                       (SELECT count(*) FROM compact_target.tunable_config)),
    ('tunable_param', (SELECT count(*) FROM compact_source.tunable_param),
                      (SELECT count(*) FROM compact_target.tunable_param)),
    ('trial', (SELECT count(*) FROM compact_source.trial), (SELECT count(*) FROM compact_target.trial)),
    ('trial_param', (SELECT count(*) FROM compact_source.trial_param), (SELECT count(*) FROM compact_target.trial_param)),
    ('trial_status', (SELECT count(*) FROM compact_source.trial_status),
                     (SELECT count(*) FROM compact_target.trial_status)),
    ('trial_result', (SELECT count(*) FROM compact_source.trial_result),
                     (SELECT count(*) FROM compact_target.trial_result)),
    ('trial_telemetry', (SELECT count(*) FROM compact_source.trial_telemetry),
                        (SELECT count(*) FROM compact_target.trial_telemetry)),
    ('experiment_merge', (SELECT count(*) FROM compact_source.experiment_merge),
                         (SELECT count(*) FROM compact_target.experiment_merge)),
    ('import_config_map', (SELECT count(*) FROM compact_source.import_config_map),
                          (SELECT count(*) FROM compact_target.import_config_map)),
    ('import_new_trial', (SELECT count(*) FROM compact_source.import_new_trial),
                         (SELECT count(*) FROM compact_target.import_new_trial)),
    ('sync_source', (SELECT count(*) FROM compact_source.sync_source), (SELECT count(*) FROM compact_target.sync_source))
) AS counts(table_name, source_rows, target_rows)
ORDER BY table_name;

-- name: compaction_leave_target :none
-- Back to the private connection's own database, so the new file can be detached.
USE memory;

-- name: compaction_detach_source :none
-- Lets go of the store file after the copy.
DETACH compact_source;

-- name: compaction_detach_target :none
-- Lets go of the new file (DuckDB checkpoints it) before it replaces the store.
DETACH compact_target;
