-- Subscriptions sold for Stars (catalog/plans.yaml) and the free generations that plans and
-- promo codes give: who has which plan until when, the promo grants, and which job used which.

-- One row per subscription the user bought: the order whose id is the invoice's payload (every
-- renewal comes back with that payload). expires_at is the latest subscription_expiration_date
-- Telegram reported (each charge id extends it once: star_payments' key). The benefits hold while
-- now < expires_at, whatever the state; state says whether it renews: active, canceled (the user
-- or the bot turned renewal off: it runs to expires_at) or failed (the renewal's payment failed:
-- nothing paid beyond expires_at, which is when Telegram reports it). daily and discount are the
-- plan's terms as of its last payment (a plan edited in the YAML applies from the next renewal).
CREATE TABLE IF NOT EXISTS subscriptions (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bot_id           bigint      NOT NULL,
    user_id          bigint      NOT NULL,
    order_id         bigint      NOT NULL REFERENCES star_orders,
    plan             text        NOT NULL,
    first_charge_id  text        NOT NULL,  -- identifies the subscription to editUserStarSubscription
    last_charge_id   text        NOT NULL,
    daily            text        NOT NULL DEFAULT '{}',  -- JSON: model id -> free generations a day
    discount         integer     NOT NULL DEFAULT 0 CHECK (discount BETWEEN 0 AND 90),
    started_at       timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL,
    state            text        NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'canceled', 'failed')),
    canceled_by      text        CHECK (canceled_by IN ('user', 'bot')),
    cancel_asked_at  timestamptz,  -- the bot's intent to cancel, committed before editUserStarSubscription
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (bot_id, order_id),
    FOREIGN KEY (bot_id, user_id) REFERENCES users
);
CREATE INDEX IF NOT EXISTS subscriptions_user ON subscriptions (bot_id, user_id, expires_at);

-- Free generations given to a user (a promo code's), once per key: the same redemption applied
-- twice finds its row. max_price: the dearest generation (kopecks) it covers, none: any.
CREATE TABLE IF NOT EXISTS grants (
    bot_id     bigint      NOT NULL,
    key        text        NOT NULL CHECK (key <> ''),
    user_id    bigint      NOT NULL,
    count      integer     NOT NULL CHECK (count > 0),
    max_price  bigint      CHECK (max_price > 0),
    epoch      bigint      NOT NULL,
    granted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (bot_id, key),
    FOREIGN KEY (bot_id, user_id) REFERENCES users
);
CREATE INDEX IF NOT EXISTS grants_user ON grants (bot_id, user_id);

-- What a job paid with 'grant' or 'plan' used, written in confirm()'s transaction: a grant (its
-- key), or a subscription's daily allowance of a model on a day (the allowance as it was then).
-- A failed or timed-out job gave nothing, so it does not count (as for the free tier).
CREATE TABLE IF NOT EXISTS entitlement_uses (
    job_id          bigint      PRIMARY KEY REFERENCES jobs,
    bot_id          bigint      NOT NULL,
    user_id         bigint      NOT NULL,
    kind            text        NOT NULL CHECK (kind IN ('grant', 'plan')),
    grant_key       text,
    subscription_id bigint      REFERENCES subscriptions,
    model           text        NOT NULL,
    day             date        NOT NULL,
    allowance       integer,
    FOREIGN KEY (bot_id, grant_key) REFERENCES grants (bot_id, key),
    CONSTRAINT entitlement_uses_what CHECK (
        (kind = 'grant' AND grant_key IS NOT NULL AND subscription_id IS NULL AND allowance IS NULL)
        OR (kind = 'plan' AND grant_key IS NULL AND subscription_id IS NOT NULL AND allowance > 0))
);
CREATE INDEX IF NOT EXISTS entitlement_uses_grant ON entitlement_uses (bot_id, grant_key) WHERE kind = 'grant';
CREATE INDEX IF NOT EXISTS entitlement_uses_day ON entitlement_uses (bot_id, user_id, day, model) WHERE kind = 'plan';

-- A job may now be paid with a promo grant or a plan's daily allowance (nothing held for either).
ALTER TABLE jobs DROP CONSTRAINT IF EXISTS jobs_paid_with_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_paid_with_check
    CHECK (paid_with IN ('money', 'free', 'admin', 'grant', 'plan'));
