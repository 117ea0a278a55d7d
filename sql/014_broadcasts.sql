-- Broadcasts: a message an admin sends to every user who has not blocked the bot and is not banned.
-- The recipients are a snapshot taken at Confirm (one INSERT ... SELECT, cheap for many thousands),
-- one row each, so every user's outcome is recorded and a restart or a failover resumes exactly
-- where the last leader stopped.
CREATE TABLE IF NOT EXISTS broadcasts (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bot_id              bigint      NOT NULL,
    nonce               text        NOT NULL CHECK (nonce <> ''),  -- the preview's key: a double Confirm makes one
    admin_id            bigint      NOT NULL,
    admin_chat_id       bigint      NOT NULL,
    admin_lang          text        NOT NULL DEFAULT 'ru',
    content             text        NOT NULL,  -- JSON: kind (text|photo), text, entities, photo (a file_id)
    state               text        NOT NULL DEFAULT 'running'
                        CHECK (state IN ('running', 'paused', 'cancelled', 'done')),
    total               integer     NOT NULL DEFAULT 0 CHECK (total >= 0),
    sent                integer     NOT NULL DEFAULT 0 CHECK (sent >= 0),
    blocked             integer     NOT NULL DEFAULT 0 CHECK (blocked >= 0),
    failed              integer     NOT NULL DEFAULT 0 CHECK (failed >= 0),
    progress_message_id bigint,  -- the admin's progress message (edited every few seconds)
    epoch               bigint      NOT NULL,  -- the fence epoch of the last write
    created_at          timestamptz NOT NULL DEFAULT now(),
    finished_at         timestamptz,  -- done or cancelled
    told_at             timestamptz,  -- the admin got the final counts
    UNIQUE (bot_id, nonce),
    CONSTRAINT broadcasts_counts CHECK (sent + blocked + failed <= total)
);
CREATE INDEX IF NOT EXISTS broadcasts_open ON broadcasts (bot_id, id)
    WHERE state = 'running' OR (state IN ('done', 'cancelled') AND told_at IS NULL);

-- One row per recipient. pending -> sending (the intent, committed under the fence right before
-- the call; tries counts them) -> sent | blocked (Telegram's 403) | failed (a permanent refusal,
-- or MAX_TRIES attempts). A row left 'sending' by a leader that died is sent again by the next one:
-- a user gets the message twice only if the process died between Telegram's answer and the
-- recording of 'sent'.
CREATE TABLE IF NOT EXISTS broadcast_recipients (
    broadcast_id bigint      NOT NULL REFERENCES broadcasts ON DELETE CASCADE,
    user_id      bigint      NOT NULL,
    state        text        NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'sending', 'sent', 'blocked', 'failed')),
    tries        integer     NOT NULL DEFAULT 0,
    error        text,
    epoch        bigint,
    updated_at   timestamptz,
    PRIMARY KEY (broadcast_id, user_id)
);
CREATE INDEX IF NOT EXISTS broadcast_recipients_open ON broadcast_recipients (broadcast_id, user_id)
    WHERE state IN ('pending', 'sending');
