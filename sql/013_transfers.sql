-- Bank transfers (issue 18, off unless PAYMENT_TRANSFER_DETAILS is set): a user's request to be
-- credited for money they sent by bank, with the screenshot they showed as proof, decided by an
-- admin. The row is written before the details are shown, so its number is in every message.
--
-- status: pending (awaiting a screenshot until expires_at, then awaiting an admin), approved (the
-- ledger entry transfer:<id> credited it, in the same transaction), rejected (reason told to the
-- user), cancelled by the user, or expired (no screenshot in time; set lazily, a pending row past
-- expires_at without a screenshot counts as expired everywhere).
-- notified_at: the admins got the screenshot; decided_query: the callback query that decided,
-- so the same update run again (a crash before the user was told) tells the user, and a second
-- click does not; told_at: the user was told the decision.
CREATE TABLE IF NOT EXISTS transfer_requests (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bot_id          bigint      NOT NULL,
    user_id         bigint      NOT NULL,
    amount          bigint      NOT NULL CHECK (amount > 0),
    status          text        NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'approved', 'rejected', 'cancelled', 'expired')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    screenshot      text,
    screenshot_kind text        CHECK (screenshot_kind IN ('photo', 'document')),
    screenshot_at   timestamptz,
    notified_at     timestamptz,
    decided_by      bigint,
    decided_at      timestamptz,
    decided_query   text,
    reason          text,
    told_at         timestamptz,
    FOREIGN KEY (bot_id, user_id) REFERENCES users,
    CONSTRAINT transfer_screenshot_whole CHECK ((screenshot IS NULL) = (screenshot_kind IS NULL)),
    CONSTRAINT transfer_approved_has_proof CHECK (status <> 'approved' OR screenshot IS NOT NULL),
    CONSTRAINT transfer_decided_by_whom CHECK (status NOT IN ('approved', 'rejected') OR decided_by IS NOT NULL)
);
-- one open request per user: a second "Bank transfer" resumes it instead of piling up rows for admins
CREATE UNIQUE INDEX IF NOT EXISTS transfer_requests_one_open ON transfer_requests (bot_id, user_id)
    WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS transfer_requests_pending ON transfer_requests (bot_id, id) WHERE status = 'pending';
