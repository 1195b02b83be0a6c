-- name: telemetry_insert :ingest
-- Appends a trial's telemetry points in one statement. A point already
-- stored (same trial, ts, metric) is skipped, and of repeats within the
-- batch the first (lowest row_idx) wins, so re-sending stores nothing twice.
-- The first of each repeat is chosen by a semi-join on row_idx: a window
-- function (QUALIFY row_number()) would turn -0.0 values into 0.0.
INSERT INTO trial_telemetry (experiment_id, trial_id, ts, metric, value_kind,
                             value, value_int, value_text)
SELECT $experiment_id, $trial_id, n.ts, n.metric, n.value_kind,
       n.value, n.value_int, n.value_text
FROM (
    SELECT * FROM incoming
    WHERE row_idx IN (SELECT min(row_idx) FROM incoming GROUP BY ts, metric)
) AS n
ANTI JOIN (
    SELECT ts, metric FROM trial_telemetry
    WHERE experiment_id = $experiment_id AND trial_id = $trial_id
) AS stored
  ON stored.ts = n.ts AND stored.metric = n.metric
ORDER BY n.ts, n.metric;

-- name: telemetry_list :arrow
-- Telemetry of an experiment, optionally only some trials, some metrics and
-- the half-open time range [start, end); by trial id, ts, then metric.
SELECT experiment_id, trial_id, ts, metric,
       value_kind::VARCHAR AS value_kind, value, value_int, value_text
FROM trial_telemetry
WHERE experiment_id = $experiment_id
  AND ($trial_ids IS NULL OR list_contains($trial_ids, trial_id))
  AND ($metrics IS NULL OR list_contains($metrics, metric))
  AND ($start IS NULL OR ts >= $start)
  AND ($end IS NULL OR ts < $end)
ORDER BY trial_id, ts, metric;
