-- name: telemetry_insert :ingest
-- Appends a trial's telemetry points (each point once in the batch: see
-- telemetry.first_of_each_point), skipping those already stored (same
-- trial, ts, metric), so re-sending stores nothing twice.
INSERT INTO trial_telemetry (experiment_id, trial_id, ts, metric, value_kind,
                             value, value_int, value_text)
SELECT $experiment_id, $trial_id, n.ts, n.metric, n.value_kind,
       n.value, n.value_int, n.value_text
FROM incoming AS n
ANTI JOIN (
    SELECT ts, metric FROM trial_telemetry
    WHERE experiment_id = $experiment_id AND trial_id = $trial_id
) AS stored
  ON stored.ts = n.ts AND stored.metric = n.metric
ORDER BY n.ts;

-- name: telemetry_append :ingest
-- Appends a trial's telemetry points that are all later than every point
-- stored for it (each point once in the batch), so none can be stored yet:
-- the cheap path of telemetry_insert, as fast as a bare insert.
INSERT INTO trial_telemetry (experiment_id, trial_id, ts, metric, value_kind,
                             value, value_int, value_text)
SELECT $experiment_id, $trial_id, ts, metric, value_kind, value, value_int, value_text
FROM incoming;

-- name: telemetry_append_if_state :ingest
-- telemetry_append for a trial whose status the caller believes it knows:
-- appends the batch only if the trial still has $status and $first_ts (the
-- batch's earliest point) is later than every point stored for it; else
-- writes nothing, and the caller reads the state and takes the checked path.
-- One statement where that path runs two (the guard: telemetry_appendable,
-- in 0007_config_hash_key.sql).
INSERT INTO trial_telemetry (experiment_id, trial_id, ts, metric, value_kind,
                             value, value_int, value_text)
SELECT $experiment_id, $trial_id, ts, metric, value_kind, value, value_int, value_text
FROM incoming
WHERE telemetry_appendable($experiment_id, $trial_id, $status, $first_ts::TIMESTAMPTZ);

-- name: telemetry_append_floats_if_state :ingest
-- telemetry_append_if_state for a batch of float values only (NULL for a
-- stored None) as the caller sent it, columns ts, metric, value: the kind
-- each value column needs is written here, so the batch needs no conversion
-- and DuckDB scans three columns instead of six.
INSERT INTO trial_telemetry (experiment_id, trial_id, ts, metric, value_kind,
                             value, value_int, value_text)
SELECT $experiment_id, $trial_id, ts, metric,
       CASE WHEN value IS NULL THEN 'null'::value_kind ELSE 'float'::value_kind END,
       value, NULL, NULL
FROM incoming
WHERE telemetry_appendable($experiment_id, $trial_id, $status, $first_ts::TIMESTAMPTZ);

-- name: trial_telemetry_state :one
-- The stored status of one trial and the timestamp of its latest telemetry
-- point (NULL if none), or no row if there is no such trial.
SELECT status::VARCHAR AS status,
       (SELECT max(ts) FROM trial_telemetry
        WHERE experiment_id = $experiment_id AND trial_id = $trial_id) AS last_ts
FROM trial
WHERE experiment_id = $experiment_id AND trial_id = $trial_id;

-- name: telemetry_list :arrow
-- Telemetry of an experiment, optionally only some trials, some metrics and
-- the half-open time range [start, end); by trial id, ts, then metric.
SELECT experiment_id, trial_id, ts, metric,
       value_kind::VARCHAR AS value_kind, value, value_int, value_text
FROM trial_telemetry
WHERE experiment_id = $experiment_id
  AND telemetry_selected(trial_id, metric, ts, $trial_ids, $metrics, $start, $end)
ORDER BY trial_id, ts, metric;

-- name: telemetry_value_kinds :one
-- The value kinds among the points telemetry_list returns for the same
-- filters, and whether an int among them is too large for float64 to hold
-- exactly: a stream decides its value columns from these before its first batch.
SELECT coalesce(list(DISTINCT value_kind::VARCHAR), []) AS kinds,
       coalesce(bool_or(value_kind = 'int' AND abs(value_int) > 9007199254740992), false) AS beyond_exact_float
FROM trial_telemetry
WHERE experiment_id = $experiment_id
  AND telemetry_selected(trial_id, metric, ts, $trial_ids, $metrics, $start, $end);

-- name: trial_ids_missing :arrow
-- Of the given trial ids, those the experiment does not have, ascending:
-- a bulk ingest refuses the whole batch if any is missing.
SELECT id AS trial_id
FROM (SELECT unnest($trial_ids) AS id) AS given
WHERE id NOT IN (SELECT trial_id FROM trial WHERE experiment_id = $experiment_id)
ORDER BY id;

-- name: telemetry_insert_many :ingest
-- Appends telemetry points of many trials of one experiment in one
-- statement, in (trial, ts) order so that zone maps keep a
-- one-trial read cheap. As telemetry_insert: a point already stored is
-- skipped and of repeats within the batch the first (lowest row_idx) wins.
-- Only trials in [$first_trial_id, $last_trial_id] are scanned for stored points.
INSERT INTO trial_telemetry (experiment_id, trial_id, ts, metric, value_kind,
                             value, value_int, value_text)
SELECT $experiment_id, n.trial_id, n.ts, n.metric, n.value_kind,
       n.value, n.value_int, n.value_text
FROM (
    SELECT * FROM incoming
    WHERE row_idx IN (SELECT min(row_idx) FROM incoming GROUP BY trial_id, ts, metric)
) AS n
ANTI JOIN (
    SELECT trial_id, ts, metric FROM trial_telemetry
    WHERE experiment_id = $experiment_id
      AND trial_id BETWEEN $first_trial_id AND $last_trial_id
) AS stored
  ON stored.trial_id = n.trial_id AND stored.ts = n.ts AND stored.metric = n.metric
ORDER BY n.trial_id, n.ts;

-- name: telemetry_insert_many_in_order :ingest
-- telemetry_insert_many for a batch already strictly in (trial, ts, metric)
-- order (see telemetry.in_point_order): it holds no repeat, so the grouping
-- that finds repeats is skipped. The ORDER BY stays: without it a parallel
-- insert may store the batch's blocks out of order. A point already stored
-- is still skipped.
INSERT INTO trial_telemetry (experiment_id, trial_id, ts, metric, value_kind,
                             value, value_int, value_text)
SELECT $experiment_id, n.trial_id, n.ts, n.metric, n.value_kind,
       n.value, n.value_int, n.value_text
FROM incoming AS n
ANTI JOIN (
    SELECT trial_id, ts, metric FROM trial_telemetry
    WHERE experiment_id = $experiment_id
      AND trial_id BETWEEN $first_trial_id AND $last_trial_id
) AS stored
  ON stored.trial_id = n.trial_id AND stored.ts = n.ts AND stored.metric = n.metric
ORDER BY n.trial_id, n.ts;
