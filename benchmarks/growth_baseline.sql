-- The bare-DuckDB baseline of bench_growth.py: the four transactions of a
-- trial's life on bare tables held open, with no checks, history or typed values.

-- name: growth_trial_schema :none
-- Bare trials, one column per tunable.
CREATE TABLE bare_trial (trial_id BIGINT, x BIGINT, y DOUBLE, kind VARCHAR, status VARCHAR,
                         ts_start TIMESTAMPTZ, ts_end TIMESTAMPTZ);

-- name: growth_result_schema :none
-- Bare results, one row per metric.
CREATE TABLE bare_result (trial_id BIGINT, metric VARCHAR, value DOUBLE);

-- name: growth_telemetry_schema :none
-- Bare telemetry.
CREATE TABLE bare_telemetry (trial_id BIGINT, ts TIMESTAMPTZ, metric VARCHAR, value DOUBLE);

-- name: growth_trial_insert :none
-- A new pending trial (new_trial).
INSERT INTO bare_trial VALUES ($trial_id, $x, $y, $kind, 'PENDING', $ts, NULL);

-- name: growth_trial_start :none
-- The trial starts (update RUNNING).
UPDATE bare_trial SET status = 'RUNNING', ts_start = $ts WHERE trial_id = $trial_id;

-- name: growth_telemetry_insert :ingest
-- A trial's telemetry points, registered as `incoming` (update_telemetry).
INSERT INTO bare_telemetry SELECT $trial_id, ts, metric, value FROM incoming;

-- name: growth_trial_end :none
-- The trial ends (update SUCCEEDED, with the next statement in one transaction).
UPDATE bare_trial SET status = 'SUCCEEDED', ts_end = $ts WHERE trial_id = $trial_id;

-- name: growth_result_insert :none
-- Its score.
INSERT INTO bare_result VALUES ($trial_id, 'score', $score);
