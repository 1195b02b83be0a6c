-- Export of an experiment to a Parquet dataset, and import of such a
-- dataset into a store. Exports read one experiment; imports read Arrow rows
-- registered as `incoming` and remap config ids through config_hash, so any
-- source of an experiment's rows (a dataset, another store) can use them.

-- name: export_experiment :arrow
-- The experiment record.
SELECT experiment_id, description, root_env_config, git_repo, git_commit, first_trial_id, ts_created
FROM experiment
WHERE experiment_id = $experiment_id;

-- name: export_objective :arrow
-- The experiment's objectives.
SELECT experiment_id, optimization_target, optimization_direction, ordinal
FROM objective
WHERE experiment_id = $experiment_id
ORDER BY ordinal;

-- name: export_experiment_tunable :arrow
-- The experiment's declared tunables and their defaults.
SELECT experiment_id, tunable_name, value_kind::VARCHAR AS value_kind, value, value_int, value_text
FROM experiment_tunable
WHERE experiment_id = $experiment_id
ORDER BY tunable_name;

-- name: export_tunable_param :arrow
-- The values of every config the experiment's trials use, with the
-- config's hash (its identity across stores) and creation time.
SELECT $experiment_id AS experiment_id, c.config_id, c.config_hash, c.ts_created,
       p.tunable_name, p.value_kind::VARCHAR AS value_kind, p.value, p.value_int, p.value_text
FROM tunable_config c
LEFT JOIN tunable_param p ON p.config_id = c.config_id
WHERE c.config_id IN (SELECT config_id FROM trial WHERE experiment_id = $experiment_id)
ORDER BY c.config_id, p.tunable_name;

-- name: export_trial :arrow
-- The experiment's trials, each with its config's hash.
SELECT t.experiment_id, t.trial_id, t.config_id, c.config_hash, t.status::VARCHAR AS status,
       t.ts_created, t.ts_start, t.ts_end, t.trial_runner_id
FROM trial t
JOIN tunable_config c ON c.config_id = t.config_id
WHERE t.experiment_id = $experiment_id
ORDER BY t.trial_id;

-- name: export_trial_param :arrow
-- The trial configs of the experiment's trials.
SELECT experiment_id, trial_id, param_name, value_kind::VARCHAR AS value_kind, value, value_int, value_text
FROM trial_param
WHERE experiment_id = $experiment_id
ORDER BY trial_id, param_name;

-- name: export_trial_status :arrow
-- The status histories of the experiment's trials, in the order made.
SELECT experiment_id, trial_id, seq, ts, status::VARCHAR AS status
FROM trial_status
WHERE experiment_id = $experiment_id
ORDER BY seq;

-- name: export_trial_result :arrow
-- The results of the experiment's trials.
SELECT experiment_id, trial_id, metric, value_kind::VARCHAR AS value_kind, value, value_int, value_text
FROM trial_result
WHERE experiment_id = $experiment_id
ORDER BY trial_id, metric;

-- name: export_telemetry_mark :one
-- The experiment's telemetry high-water mark: the rowid after its last
-- stored point (points are only ever appended, each at a higher rowid),
-- and how many of its points lie below the mark $exported_before of an
-- earlier export (equal to what that export wrote while the rows it
-- covered are unchanged).
SELECT coalesce(max(rowid) + 1, 0) AS next_rowid,
       count(*) FILTER (WHERE rowid < $exported_before) AS rows_before
FROM trial_telemetry
WHERE experiment_id = $experiment_id;

-- name: export_telemetry :arrow
-- The experiment's telemetry stored at rowids $from_rowid up to (not
-- including) $to_rowid, with its four value columns, in stored order (no
-- sort: streamed to Parquet with bounded memory).
SELECT experiment_id, trial_id, ts, metric, value_kind::VARCHAR AS value_kind, value, value_int, value_text
FROM trial_telemetry
WHERE experiment_id = $experiment_id
  AND rowid >= $from_rowid AND rowid < $to_rowid;

-- name: import_experiment_insert :ingest
-- Stores the experiment record given as Arrow rows (the export_experiment
-- columns) under $experiment_id, the id its manifest names; a row repeated
-- is stored once.
INSERT INTO experiment (experiment_id, description, root_env_config, git_repo, git_commit,
                        first_trial_id, ts_created)
SELECT DISTINCT $experiment_id, description, root_env_config, git_repo, git_commit, first_trial_id, ts_created
FROM incoming;

-- name: import_objective_insert :ingest
-- Stores the objectives (the export_objective columns) of $experiment_id,
-- a row repeated once.
INSERT INTO objective (experiment_id, optimization_target, optimization_direction, ordinal)
SELECT DISTINCT $experiment_id, optimization_target, optimization_direction, ordinal
FROM incoming;

-- name: import_experiment_tunable_insert :ingest
-- Stores the declared tunables (the export_experiment_tunable columns) of
-- $experiment_id, a row repeated once.
INSERT INTO experiment_tunable (experiment_id, tunable_name, value_kind, value, value_int, value_text)
SELECT DISTINCT $experiment_id, tunable_name, value_kind, value, value_int, value_text
FROM incoming;

-- name: import_tunable_config_insert :ingest
-- Stores the configs (config_hash, ts_created rows) whose hash is not stored
-- yet, under new ids of this store; a stored hash keeps its id. The hashes
-- were checked against the values before.
INSERT INTO tunable_config (config_id, config_hash, ts_created, hash_key)
SELECT nextval('tunable_config_id_seq'), config_hash, ts_created, config_hash_key(config_hash)
FROM (SELECT config_hash, min(ts_created) AS ts_created FROM incoming GROUP BY config_hash)
WHERE config_hash NOT IN (SELECT config_hash FROM tunable_config)
ORDER BY config_hash;

-- name: import_tunable_param_insert :ingest
-- Stores the values (config_hash, tunable_name, value columns) of configs
-- that have none stored yet, under this store's id for each hash, a row
-- repeated (or a config listed by several of the export's ids) once.
INSERT INTO tunable_param (config_id, tunable_name, value_kind, value, value_int, value_text)
SELECT DISTINCT c.config_id, n.tunable_name, n.value_kind, n.value, n.value_int, n.value_text
FROM incoming n
JOIN tunable_config c ON c.config_hash = n.config_hash
WHERE n.tunable_name IS NOT NULL
  AND c.config_id NOT IN (SELECT config_id FROM tunable_param);

-- name: import_trial_insert :ingest
-- Stores the trials (the export_trial columns) of $experiment_id, each under
-- this store's id of its config's hash, a row repeated once.
INSERT INTO trial (experiment_id, trial_id, config_id, status, ts_created, ts_start, ts_end, trial_runner_id)
SELECT DISTINCT $experiment_id, n.trial_id, c.config_id, n.status, n.ts_created, n.ts_start, n.ts_end,
       n.trial_runner_id
FROM incoming n
JOIN tunable_config c ON c.config_hash = n.config_hash
ORDER BY n.trial_id;

-- name: import_trial_param_insert :ingest
-- Stores the trial configs (the export_trial_param columns) of $experiment_id, a row repeated once.
INSERT INTO trial_param (experiment_id, trial_id, param_name, value_kind, value, value_int, value_text)
SELECT DISTINCT $experiment_id, trial_id, param_name, value_kind, value, value_int, value_text
FROM incoming;

-- name: import_trial_status_insert :ingest
-- Stores the status histories (the export_trial_status columns) of
-- $experiment_id under new sequence numbers of this store, given in the
-- original order; a change repeated is stored once, at its first place.
INSERT INTO trial_status (experiment_id, trial_id, seq, ts, status)
SELECT $experiment_id, trial_id, nextval('trial_status_seq'), ts, status
FROM (SELECT trial_id, ts, status, min(seq) AS seq FROM incoming GROUP BY trial_id, ts, status ORDER BY seq);

-- name: import_trial_result_insert :ingest
-- Stores the results (the export_trial_result columns) of $experiment_id, a row repeated once.
INSERT INTO trial_result (experiment_id, trial_id, metric, value_kind, value, value_int, value_text)
SELECT DISTINCT $experiment_id, trial_id, metric, value_kind, value, value_int, value_text
FROM incoming;

-- name: import_telemetry_insert :ingest
-- Stores the telemetry (the export_telemetry columns, trial_id from the
-- partition, row_idx the row's place in the files) of $experiment_id, each
-- point once with its first value, in (trial, ts, metric) order, so zone
-- maps keep one-trial reads cheap.
-- (DISTINCT ON, not a row_number() window: on DuckDB 2.0.1 the window
-- turned -0.0 into 0.0.)
INSERT INTO trial_telemetry (experiment_id, trial_id, ts, metric, value_kind, value, value_int, value_text)
SELECT DISTINCT ON (trial_id, ts, metric)
       $experiment_id, trial_id, ts, metric, value_kind, value, value_int, value_text
FROM incoming
ORDER BY trial_id, ts, metric, row_idx;

-- name: import_orphan_rows :arrow
-- Rows of $experiment_id whose trial is not stored (an export whose files
-- name a trial its trial table lacks), counted by table and trial.
SELECT 'trial_param' AS table_name, trial_id, count(*) AS row_count
FROM trial_param
WHERE experiment_id = $experiment_id
  AND trial_id NOT IN (SELECT trial_id FROM trial WHERE experiment_id = $experiment_id)
GROUP BY trial_id
UNION ALL
SELECT 'trial_status', trial_id, count(*)
FROM trial_status
WHERE experiment_id = $experiment_id
  AND trial_id NOT IN (SELECT trial_id FROM trial WHERE experiment_id = $experiment_id)
GROUP BY trial_id
UNION ALL
SELECT 'trial_result', trial_id, count(*)
FROM trial_result
WHERE experiment_id = $experiment_id
  AND trial_id NOT IN (SELECT trial_id FROM trial WHERE experiment_id = $experiment_id)
GROUP BY trial_id
UNION ALL
SELECT 'telemetry', trial_id, count(*)
FROM trial_telemetry
WHERE experiment_id = $experiment_id
  AND trial_id NOT IN (SELECT trial_id FROM trial WHERE experiment_id = $experiment_id)
GROUP BY trial_id
ORDER BY table_name, trial_id;

-- name: experiment_exists :value
-- Whether the experiment is stored.
SELECT count(*) > 0 FROM experiment WHERE experiment_id = $experiment_id;
