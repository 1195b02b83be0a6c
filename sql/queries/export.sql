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

-- name: export_telemetry :arrow
-- The experiment's telemetry with its four value columns, in stored order
-- (no sort: streamed to Parquet with bounded memory).
SELECT experiment_id, trial_id, ts, metric, value_kind::VARCHAR AS value_kind, value, value_int, value_text
FROM trial_telemetry
WHERE experiment_id = $experiment_id;

-- name: import_experiment_insert :ingest
-- Stores experiment records given as Arrow rows (the export_experiment columns).
INSERT INTO experiment (experiment_id, description, root_env_config, git_repo, git_commit,
                        first_trial_id, ts_created)
SELECT experiment_id, description, root_env_config, git_repo, git_commit, first_trial_id, ts_created
FROM incoming;

-- name: import_tunable_config_insert :ingest
-- Stores the configs (config_hash, ts_created rows) whose hash is not stored
-- yet, under new ids of this store; a stored hash keeps its id.
INSERT INTO tunable_config (config_id, config_hash, ts_created)
SELECT nextval('tunable_config_id_seq'), config_hash, ts_created
FROM (SELECT config_hash, min(ts_created) AS ts_created FROM incoming GROUP BY config_hash)
WHERE config_hash NOT IN (SELECT config_hash FROM tunable_config)
ORDER BY config_hash;

-- name: import_tunable_param_insert :ingest
-- Stores the values (config_hash, tunable_name, value columns) of configs
-- that have none stored yet, under this store's id for each hash.
INSERT INTO tunable_param (config_id, tunable_name, value_kind, value, value_int, value_text)
SELECT c.config_id, n.tunable_name, n.value_kind, n.value, n.value_int, n.value_text
FROM incoming n
JOIN tunable_config c ON c.config_hash = n.config_hash
WHERE n.tunable_name IS NOT NULL
  AND c.config_id NOT IN (SELECT config_id FROM tunable_param);

-- name: import_trial_insert :ingest
-- Stores trials (the export_trial columns), each under this store's id of
-- its config's hash.
INSERT INTO trial (experiment_id, trial_id, config_id, status, ts_created, ts_start, ts_end, trial_runner_id)
SELECT n.experiment_id, n.trial_id, c.config_id, n.status, n.ts_created, n.ts_start, n.ts_end, n.trial_runner_id
FROM incoming n
JOIN tunable_config c ON c.config_hash = n.config_hash
ORDER BY n.experiment_id, n.trial_id;

-- name: import_trial_param_insert :ingest
-- Stores trial configs (the export_trial_param columns).
INSERT INTO trial_param (experiment_id, trial_id, param_name, value_kind, value, value_int, value_text)
SELECT experiment_id, trial_id, param_name, value_kind, value, value_int, value_text
FROM incoming;

-- name: import_trial_status_insert :ingest
-- Stores status histories (the export_trial_status columns) under new
-- sequence numbers of this store, given in the original order.
INSERT INTO trial_status (experiment_id, trial_id, seq, ts, status)
SELECT experiment_id, trial_id, nextval('trial_status_seq'), ts, status
FROM (SELECT * FROM incoming ORDER BY seq);

-- name: import_trial_result_insert :ingest
-- Stores results (the export_trial_result columns).
INSERT INTO trial_result (experiment_id, trial_id, metric, value_kind, value, value_int, value_text)
SELECT experiment_id, trial_id, metric, value_kind, value, value_int, value_text
FROM incoming;

-- name: import_telemetry_insert :ingest
-- Stores telemetry (the export_telemetry columns) in (experiment, trial,
-- ts, metric) order, so zone maps keep one-trial reads cheap.
INSERT INTO trial_telemetry (experiment_id, trial_id, ts, metric, value_kind, value, value_int, value_text)
SELECT experiment_id, trial_id, ts, metric, value_kind, value, value_int, value_text
FROM incoming
ORDER BY experiment_id, trial_id, ts, metric;

-- name: experiment_exists :value
-- Whether the experiment is stored.
SELECT count(*) > 0 FROM experiment WHERE experiment_id = $experiment_id;
