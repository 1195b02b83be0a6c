-- name: trial_insert :value
-- Stores a PENDING trial under the next free id of its experiment, chosen
-- by the database in the same statement, and returns that id.
INSERT INTO trial (experiment_id, trial_id, config_id, status,
                   ts_created, ts_start)
VALUES ($experiment_id, next_trial_id($experiment_id, $first_trial_id),
        $config_id, 'PENDING', $ts_created, $ts_start)
RETURNING trial_id;

-- name: trial_param_insert :rows
-- Stores the trial config (extra, non-tunable parameters) as typed values.
INSERT INTO trial_param (experiment_id, trial_id, param_name, value_kind,
                         value, value_int, value_text)
SELECT $experiment_id, $trial_id, unnest($name::VARCHAR[]), unnest($value_kind::VARCHAR[]), unnest($value::DOUBLE[]),
       unnest($value_int::BIGINT[]), unnest($value_text::VARCHAR[]);

-- name: trial_get_state :one
-- The stored status of one trial, or no row if there is no such trial.
SELECT status::VARCHAR AS status
FROM trial
WHERE experiment_id = $experiment_id AND trial_id = $trial_id;

-- name: trial_advance :count
-- Moves a trial to a later non-final status and sets its start time, only
-- if it still has the status the caller decided from (else changes 0 rows).
-- No RETURNING: DuckDB then refuses updates of rows that others reference.
UPDATE trial
SET status = $to_status, ts_start = $ts
WHERE experiment_id = $experiment_id AND trial_id = $trial_id
  AND status = $from_status;

-- name: trial_end :count
-- Ends a trial with a final status and its end time, only if it still has
-- the status the caller decided from (else changes 0 rows).
UPDATE trial
SET status = $to_status, ts_end = $ts
WHERE experiment_id = $experiment_id AND trial_id = $trial_id
  AND status = $from_status;

-- name: trial_status_record :none
-- Appends a status to the trial's history (once per timestamp and status).
INSERT INTO trial_status (experiment_id, trial_id, seq, ts, status)
SELECT $experiment_id, $trial_id, nextval('trial_status_seq'), $ts, $status
WHERE NOT EXISTS (
    SELECT 1 FROM trial_status
    WHERE experiment_id = $experiment_id AND trial_id = $trial_id
      AND ts = $ts AND status = $status
);

-- name: trial_status_append :none
-- Appends a status the trial has never held (its first, PENDING, or an
-- advance): statuses only move forward, so the entry cannot exist yet and
-- is not looked for (half the cost of trial_status_record).
INSERT INTO trial_status (experiment_id, trial_id, seq, ts, status)
VALUES ($experiment_id, $trial_id, nextval('trial_status_seq'), $ts, $status);

-- name: trial_status_history :arrow
-- Every status a trial went through, in the order the changes were made
-- (callers' timestamps need not be monotonic).
SELECT ts, status::VARCHAR AS status
FROM trial_status
WHERE experiment_id = $experiment_id AND trial_id = $trial_id
ORDER BY seq;

-- name: trial_result_insert :rows
-- Stores the metrics of a trial that has just ended.
INSERT INTO trial_result (experiment_id, trial_id, metric, value_kind,
                          value, value_int, value_text)
SELECT $experiment_id, $trial_id, unnest($name::VARCHAR[]), unnest($value_kind::VARCHAR[]), unnest($value::DOUBLE[]),
       unnest($value_int::BIGINT[]), unnest($value_text::VARCHAR[]);

-- name: trial_list_pending :arrow
-- Trials scheduled at or before a time whose status is one of those given;
-- $runner_assigned true keeps only trials assigned to a runner, false only
-- unassigned ones, NULL both.
SELECT trial_id, config_id, status::VARCHAR AS status, ts_start, trial_runner_id
FROM trial
WHERE experiment_id = $experiment_id
  AND ts_start <= $timestamp
  AND list_contains($statuses, status::VARCHAR)
  AND ($runner_assigned IS NULL OR (trial_runner_id IS NOT NULL) = $runner_assigned)
ORDER BY trial_id;

-- name: trial_param_list :arrow
-- The trial configs of several trials, by trial id then parameter name.
SELECT trial_id, param_name AS name, value_kind::VARCHAR AS value_kind, value, value_int, value_text
FROM trial_param
WHERE experiment_id = $experiment_id AND list_contains($trial_ids, trial_id)
ORDER BY trial_id, param_name;

-- name: trial_list_completed :arrow
-- The completed trials (SUCCEEDED, FAILED, TIMED_OUT) after a trial id.
SELECT experiment_id, trial_id, config_id AS tunable_config_id,
       status::VARCHAR AS status, ts_start, ts_end
FROM completed_trial
WHERE experiment_id = $experiment_id AND trial_id > $last_trial_id
ORDER BY trial_id;

-- name: trial_values :arrow
-- The tunable values and results of an experiment's trials after
-- $last_trial_id (only completed ones when $completed_only, only those of
-- config $config_id unless it is NULL), long: one row per value with its
-- trial's id, which matches it to its row of trial_list_completed or
-- analysis_trial_list (convert.matched_rows). Unordered: widen() sorts them
-- in Arrow, which here costs a third of what an ORDER BY adds to this query.
WITH selected AS (
    SELECT t.experiment_id, t.trial_id, t.config_id
    FROM trial t
    WHERE t.experiment_id = $experiment_id AND t.trial_id > $last_trial_id
      AND ($config_id IS NULL OR t.config_id = $config_id)
      AND (NOT $completed_only OR t.trial_id IN (
          SELECT c.trial_id FROM completed_trial c WHERE c.experiment_id = $experiment_id))
)
SELECT 'config' AS source, p.tunable_name AS name, s.trial_id,
       p.value_kind::VARCHAR AS value_kind, p.value, p.value_int, p.value_text
FROM selected s
JOIN tunable_param p ON p.config_id = s.config_id
UNION ALL
SELECT 'result' AS source, r.metric AS name, s.trial_id,
       r.value_kind::VARCHAR AS value_kind, r.value, r.value_int, r.value_text
FROM selected s
JOIN trial_result r
  ON r.experiment_id = s.experiment_id AND r.trial_id = s.trial_id;
