-- The engine-limit baselines for bench_telemetry.py: the same writes and
-- reads done with bare DuckDB, without the library.

-- name: bare_telemetry_schema :none
-- A bare telemetry table: numbers only, no checks, no deduplication.
CREATE TABLE bare_telemetry (experiment_id VARCHAR, trial_id BIGINT, ts TIMESTAMPTZ, metric VARCHAR, value DOUBLE);

-- name: bare_telemetry_insert :ingest
-- One trial's points, appended as they come.
INSERT INTO bare_telemetry SELECT $experiment_id, $trial_id, ts, metric, value FROM incoming;

-- name: bare_telemetry_insert_many :ingest
-- Many trials' points (with a trial_id column), appended as they come.
INSERT INTO bare_telemetry SELECT $experiment_id, trial_id, ts, metric, value FROM incoming;

-- name: raw_trial_read :arrow
-- One trial's points straight from the store's own table, numbers only.
SELECT experiment_id, trial_id, ts, metric, value FROM trial_telemetry
WHERE experiment_id = $experiment_id AND trial_id = $trial_id
ORDER BY ts, metric;

-- name: raw_summary :arrow
-- The summary statistics straight from the store's own table.
SELECT trial_id, metric, count(*) AS count, min(value) AS min, max(value) AS max, avg(value) AS mean,
       stddev_samp(value) AS stddev, quantile_cont(value, [0.5, 0.9, 0.95, 0.99]) AS q,
       min(ts) AS first_ts, max(ts) AS last_ts
FROM trial_telemetry
WHERE experiment_id = $experiment_id
GROUP BY trial_id, metric
ORDER BY trial_id, metric;

-- name: raw_export :none
-- DuckDB's own partitioned Parquet writer over the store's table.
COPY (SELECT experiment_id, trial_id, ts, metric, value_kind, value, value_int, value_text
      FROM trial_telemetry WHERE experiment_id = $experiment_id)
TO $path (FORMAT parquet, PARTITION_BY (experiment_id, trial_id));

-- name: raw_trial_state :one
-- The status and latest point of one trial, as the store reads them per call.
SELECT status::VARCHAR AS status,
       (SELECT max(ts) FROM trial_telemetry WHERE experiment_id = $experiment_id AND trial_id = $trial_id) AS last_ts
FROM trial
WHERE experiment_id = $experiment_id AND trial_id = $trial_id;

-- name: raw_telemetry_append :ingest
-- One trial's points, already in the store's value columns, appended to the store's table.
INSERT INTO trial_telemetry
SELECT $experiment_id, $trial_id, ts, metric, value_kind, value, value_int, value_text FROM incoming;
