-- KIE's side of the business per bot: whether new generations are paused because our KIE account
-- ran out of credits (createTask answered 402), and the last credit balance seen. Written by the
-- ACTIVE jobs actor under the fence, read by the Confirm handler on any instance.
CREATE TABLE IF NOT EXISTS kie_account (
    bot_id        bigint PRIMARY KEY,
    paused_since  timestamptz,
    pause_reason  text,
    credits       bigint,
    credits_at    timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
