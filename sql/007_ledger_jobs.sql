-- Users, their money and their generations, per bot (two bots may share one database).
-- Money is integer kopecks. An account is what its ledger adds up to: a trigger applies every
-- ledger row to its account in the inserting transaction, the ledger refuses UPDATE and DELETE,
-- and CHECKs refuse a negative available balance (balance - held) whoever writes.

CREATE TABLE IF NOT EXISTS users (
    bot_id     bigint      NOT NULL,
    user_id    bigint      NOT NULL,
    language   text,
    first_seen timestamptz NOT NULL DEFAULT now(),
    blocked    boolean     NOT NULL DEFAULT false,  -- the user blocked the bot (Telegram answered 403)
    PRIMARY KEY (bot_id, user_id)
);

-- balance: every kopeck credited less every capture; held: reserved by the user's running jobs.
CREATE TABLE IF NOT EXISTS accounts (
    bot_id     bigint      NOT NULL,
    user_id    bigint      NOT NULL,
    balance    bigint      NOT NULL DEFAULT 0,
    held       bigint      NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (bot_id, user_id),
    FOREIGN KEY (bot_id, user_id) REFERENCES users,
    CONSTRAINT accounts_held_not_negative CHECK (held >= 0),
    CONSTRAINT accounts_available_not_negative CHECK (balance - held >= 0)
);

-- A generation. state: created (the intent: money held or a free generation counted, KIE not
-- called) -> submitting (createTask may have been sent; after a crash or a lost answer nobody
-- knows whether KIE has the task) -> submitted (KIE answered kie_task_id) -> running (a poll or a
-- callback saw progress) -> succeeded | failed | timed_out (finished: the hold was captured or
-- released, in the same transaction). delivered_at: the user has been told the outcome (the
-- result sent: result_file_id). held is the job's open hold: the price while a paid job runs,
-- 0 otherwise (a CHECK), so a finished job cannot keep money held.
CREATE TABLE IF NOT EXISTS jobs (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bot_id            bigint      NOT NULL,
    user_id           bigint      NOT NULL,
    chat_id           bigint      NOT NULL,
    confirm_nonce     text        NOT NULL CHECK (confirm_nonce <> ''),  -- the confirmation screen's key
    model             text        NOT NULL,
    sku               text        NOT NULL,
    input             text        NOT NULL,  -- JSON (text: a prompt may hold what jsonb refuses)
    price             bigint      NOT NULL CHECK (price >= 0),  -- kopecks, as shown on the screen
    paid_with         text        NOT NULL CHECK (paid_with IN ('money', 'free', 'admin')),
    held              bigint      NOT NULL,
    free_day          date,  -- the day in BOT_TIMEZONE whose free generation it used
    state             text        NOT NULL DEFAULT 'created'
                      CHECK (state IN ('created', 'submitting', 'submitted', 'running',
                                       'succeeded', 'failed', 'timed_out')),
    kie_task_id       text UNIQUE,
    epoch             bigint      NOT NULL,  -- the fence epoch of the last write
    attempts          integer     NOT NULL DEFAULT 0,  -- createTask attempts
    polls             integer     NOT NULL DEFAULT 0,
    result            text,  -- JSON: what KIE made (urls, kind)
    failure           text,  -- a plain category, never a raw error
    result_file_id    text,  -- Telegram's file_id of the delivered result
    status_message_id bigint,  -- the message in chat_id that tells the job's progress (edited)
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    submitted_at      timestamptz,
    last_polled_at    timestamptz,
    finished_at       timestamptz,
    delivered_at      timestamptz,
    UNIQUE (bot_id, confirm_nonce),
    FOREIGN KEY (bot_id, user_id) REFERENCES accounts,
    CONSTRAINT jobs_money_needs_a_price CHECK (paid_with <> 'money' OR price > 0),
    CONSTRAINT jobs_free_day_iff_free CHECK ((paid_with = 'free') = (free_day IS NOT NULL)),
    CONSTRAINT jobs_held_is_the_open_hold CHECK (
        held = CASE WHEN paid_with = 'money' AND state IN ('created', 'submitting', 'submitted', 'running')
                    THEN price ELSE 0 END),
    CONSTRAINT jobs_finished_at_iff_finished CHECK (
        (state IN ('succeeded', 'failed', 'timed_out')) = (finished_at IS NOT NULL)),
    CONSTRAINT jobs_delivered_only_when_finished CHECK (delivered_at IS NULL OR finished_at IS NOT NULL)
);
-- a user's running jobs (MAX_ACTIVE_JOBS_PER_USER), free generations of a day, history
CREATE INDEX IF NOT EXISTS jobs_user ON jobs (bot_id, user_id, id);
-- what the driver still has to do: run, or tell the user
CREATE INDEX IF NOT EXISTS jobs_to_drive ON jobs (bot_id, id) WHERE delivered_at IS NULL;

-- Append-only. Each row moves the account by (balance_delta, held_delta); per kind:
--   top_up, bonus, refund: +balance      adjustment: +/- balance (an operator's correction)
--   hold: +held (a job starts)           release: -held (it failed)     capture: -held and -balance (it succeeded)
-- The idempotency key is unique per bot, so a replayed request moves money once; a job has at
-- most one hold and one capture or release (unique indexes).
CREATE TABLE IF NOT EXISTS ledger (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bot_id          bigint      NOT NULL,
    user_id         bigint      NOT NULL,
    kind            text        NOT NULL,
    balance_delta   bigint      NOT NULL,
    held_delta      bigint      NOT NULL,
    job_id          bigint REFERENCES jobs,
    idempotency_key text        NOT NULL CHECK (idempotency_key <> ''),
    epoch           bigint      NOT NULL,  -- the fence epoch that wrote it
    note            text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (bot_id, idempotency_key),
    FOREIGN KEY (bot_id, user_id) REFERENCES accounts,
    CONSTRAINT ledger_kind_moves CHECK (
        (kind IN ('top_up', 'bonus', 'refund') AND balance_delta > 0 AND held_delta = 0)
        OR (kind = 'adjustment' AND balance_delta <> 0 AND held_delta = 0)
        OR (kind = 'hold' AND balance_delta = 0 AND held_delta > 0 AND job_id IS NOT NULL)
        OR (kind = 'release' AND balance_delta = 0 AND held_delta < 0 AND job_id IS NOT NULL)
        OR (kind = 'capture' AND balance_delta < 0 AND held_delta = balance_delta AND job_id IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS ledger_user ON ledger (bot_id, user_id, id);
CREATE UNIQUE INDEX IF NOT EXISTS ledger_one_hold_per_job ON ledger (job_id) WHERE kind = 'hold';
CREATE UNIQUE INDEX IF NOT EXISTS ledger_one_settlement_per_job ON ledger (job_id) WHERE kind IN ('capture', 'release');

CREATE OR REPLACE FUNCTION ledger_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE accounts SET balance = balance + NEW.balance_delta, held = held + NEW.held_delta, updated_at = now()
     WHERE bot_id = NEW.bot_id AND user_id = NEW.user_id;
    RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS ledger_apply ON ledger;
CREATE TRIGGER ledger_apply AFTER INSERT ON ledger FOR EACH ROW EXECUTE FUNCTION ledger_apply();

CREATE OR REPLACE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only: % refused', TG_OP USING ERRCODE = 'restrict_violation';
END
$$;
DROP TRIGGER IF EXISTS ledger_append_only ON ledger;
CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE ON ledger FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
DROP TRIGGER IF EXISTS ledger_no_truncate ON ledger;
CREATE TRIGGER ledger_no_truncate BEFORE TRUNCATE ON ledger FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();

-- KIE's callbacks as they arrived at any instance (ACTIVE or PASSIVE), kept until the ACTIVE
-- instance's driver has applied them to their jobs. job_id and task_id are what the callback
-- named (its URL, its body); body is the raw text.
CREATE TABLE IF NOT EXISTS kie_callbacks (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bot_id      bigint      NOT NULL,
    job_id      bigint,
    task_id     text,
    body        text        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    received_by text        NOT NULL,
    applied_at  timestamptz
);
CREATE INDEX IF NOT EXISTS kie_callbacks_pending ON kie_callbacks (bot_id, id) WHERE applied_at IS NULL;
