-- The engine limit for run.py: the comparison workload on bare DuckDB
-- tables (no checks, no status history, no typed-value columns, no
-- deduplication), one column per tunable and result of the workload.

-- name: raw_schema_trial :none
-- One row per trial: the workload's eight tunables and three results as typed columns.
CREATE TABLE raw_trial (
    trial_id BIGINT, status VARCHAR, ts_start TIMESTAMPTZ, ts_end TIMESTAMPTZ,
    int_0 BIGINT, float_1 DOUBLE, categorical_2 VARCHAR, int_3 BIGINT,
    float_4 DOUBLE, categorical_5 VARCHAR, int_6 BIGINT, float_7 DOUBLE,
    score DOUBLE, throughput DOUBLE, p99_ms DOUBLE
);

-- name: raw_schema_telemetry :none
-- Telemetry points, numbers only.
CREATE TABLE raw_telemetry (trial_id BIGINT, ts TIMESTAMPTZ, metric VARCHAR, value DOUBLE);

-- name: raw_trial_insert :none
-- A new PENDING trial with its tunable values.
INSERT INTO raw_trial VALUES ($trial_id, 'PENDING', $ts_start, NULL,
                              $int_0, $float_1, $categorical_2, $int_3,
                              $float_4, $categorical_5, $int_6, $float_7, NULL, NULL, NULL);

-- name: raw_trial_list_pending :arrow
-- Trials scheduled at or before $timestamp whose status is one of $statuses, with their tunables, by trial id.
SELECT trial_id, status, int_0, float_1, categorical_2, int_3, float_4, categorical_5, int_6, float_7
FROM raw_trial
WHERE ts_start <= $timestamp AND list_contains($statuses, status)
ORDER BY trial_id;

-- name: raw_trial_start :none
-- The trial starts running.
UPDATE raw_trial SET status = 'RUNNING', ts_start = $ts WHERE trial_id = $trial_id;

-- name: raw_telemetry_insert :ingest
-- One trial's points, appended as they come.
INSERT INTO raw_telemetry SELECT $trial_id, ts, metric, value FROM incoming;

-- name: raw_trial_end :none
-- The trial ends with its final status and its results (NULL when it did not succeed).
UPDATE raw_trial SET status = $status, ts_end = $ts, score = $score, throughput = $throughput, p99_ms = $p99_ms
WHERE trial_id = $trial_id;

-- name: raw_load :arrow
-- The completed trials after $last_trial_id, with tunables and results, by trial id.
SELECT trial_id, status, int_0, float_1, categorical_2, int_3, float_4, categorical_5, int_6, float_7,
       score, throughput, p99_ms
FROM raw_trial
WHERE status IN ('SUCCEEDED', 'FAILED', 'TIMED_OUT') AND trial_id > $last_trial_id
ORDER BY trial_id;

-- name: raw_telemetry_list :arrow
-- One trial's points by ts then metric.
SELECT ts, metric, value FROM raw_telemetry WHERE trial_id = $trial_id ORDER BY ts, metric;

-- name: raw_results_table :arrow
-- Every trial with its config group (smallest trial id of equal tunables), tunables and results.
SELECT trial_id, ts_start, ts_end,
       min(trial_id) OVER (PARTITION BY int_0, float_1, categorical_2, int_3, float_4, categorical_5, int_6, float_7)
           AS tunable_config_trial_group_id,
       status, int_0, float_1, categorical_2, int_3, float_4, categorical_5, int_6, float_7,
       score, throughput, p99_ms
FROM raw_trial
ORDER BY trial_id;

-- name: raw_telemetry_stats :arrow
-- Per trial and metric the statistics the store's telemetry_summary gives:
-- count, min, max, mean, stddev and the p50/p90/p95/p99 percentiles, first and last ts.
SELECT trial_id, metric, count(*) AS count, min(value) AS min, max(value) AS max, avg(value) AS mean,
       stddev_samp(value) AS stddev, quantile_cont(value, [0.5, 0.9, 0.95, 0.99]) AS q,
       min(ts) AS first_ts, max(ts) AS last_ts
FROM raw_telemetry
GROUP BY trial_id, metric
ORDER BY trial_id, metric;
