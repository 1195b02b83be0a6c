-- The engine-limit baseline for bench_core.py: the same logical writes and
-- reads on bare DuckDB tables, with no checks, history or typed values.

-- name: baseline_schema :none
-- Bare tables, no constraints.
CREATE TABLE bare_trial (trial_id BIGINT, x BIGINT, y DOUBLE, status VARCHAR,
                    ts_start TIMESTAMPTZ, ts_end TIMESTAMPTZ, score DOUBLE);

-- name: baseline_telemetry_schema :none
-- Bare telemetry table.
CREATE TABLE bare_telemetry (trial_id BIGINT, ts TIMESTAMPTZ, metric VARCHAR, value DOUBLE);

-- name: baseline_trial_insert :none
-- A new pending trial.
INSERT INTO bare_trial VALUES ($trial_id, $x, $y, 'PENDING', $ts, NULL, NULL);

-- name: baseline_trial_start :none
-- The trial starts.
UPDATE bare_trial SET status = 'RUNNING', ts_start = $ts WHERE trial_id = $trial_id;

-- name: baseline_telemetry_insert :ingest
-- A trial's telemetry points.
INSERT INTO bare_telemetry SELECT $trial_id, ts, metric, value FROM incoming;

-- name: baseline_trial_end :none
-- The trial ends with its score.
UPDATE bare_trial SET status = 'SUCCEEDED', ts_end = $ts, score = $score WHERE trial_id = $trial_id;

-- name: baseline_load :arrow
-- The completed trials with their values, by trial id.
SELECT trial_id, x, y, status, ts_start, ts_end, score FROM bare_trial
WHERE status IN ('SUCCEEDED', 'FAILED', 'TIMED_OUT') ORDER BY trial_id;

-- name: baseline_telemetry_list :arrow
-- One trial's telemetry by ts then metric.
SELECT trial_id, ts, metric, value FROM bare_telemetry
WHERE trial_id = $trial_id ORDER BY ts, metric;
