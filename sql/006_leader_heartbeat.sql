-- The leader's heartbeat, on a row of its own: fenced transactions hold the `leader` row FOR
-- SHARE, and new share lockers jump ahead of a waiting UPDATE of that row, so a heartbeat there
-- could wait for as long as fenced traffic overlapped. Written by the epoch bump in the same
-- transaction as the `leader` row (epoch is the same), then heartbeated under `epoch = mine`.
-- backend_pid and backend_start name the lock connection's backend, so a standby terminates
-- only that backend, and only while it still holds the lock with a stale heartbeat.
CREATE TABLE IF NOT EXISTS leader_heartbeat (
    name          text PRIMARY KEY,
    epoch         bigint      NOT NULL,
    instance      text        NOT NULL,
    backend_pid   integer     NOT NULL,
    backend_start timestamptz,
    heartbeat_at  timestamptz NOT NULL
);
