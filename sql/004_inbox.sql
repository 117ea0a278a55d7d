-- The durable inbox: every Telegram update is here before Telegram gets its 200, and stays
-- until it is handled (state 2) and trimmed by age. (bot_id, update_id) is the key, so a
-- redelivery is a no-op and two bots can share one database.
-- state: 0 pending, 1 claimed (by the consuming session claimed_by, under claimed_epoch), 2 done.
CREATE TABLE IF NOT EXISTS inbox (
    bot_id        bigint      NOT NULL,
    update_id     bigint      NOT NULL,
    kind          text        NOT NULL,
    chat_key      bigint,
    payload       text        NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    received_by   text        NOT NULL,
    state         smallint    NOT NULL DEFAULT 0,
    claimed_epoch bigint,
    claimed_by    text,
    claimed_at    timestamptz,
    attempts      integer     NOT NULL DEFAULT 0,
    done_at       timestamptz,
    outcome       text,
    PRIMARY KEY (bot_id, update_id)
);
-- the dispatcher's sweep reads only what is not done, oldest update first
CREATE INDEX IF NOT EXISTS inbox_unfinished ON inbox (bot_id, update_id) WHERE state < 2;
-- the janitor trims by age
CREATE INDEX IF NOT EXISTS inbox_received_at ON inbox (received_at);
