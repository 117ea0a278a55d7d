-- What webhook_setter last set, per bot: Telegram cannot tell us the secret back, so a hash of
-- the one we set is kept here to notice when WEBHOOK_SECRET changed.
CREATE TABLE IF NOT EXISTS webhook_state (
    name            text PRIMARY KEY,
    url             text        NOT NULL,
    secret_hash     text        NOT NULL,
    allowed_updates text[]      NOT NULL,
    max_connections integer     NOT NULL,
    set_at          timestamptz NOT NULL DEFAULT now(),
    epoch           bigint      NOT NULL
);
