-- The one import pipeline: Storage.import_store, Storage.sync and
-- Storage.import_parquet all run these statements over a source store
-- attached read-only as import_source (a lake is first staged into such a
-- store, see mlos_store/parquet.py). The source is checked, from its
-- catalog alone, to hold exactly this store's tables, views, macros, types
-- and sequences before any of it is read; every statement then reads it
-- set-based. Telemetry is read from $telemetry_from on (source rowids: the
-- source's rows already brought by an earlier sync are skipped; 0 reads all).

-- name: import_store_attach :none
-- Attaches the store file to copy from, read-only, for one import.
ATTACH $path AS import_source (TYPE duckdb, READ_ONLY);

-- name: import_store_detach :none
-- Releases the store file copied from.
DETACH import_source;

-- name: import_store_source_probe :one
-- Whether the attached database has the store's marker and version tables,
-- read from the catalog so a foreign database fails no binding.
SELECT
    (SELECT count(*) FROM duckdb_tables()
      WHERE database_name = 'import_source' AND schema_name = 'main'
        AND table_name IN ('store_info', 'schema_migration')) = 2 AS is_store;

-- name: import_store_source_unexpected_objects :arrow
-- Every catalog entry of the attached source that this store does not have
-- the same (`unexpected`), and every one of this store the source lacks
-- (`missing`): schemas, base tables, their columns (type, default or
-- generating expression) and constraints, views, macros, types and sequences. Read from the
-- catalog only, so a view or generated column of a crafted file (over
-- read_text, range, ...) is found before anything of the source is read.
WITH entries AS (
    SELECT database_name, 'schema' AS kind, schema_name AS name, '' AS definition
    FROM duckdb_schemas() WHERE NOT internal
    UNION ALL
    SELECT database_name, 'table', schema_name || '.' || table_name, ''
    FROM duckdb_tables() WHERE NOT internal
    UNION ALL
    SELECT database_name, 'column', schema_name || '.' || table_name || '.' || column_name,
           column_index || ' ' || data_type || coalesce(' default ' || column_default, '')
           || CASE WHEN is_generated THEN ' generated' ELSE '' END
    FROM duckdb_columns() WHERE NOT internal
    UNION ALL
    SELECT database_name, 'view', schema_name || '.' || view_name, sql
    FROM duckdb_views() WHERE NOT internal
    UNION ALL
    SELECT database_name, function_type, schema_name || '.' || function_name,
           coalesce(parameters::VARCHAR, '') || ' ' || coalesce(macro_definition, '')
    FROM duckdb_functions() WHERE NOT internal
    UNION ALL
    SELECT database_name, 'type', schema_name || '.' || type_name,
           logical_type || ' ' || coalesce(labels::VARCHAR, '')
    FROM duckdb_types() WHERE NOT internal
    UNION ALL
    SELECT database_name, 'constraint', schema_name || '.' || table_name,
           constraint_type || ' ' || coalesce(constraint_text, '')
    FROM duckdb_constraints()
    UNION ALL
    SELECT database_name, 'sequence', schema_name || '.' || sequence_name,
           concat_ws(' ', min_value, max_value, increment_by, cycle)
    FROM duckdb_sequences() WHERE NOT temporary
),
source_side AS (
    SELECT kind, name, definition FROM entries WHERE database_name = 'import_source'
),
store_side AS (
    SELECT kind, name, definition FROM entries WHERE database_name = current_database()
)
SELECT 'unexpected' AS problem, kind, name
FROM (FROM source_side EXCEPT FROM store_side)
UNION ALL
SELECT 'missing' AS problem, kind, name
FROM (FROM store_side EXCEPT FROM source_side)
ORDER BY problem DESC, kind IN ('column', 'constraint'), name, kind;

-- name: import_store_source_format_version :one
-- The attached store's marker and the highest schema version applied to it.
SELECT
    (SELECT value FROM import_source.store_info WHERE key = 'format') AS format,
    (SELECT max(version) FROM import_source.schema_migration) AS version;

-- name: import_store_source_experiment_list :arrow
-- The experiments the attached store holds, by id, each once.
SELECT DISTINCT experiment_id FROM import_source.experiment ORDER BY experiment_id;

-- name: import_store_source_config_values :arrow
-- The stored hash and the values of every config the chosen experiments'
-- trials use (a config without values: one row, its name null), so the
-- hashes can be checked against the values before any is trusted.
SELECT c.config_id, c.config_hash, p.tunable_name AS name, p.value_kind::VARCHAR AS value_kind,
       p.value, p.value_int, p.value_text
FROM import_source.tunable_config c
LEFT JOIN import_source.tunable_param p ON p.config_id = c.config_id
WHERE c.config_id IN (SELECT config_id FROM import_source.trial WHERE list_contains($experiment_ids, experiment_id))
ORDER BY c.config_id;

-- name: import_store_source_orphans :arrow
-- Rows of the chosen experiments the source holds without their parent (no
-- foreign key keeps them out of trial_telemetry, nor, without foreign keys,
-- out of any table): trials whose config it lacks, and trial values,
-- history and telemetry of trials it lacks, counted by trial and table.
WITH source_trial AS (
    SELECT experiment_id, trial_id FROM import_source.trial
    WHERE list_contains($experiment_ids, experiment_id)
),
orphans AS (
    SELECT experiment_id, trial_id, 'trial (its config ' || config_id || ' is missing)' AS rows_of
    FROM import_source.trial
    WHERE list_contains($experiment_ids, experiment_id)
      AND config_id NOT IN (SELECT config_id FROM import_source.tunable_config)
    UNION ALL
    SELECT experiment_id, trial_id, 'trial_param' FROM import_source.trial_param
    WHERE list_contains($experiment_ids, experiment_id)
      AND (experiment_id, trial_id) NOT IN (SELECT (experiment_id, trial_id) FROM source_trial)
    UNION ALL
    SELECT experiment_id, trial_id, 'trial_status' FROM import_source.trial_status
    WHERE list_contains($experiment_ids, experiment_id)
      AND (experiment_id, trial_id) NOT IN (SELECT (experiment_id, trial_id) FROM source_trial)
    UNION ALL
    SELECT experiment_id, trial_id, 'trial_result' FROM import_source.trial_result
    WHERE list_contains($experiment_ids, experiment_id)
      AND (experiment_id, trial_id) NOT IN (SELECT (experiment_id, trial_id) FROM source_trial)
    UNION ALL
    SELECT experiment_id, trial_id, 'telemetry' FROM import_source.trial_telemetry
    WHERE rowid >= $telemetry_from
      AND list_contains($experiment_ids, experiment_id)
      AND (experiment_id, trial_id) NOT IN (SELECT (experiment_id, trial_id) FROM source_trial)
)
SELECT experiment_id, trial_id, rows_of, count(*) AS row_count
FROM orphans
GROUP BY ALL
ORDER BY experiment_id, trial_id, rows_of;

-- name: import_store_source_unreadable_times :arrow
-- Timestamps of the chosen experiments outside years 1 to 9999 (UTC), by
-- table and column: DuckDB stores them, but every read returns Python
-- datetimes, which hold no other years, so such a row would break each
-- read of it. The first few, to name them in the refusal.
WITH times(table_name, column_name, experiment_id, trial_id, ts) AS (
    SELECT 'trial', 'ts_created', experiment_id, trial_id, ts_created FROM import_source.trial
    UNION ALL SELECT 'trial', 'ts_start', experiment_id, trial_id, ts_start FROM import_source.trial
    UNION ALL SELECT 'trial', 'ts_end', experiment_id, trial_id, ts_end FROM import_source.trial
    UNION ALL SELECT 'trial_status', 'ts', experiment_id, trial_id, ts FROM import_source.trial_status
    UNION ALL SELECT 'trial_telemetry', 'ts', experiment_id, trial_id, ts FROM import_source.trial_telemetry
              WHERE rowid >= $telemetry_from
    UNION ALL SELECT 'experiment', 'ts_created', experiment_id, NULL, ts_created FROM import_source.experiment
)
SELECT table_name, column_name, experiment_id, trial_id, ts::VARCHAR AS ts
FROM times
WHERE list_contains($experiment_ids, experiment_id)
  AND (ts < TIMESTAMPTZ '0001-01-01 00:00:00+00' OR ts >= TIMESTAMPTZ '9999-12-31 23:59:59.999999+00')
ORDER BY table_name, column_name, experiment_id, trial_id
LIMIT 5;

-- name: import_store_source_broken_rules :arrow
-- Rows of the chosen experiments the API would never have stored, by rule,
-- table, experiment and trial (the first few): a telemetry point or a
-- result with an empty metric name, and a config value of a tunable the
-- trial's experiment never declared.
WITH broken(rule, table_name, experiment_id, trial_id) AS (
    SELECT 'empty metric name', 'trial_telemetry', experiment_id, trial_id
    FROM import_source.trial_telemetry
    WHERE rowid >= $telemetry_from AND list_contains($experiment_ids, experiment_id) AND metric = ''
    UNION ALL
    SELECT 'empty metric name', 'trial_result', experiment_id, trial_id
    FROM import_source.trial_result
    WHERE list_contains($experiment_ids, experiment_id) AND metric = ''
    UNION ALL
    SELECT 'tunable ' || p.tunable_name || ' not declared by the experiment', 'tunable_param',
           t.experiment_id, t.trial_id
    FROM import_source.trial t
    JOIN import_source.tunable_param p ON p.config_id = t.config_id
    WHERE list_contains($experiment_ids, t.experiment_id)
      AND NOT EXISTS (
          SELECT 1 FROM import_source.experiment_tunable e
          WHERE e.experiment_id = t.experiment_id AND e.tunable_name = p.tunable_name
      )
)
SELECT rule, table_name, experiment_id, min(trial_id) AS trial_id, count(*) AS row_count
FROM broken
GROUP BY ALL
ORDER BY rule, table_name, experiment_id
LIMIT 5;

-- name: import_store_objective_conflicts :arrow
-- Experiments stored on both sides whose objectives differ: each target
-- whose direction is not the same on both sides (null: not declared there).
WITH source_side AS (
    SELECT experiment_id, optimization_target, optimization_direction
    FROM import_source.objective
    WHERE list_contains($experiment_ids, experiment_id)
      AND experiment_id IN (SELECT experiment_id FROM experiment)
),
store_side AS (
    SELECT experiment_id, optimization_target, optimization_direction
    FROM objective
    WHERE list_contains($experiment_ids, experiment_id)
      AND experiment_id IN (SELECT experiment_id FROM import_source.experiment)
)
SELECT coalesce(s.experiment_id, d.experiment_id) AS experiment_id,
       coalesce(s.optimization_target, d.optimization_target) AS optimization_target,
       s.optimization_direction AS source_direction,
       d.optimization_direction AS store_direction
FROM source_side s
FULL JOIN store_side d
  ON s.experiment_id = d.experiment_id AND s.optimization_target = d.optimization_target
WHERE s.optimization_direction IS DISTINCT FROM d.optimization_direction
ORDER BY experiment_id, optimization_target;

-- name: import_store_tunable_conflicts :arrow
-- Tunables declared on both sides for one experiment whose types do not fit.
SELECT s.experiment_id, s.tunable_name,
       s.value_kind::VARCHAR AS source_kind, d.value_kind::VARCHAR AS store_kind
FROM import_source.experiment_tunable s
JOIN experiment_tunable d
  ON d.experiment_id = s.experiment_id AND d.tunable_name = s.tunable_name
WHERE list_contains($experiment_ids, s.experiment_id)
  AND NOT value_kind_fits(s.value_kind::VARCHAR, d.value_kind::VARCHAR)
ORDER BY s.experiment_id, s.tunable_name;

-- name: import_store_trial_conflicts :arrow
-- Trials stored on both sides under one (experiment, trial id) that are not
-- the same trial: created at another time, or with other tunable values.
-- The same trial (an earlier import of this file) is no conflict.
SELECT s.experiment_id, s.trial_id
FROM import_source.trial s
JOIN import_source.tunable_config sc ON sc.config_id = s.config_id
JOIN trial d ON d.experiment_id = s.experiment_id AND d.trial_id = s.trial_id
JOIN tunable_config dc ON dc.config_id = d.config_id
WHERE list_contains($experiment_ids, s.experiment_id)
  AND (s.ts_created <> d.ts_created OR sc.config_hash <> dc.config_hash)
ORDER BY s.experiment_id, s.trial_id;

-- name: import_store_experiment_insert :count
-- Copies the experiment records not stored here yet; a stored one keeps its
-- description and first trial id, as when an experiment is resumed. A
-- source holding one id twice (no key keeps a file from it; a lake of
-- several runners does) gives one record: the earliest created.
INSERT INTO experiment (experiment_id, description, root_env_config,
                        git_repo, git_commit, first_trial_id, ts_created)
SELECT DISTINCT ON (experiment_id) experiment_id, description, root_env_config,
       git_repo, git_commit, first_trial_id, ts_created
FROM import_source.experiment
WHERE list_contains($experiment_ids, experiment_id)
  AND experiment_id NOT IN (SELECT experiment_id FROM experiment)
ORDER BY experiment_id, ts_created, first_trial_id;

-- name: import_store_objective_insert :count
-- Copies the objectives of the experiments just copied (those of a stored
-- experiment were checked equal).
INSERT INTO objective (experiment_id, optimization_target,
                       optimization_direction, ordinal)
SELECT DISTINCT ON (s.experiment_id, s.optimization_target)
       s.experiment_id, s.optimization_target, s.optimization_direction, s.ordinal
FROM import_source.objective s
WHERE list_contains($experiment_ids, s.experiment_id)
  AND NOT EXISTS (
      SELECT 1 FROM objective d
      WHERE d.experiment_id = s.experiment_id
        AND d.optimization_target = s.optimization_target
  )
ORDER BY s.experiment_id, s.optimization_target, s.ordinal;

-- name: import_store_experiment_tunable_insert :count
-- Copies the declared tunables not declared here yet; a stored default stays.
INSERT INTO experiment_tunable (experiment_id, tunable_name, value_kind,
                                value, value_int, value_text)
SELECT DISTINCT ON (s.experiment_id, s.tunable_name) s.experiment_id, s.tunable_name, s.value_kind::VARCHAR,
       s.value, s.value_int, s.value_text
FROM import_source.experiment_tunable s
WHERE list_contains($experiment_ids, s.experiment_id)
  AND NOT EXISTS (
      SELECT 1 FROM experiment_tunable d
      WHERE d.experiment_id = s.experiment_id AND d.tunable_name = s.tunable_name
  )
ORDER BY s.experiment_id, s.tunable_name, s.rowid;

-- name: import_store_config_map_fill :count
-- Decides the config id of every config the copied trials use: the stored
-- id of the same values (same hash) if there is one, else the source id if
-- it is free here, else a new id above every id in use.
INSERT INTO import_config_map (source_config_id, config_id, is_new)
WITH used AS (
    SELECT DISTINCT c.config_id, c.config_hash
    FROM import_source.trial t
    JOIN import_source.tunable_config c ON c.config_id = t.config_id
    WHERE list_contains($experiment_ids, t.experiment_id)
),
placed AS (
    SELECT u.config_id AS source_config_id, d.config_id AS stored_id,
           d.config_id IS NULL AND u.config_id NOT IN (SELECT config_id FROM tunable_config) AS keeps_id
    FROM used u
    LEFT JOIN tunable_config d ON d.config_hash = u.config_hash
),
highest AS (
    SELECT greatest(
        (SELECT coalesce(max(config_id), 0) FROM tunable_config),
        (SELECT coalesce(max(source_config_id), 0) FROM placed WHERE keeps_id)
    ) AS top_id
)
SELECT source_config_id,
       CASE
           WHEN stored_id IS NOT NULL THEN stored_id
           WHEN keeps_id THEN source_config_id
           ELSE (SELECT top_id FROM highest)
                + row_number() OVER (PARTITION BY stored_id IS NULL AND NOT keeps_id
                                     ORDER BY source_config_id)
       END AS config_id,
       stored_id IS NULL AS is_new
FROM placed;

-- name: import_store_tunable_config_insert :count
-- Copies the configs not stored here yet, under the ids decided for them.
INSERT INTO tunable_config (config_id, config_hash, ts_created, hash_key)
SELECT m.config_id, c.config_hash, c.ts_created, config_hash_key(c.config_hash)
FROM import_config_map m
JOIN import_source.tunable_config c ON c.config_id = m.source_config_id
WHERE m.is_new
ORDER BY m.config_id;

-- name: import_store_config_ids_reserve :value
-- Moves the config id sequence past every stored id (counting the ids it
-- hands out), so a config stored later by any path (a new trial, another
-- importer) never takes an id this import kept from the source.
SELECT count(nextval('tunable_config_id_seq'))
FROM range(greatest(0,
    (SELECT coalesce(max(config_id), 0) FROM tunable_config)
    - (SELECT coalesce(max(last_value), 0) FROM duckdb_sequences()
        WHERE database_name = current_database()
          AND sequence_name = 'tunable_config_id_seq')));

-- name: import_store_tunable_param_insert :count
-- Copies the values of the configs just copied.
INSERT INTO tunable_param (config_id, tunable_name, value_kind,
                           value, value_int, value_text)
SELECT m.config_id, p.tunable_name, p.value_kind::VARCHAR, p.value, p.value_int, p.value_text
FROM import_config_map m
JOIN import_source.tunable_param p ON p.config_id = m.source_config_id
WHERE m.is_new;

-- name: import_store_new_trial_fill :count
-- Lists the trials to copy: those of the chosen experiments not stored
-- here yet (a stored one was checked to be the same trial).
INSERT INTO import_new_trial (experiment_id, trial_id)
SELECT s.experiment_id, s.trial_id
FROM import_source.trial s
WHERE list_contains($experiment_ids, s.experiment_id)
  AND NOT EXISTS (
      SELECT 1 FROM trial d
      WHERE d.experiment_id = s.experiment_id AND d.trial_id = s.trial_id
  );

-- name: import_store_trial_insert :count
-- Copies the listed trials with their ids, their config ids mapped.
INSERT INTO trial (experiment_id, trial_id, config_id, status, ts_created,
                   ts_start, ts_end, trial_runner_id)
SELECT s.experiment_id, s.trial_id, m.config_id, s.status::VARCHAR, s.ts_created,
       s.ts_start, s.ts_end, s.trial_runner_id
FROM import_source.trial s
JOIN import_new_trial n ON n.experiment_id = s.experiment_id AND n.trial_id = s.trial_id
JOIN import_config_map m ON m.source_config_id = s.config_id
ORDER BY s.experiment_id, s.trial_id;

-- name: import_store_trial_param_insert :count
-- Copies the trial configs of the listed trials.
INSERT INTO trial_param (experiment_id, trial_id, param_name, value_kind,
                         value, value_int, value_text)
SELECT s.experiment_id, s.trial_id, s.param_name, s.value_kind::VARCHAR,
       s.value, s.value_int, s.value_text
FROM import_source.trial_param s
JOIN import_new_trial n ON n.experiment_id = s.experiment_id AND n.trial_id = s.trial_id;

-- name: import_store_trial_advance :count
-- The later life of trials stored here already (an earlier import or sync
-- of the same source): each takes the source's status, start and end
-- times and runner if that is not a step back. A trial stored here with a
-- final status never changes, and one is never moved to an earlier stage
-- (PENDING, READY, RUNNING, final), so a stale source cannot undo a newer
-- state. (The trials were checked to be the same: created at the same time
-- with the same config.)
UPDATE trial d
SET status = s.status::VARCHAR, ts_start = s.ts_start, ts_end = s.ts_end, trial_runner_id = s.trial_runner_id
FROM import_source.trial s
WHERE list_contains($experiment_ids, s.experiment_id)
  AND d.experiment_id = s.experiment_id AND d.trial_id = s.trial_id
  AND d.status NOT IN ('SUCCEEDED', 'CANCELED', 'FAILED', 'TIMED_OUT')
  AND CASE s.status::VARCHAR WHEN 'PENDING' THEN 1 WHEN 'READY' THEN 2 WHEN 'RUNNING' THEN 3 ELSE 4 END
      >= CASE d.status::VARCHAR WHEN 'PENDING' THEN 1 WHEN 'READY' THEN 2 WHEN 'RUNNING' THEN 3 ELSE 4 END
  AND (s.status::VARCHAR, s.ts_start, s.ts_end, s.trial_runner_id)
      IS DISTINCT FROM (d.status::VARCHAR, d.ts_start, d.ts_end, d.trial_runner_id);

-- name: import_store_trial_status_insert :count
-- Copies the status history entries this store lacks of every trial whose
-- stored state now equals the source's (a trial just copied or moved on;
-- a stale source's trials are skipped). Each change gets a fresh number
-- from this store's sequence, handed out in the order of the source
-- numbers (the k-th oldest change gets the k-th smallest number), so
-- histories keep their order and later changes still number after them.
INSERT INTO trial_status (experiment_id, trial_id, seq, ts, status)
WITH copied AS MATERIALIZED (
    SELECT s.experiment_id, s.trial_id, s.ts, s.status::VARCHAR AS status,
           row_number() OVER (ORDER BY s.seq) AS position,
           nextval('trial_status_seq') AS fresh_seq
    FROM import_source.trial_status s
    SEMI JOIN (
        SELECT st.experiment_id, st.trial_id
        FROM import_source.trial st
        JOIN trial d ON d.experiment_id = st.experiment_id AND d.trial_id = st.trial_id
            AND d.status::VARCHAR = st.status::VARCHAR AND d.ts_end IS NOT DISTINCT FROM st.ts_end
        WHERE list_contains($experiment_ids, st.experiment_id)
    ) same ON same.experiment_id = s.experiment_id AND same.trial_id = s.trial_id
    WHERE list_contains($experiment_ids, s.experiment_id)
      AND NOT EXISTS (
          SELECT 1 FROM trial_status h
          WHERE h.experiment_id = s.experiment_id AND h.trial_id = s.trial_id
            AND h.ts = s.ts AND h.status::VARCHAR = s.status::VARCHAR
      )
),
numbers AS (
    SELECT fresh_seq, row_number() OVER (ORDER BY fresh_seq) AS position
    FROM copied
)
SELECT c.experiment_id, c.trial_id, x.fresh_seq, c.ts, c.status
FROM copied c
JOIN numbers x ON x.position = c.position
ORDER BY x.fresh_seq;

-- name: import_store_trial_result_insert :count
-- Copies the results this store lacks of every trial whose stored state
-- now equals the source's (in the same transaction as its end, so no
-- trial is ever seen ended without its results).
INSERT INTO trial_result (experiment_id, trial_id, metric, value_kind,
                          value, value_int, value_text)
SELECT s.experiment_id, s.trial_id, s.metric, s.value_kind::VARCHAR,
       s.value, s.value_int, s.value_text
FROM import_source.trial_result s
SEMI JOIN (
    SELECT st.experiment_id, st.trial_id
    FROM import_source.trial st
    JOIN trial d ON d.experiment_id = st.experiment_id AND d.trial_id = st.trial_id
        AND d.status::VARCHAR = st.status::VARCHAR AND d.ts_end IS NOT DISTINCT FROM st.ts_end
    WHERE list_contains($experiment_ids, st.experiment_id)
) same ON same.experiment_id = s.experiment_id AND same.trial_id = s.trial_id
WHERE list_contains($experiment_ids, s.experiment_id)
  AND NOT EXISTS (
      SELECT 1 FROM trial_result r
      WHERE r.experiment_id = s.experiment_id AND r.trial_id = s.trial_id AND r.metric = s.metric
  );

-- name: import_store_source_repeated_points :value
-- Whether the source's telemetry rows from $telemetry_from on hold a point
-- of the chosen experiments more than once (the table has no key, so a
-- damaged or crafted file may).
SELECT EXISTS (
    SELECT 1 FROM import_source.trial_telemetry
    WHERE rowid >= $telemetry_from AND list_contains($experiment_ids, experiment_id)
    GROUP BY experiment_id, trial_id, ts, metric
    HAVING count(*) > 1
);

-- name: import_store_telemetry_insert :count
-- Copies the source's telemetry rows from $telemetry_from on, of the
-- chosen experiments, that this store lacks, in one streaming statement,
-- in the source's order (trial by trial, as it was written). Every row is
-- anti-joined against the points stored here (the watermark only prunes),
-- but only against those of the trials the rows belong to: a trial new here
-- has none, so a first import streams, and a sync's few new rows are never
-- matched against every stored point.
INSERT INTO trial_telemetry (experiment_id, trial_id, ts, metric, value_kind,
                             value, value_int, value_text)
WITH touched AS (
    SELECT DISTINCT experiment_id, trial_id FROM import_source.trial_telemetry
    WHERE rowid >= $telemetry_from AND list_contains($experiment_ids, experiment_id)
),
stored AS (
    SELECT d.experiment_id, d.trial_id, d.ts, d.metric FROM trial_telemetry d
    SEMI JOIN touched t ON t.experiment_id = d.experiment_id AND t.trial_id = d.trial_id
)
SELECT s.experiment_id, s.trial_id, s.ts, s.metric, s.value_kind::VARCHAR,
       s.value, s.value_int, s.value_text
FROM import_source.trial_telemetry s
ANTI JOIN stored d
    ON d.experiment_id = s.experiment_id AND d.trial_id = s.trial_id AND d.ts = s.ts AND d.metric = s.metric
WHERE s.rowid >= $telemetry_from AND list_contains($experiment_ids, s.experiment_id);

-- name: import_store_telemetry_insert_distinct :count
-- As import_store_telemetry_insert, from a source that holds some point
-- twice: each point once, with its first stored value (lowest rowid), as
-- an ingest keeps the first; sorted, so slower than the streaming copy.
-- (DISTINCT ON, not a row_number() window: on DuckDB 2.0.1 the window
-- turned -0.0 into 0.0.)
INSERT INTO trial_telemetry (experiment_id, trial_id, ts, metric, value_kind,
                             value, value_int, value_text)
WITH touched AS (
    SELECT DISTINCT experiment_id, trial_id FROM import_source.trial_telemetry
    WHERE rowid >= $telemetry_from AND list_contains($experiment_ids, experiment_id)
),
stored AS (
    SELECT d.experiment_id, d.trial_id, d.ts, d.metric FROM trial_telemetry d
    SEMI JOIN touched t ON t.experiment_id = d.experiment_id AND t.trial_id = d.trial_id
)
SELECT DISTINCT ON (s.experiment_id, s.trial_id, s.ts, s.metric)
       s.experiment_id, s.trial_id, s.ts, s.metric, s.value_kind::VARCHAR,
       s.value, s.value_int, s.value_text
FROM import_source.trial_telemetry s
ANTI JOIN stored d
    ON d.experiment_id = s.experiment_id AND d.trial_id = s.trial_id AND d.ts = s.ts AND d.metric = s.metric
WHERE s.rowid >= $telemetry_from AND list_contains($experiment_ids, s.experiment_id)
ORDER BY s.experiment_id, s.trial_id, s.ts, s.metric, s.rowid;

-- name: import_store_merge_insert :count
-- Copies the merges recorded by the chosen experiments whose merged
-- experiment is stored here (copied now or before).
INSERT INTO experiment_merge (experiment_id, merged_experiment_id, ts_merged)
SELECT s.experiment_id, s.merged_experiment_id, s.ts_merged
FROM import_source.experiment_merge s
WHERE list_contains($experiment_ids, s.experiment_id)
  AND s.merged_experiment_id IN (SELECT experiment_id FROM experiment)
  AND NOT EXISTS (
      SELECT 1 FROM experiment_merge d
      WHERE d.experiment_id = s.experiment_id
        AND d.merged_experiment_id = s.merged_experiment_id
  );

-- name: import_store_config_map_clear :none
-- Empties the config work table before the import commits.
DELETE FROM import_config_map;

-- name: import_store_new_trial_clear :none
-- Empties the trial work table before the import commits.
DELETE FROM import_new_trial;

-- name: import_store_source_identity :one
-- The source store's identity (made by 0006) and how many telemetry rows it
-- holds now: what a sync records as brought.
SELECT (SELECT value FROM import_source.store_info WHERE key = 'store_id') AS store_id,
       (SELECT count(*) FROM import_source.trial_telemetry) AS telemetry_rows;

-- name: import_store_telemetry_from :value
-- The source's first telemetry row not brought yet for every chosen
-- experiment: the smallest recorded watermark, 0 if any chosen experiment
-- was never synced from this source (or the source now holds fewer rows
-- than recorded: not the file that was synced, so everything is read).
SELECT CASE
    WHEN count(*) < len($experiment_ids) OR max(telemetry_rows) > $telemetry_rows THEN 0
    ELSE min(telemetry_rows)
END
FROM sync_source
WHERE source_store_id = $source_store_id AND list_contains($experiment_ids, experiment_id);

-- name: import_store_watermark_clear :none
-- Drops the source's recorded watermarks of the chosen experiments that
-- $telemetry_rows moves forward (import_store_watermark_record follows in
-- the same transaction). One already equal stays, so a sync that brought
-- nothing changes nothing, and a higher one stays: a stale copy of the
-- source (read whole) does not make the next sync of the source reread.
DELETE FROM sync_source
WHERE source_store_id = $source_store_id AND list_contains($experiment_ids, experiment_id)
  AND telemetry_rows < $telemetry_rows;

-- name: import_store_watermark_record :none
-- Records that the source's first $telemetry_rows telemetry rows of each
-- chosen experiment are stored here (for the experiments without a row).
INSERT INTO sync_source (source_store_id, experiment_id, telemetry_rows, ts_synced)
SELECT $source_store_id, experiment_id, $telemetry_rows, now()
FROM (SELECT unnest($experiment_ids) AS experiment_id)
WHERE experiment_id NOT IN (
    SELECT experiment_id FROM sync_source WHERE source_store_id = $source_store_id
);
