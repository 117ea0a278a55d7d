-- aiogram FSM state and data per StorageKey, so a wizard survives restarts and failover.
-- thread_id and business_connection_id are optional in the key: 0 and '' stand for "none",
-- which keeps them in a plain primary key. A row with no state and no data is deleted.
CREATE TABLE IF NOT EXISTS fsm (
    bot_id        bigint      NOT NULL,
    chat_id       bigint      NOT NULL,
    user_id       bigint      NOT NULL,
    thread_id     bigint      NOT NULL DEFAULT 0,
    business_id   text        NOT NULL DEFAULT '',
    destiny       text        NOT NULL DEFAULT 'default',
    state         text,
    data          jsonb       NOT NULL DEFAULT '{}',
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (bot_id, chat_id, user_id, thread_id, business_id, destiny)
);
