-- A central store that follows per-machine stores (Storage.sync), and
-- shards of one experiment that number their trials apart.
--
-- Each store gets an identity of its own, made once here (a new store when
-- it is created, an older one when it is upgraded): the central store keeps
-- what it has already brought from a source under the source's identity,
-- not its path, so a source that moved is still known and a different file
-- at the same path is not mistaken for it. A copied file shares its
-- original's identity: run a copy as a new runner only after a fresh start.
INSERT INTO store_info VALUES ('store_id', uuid()::VARCHAR);

-- Per source store and experiment, how many telemetry rows of the source
-- a sync has brought (the source's rows are only ever appended, so those
-- are its rows with rowid below telemetry_rows): the next sync reads only
-- the rows after them. A pruning hint, never the proof: every point read
-- is still anti-joined against the points stored here. One row per
-- (source_store_id, experiment_id), kept by the sync statements.
CREATE TABLE sync_source (
    source_store_id VARCHAR NOT NULL,
    experiment_id VARCHAR NOT NULL,
    telemetry_rows BIGINT NOT NULL CHECK (telemetry_rows >= 0),
    ts_synced TIMESTAMPTZ NOT NULL
);

-- Trial ids are split into shards of 2**40 ids: shard k holds the ids
-- k * 2**40 ... (k + 1) * 2**40 - 1. An experiment opened as shard k starts
-- numbering at k * 2**40 + trial_id, and the next id is one past the
-- largest stored id of that shard only, so runners of one experiment each
-- given their own shard never allocate the same id, even in a store that
-- holds the other shards' trials too (a central store). Shard 0 is the
-- numbering of an unsharded experiment, as before. The largest id,
-- 2**63 - 1, ends the last shard, with the message of 0003.
CREATE OR REPLACE MACRO next_trial_id(exp_id, first_id) AS greatest(
    first_id,
    coalesce((
        SELECT CASE
            WHEN max(trial_id) = 9223372036854775807
            THEN error('experiment ' || exp_id || ' has used every trial id: the largest, 2**63 - 1, is taken')
            WHEN max(trial_id) = first_id // 1099511627776 * 1099511627776 + 1099511627775
            THEN error('experiment ' || exp_id || ' has used every trial id of shard '
                       || (first_id // 1099511627776) || ': open it as another shard')
            ELSE max(trial_id) + 1
        END
        FROM trial
        WHERE experiment_id = exp_id
          AND trial_id BETWEEN first_id AND first_id // 1099511627776 * 1099511627776 + 1099511627775),
        first_id)
);
