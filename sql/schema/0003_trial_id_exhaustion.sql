-- Trial ids are BIGINT. Once an experiment has used the largest one, its
-- next trial is refused with a message that says so, instead of DuckDB's
-- arithmetic overflow. Otherwise the same rule as before: one past the
-- largest stored id, never below the id numbering was asked to start from.
CREATE OR REPLACE MACRO next_trial_id(exp_id, first_id) AS greatest(
    first_id,
    coalesce((
        SELECT CASE
            WHEN max(trial_id) = 9223372036854775807
            THEN error('experiment ' || exp_id || ' has used every trial id: the largest, 2**63 - 1, is taken')
            ELSE max(trial_id) + 1
        END
        FROM trial WHERE experiment_id = exp_id), first_id)
);
