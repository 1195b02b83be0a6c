-- bench_results.py: bulk setup of a store holding one experiment, and the
-- engine-limit baseline, one raw DuckDB PIVOT over the same tables.

-- name: bench_configs_insert :none
-- $configs distinct tunable configs (ids 1..$configs).
INSERT INTO tunable_config (config_id, config_hash, ts_created, hash_key)
SELECT c, 'bench-' || c::VARCHAR, TIMESTAMPTZ '2026-01-01 00:00:00+00', config_hash_key('bench-' || c::VARCHAR)
FROM range(1, $configs + 1) AS t(c);

-- name: bench_params_insert :none
-- $tunables values per config, named t00, t01, ...: ints, floats and strs.
INSERT INTO tunable_param (config_id, tunable_name, value_kind, value, value_int, value_text)
SELECT c, 't' || lpad(k::VARCHAR, 2, '0'),
       CASE k % 4 WHEN 0 THEN 'float' WHEN 1 THEN 'str' ELSE 'int' END,
       CASE k % 4 WHEN 0 THEN (c * (k + 1) % 1000) / 7.0 WHEN 1 THEN NULL ELSE (c * (k + 1) % 100)::DOUBLE END,
       CASE k % 4 WHEN 0 THEN NULL WHEN 1 THEN NULL ELSE c * (k + 1) % 100 END,
       CASE k % 4 WHEN 1 THEN 'v' || ((c + k) % 5)::VARCHAR END
FROM range(1, $configs + 1) AS a(c), range($tunables) AS b(k);

-- name: bench_trials_insert :none
-- $trials trials of experiment 'bench', each config used by several; one
-- in twenty still PENDING.
INSERT INTO trial (experiment_id, trial_id, config_id, status, ts_created, ts_start, ts_end)
SELECT 'bench', i, 1 + i % $configs,
       CASE WHEN i % 20 = 0 THEN 'PENDING' ELSE 'SUCCEEDED' END,
       TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_seconds(i),
       TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_seconds(i),
       CASE WHEN i % 20 = 0 THEN NULL ELSE TIMESTAMPTZ '2026-01-01 00:00:01+00' + to_seconds(i) END
FROM range(1, $trials + 1) AS t(i);

-- name: bench_results_insert :none
-- $metrics results (m0 an int, the others floats) of every ended trial.
INSERT INTO trial_result (experiment_id, trial_id, metric, value_kind, value, value_int, value_text)
SELECT 'bench', i, 'm' || m::VARCHAR,
       CASE m WHEN 0 THEN 'int' ELSE 'float' END,
       CASE m WHEN 0 THEN (i % 977)::DOUBLE ELSE (i * (m + 3) % 1013) / 3.0 END,
       CASE m WHEN 0 THEN i % 977 END,
       NULL
FROM range(1, $trials + 1) AS t(i), range($metrics) AS r(m)
WHERE i % 20 <> 0;

-- name: baseline_results_pivot :arrow
-- The results table as one raw PIVOT: trial columns, then per name the
-- numeric view only (strs come out NULL), with no typing, JSON or
-- absent/None marks: the least work that gives the same grid.
PIVOT (
    WITH trials AS (
        SELECT trial_id, ts_start, ts_end, config_id AS tunable_config_id,
               min(trial_id) OVER (PARTITION BY config_id) AS tunable_config_trial_group_id,
               status::VARCHAR AS status, trial_runner_id
        FROM trial
    )
    SELECT t.*, 'config.' || p.tunable_name AS name, p.value, p.value_text
    FROM trials t JOIN tunable_param p ON p.config_id = t.tunable_config_id
    UNION ALL
    SELECT t.*, 'result.' || r.metric AS name, r.value, r.value_text
    FROM trials t JOIN trial_result r ON r.trial_id = t.trial_id
)
ON name
USING first(value)
GROUP BY trial_id, ts_start, ts_end, tunable_config_id, tunable_config_trial_group_id, status, trial_runner_id
ORDER BY trial_id;
