-- Leadership per bot (name = the lock name, which includes the bot id). epoch is the fencing
-- token: it grows by one on every acquisition, and fenced statements check it.
CREATE TABLE IF NOT EXISTS leader (
    name         text PRIMARY KEY,
    epoch        bigint      NOT NULL,
    instance     text        NOT NULL,
    pid          integer     NOT NULL,
    heartbeat_at timestamptz NOT NULL,
    acquired_at  timestamptz NOT NULL
);
-- Every acquisition, for audits and for the tests that prove epochs only grow.
CREATE TABLE IF NOT EXISTS leader_history (
    name        text        NOT NULL,
    epoch       bigint      NOT NULL,
    instance    text        NOT NULL,
    pid         integer     NOT NULL,
    acquired_at timestamptz NOT NULL,
    took_over   text,
    PRIMARY KEY (name, epoch)
);
-- Fenced probe writes (tests and operators prove that a stale leader cannot write).
CREATE TABLE IF NOT EXISTS fenced_writes (
    id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name  text        NOT NULL,
    epoch bigint      NOT NULL,
    what  text        NOT NULL,
    at    timestamptz NOT NULL DEFAULT now()
);
