-- Money in: where every credit came from, Stars orders and payments, the Stars rate's history,
-- referrals, the users an operator blocked, and the admins' audit trail.

-- Every credit names its source (revenue by source; one credit per external payment id).
-- Older rows have none: they are welcome bonuses and seeds from before sources existed.
ALTER TABLE ledger ADD COLUMN IF NOT EXISTS source text;

-- A reversal takes a refunded payment's credit back; the accounts CHECK keeps it from overdrawing.
ALTER TABLE ledger DROP CONSTRAINT IF EXISTS ledger_kind_moves;
ALTER TABLE ledger ADD CONSTRAINT ledger_kind_moves CHECK (
    (kind IN ('top_up', 'bonus', 'refund') AND balance_delta > 0 AND held_delta = 0)
    OR (kind = 'adjustment' AND balance_delta <> 0 AND held_delta = 0)
    OR (kind = 'reversal' AND balance_delta < 0 AND held_delta = 0)
    OR (kind = 'hold' AND balance_delta = 0 AND held_delta > 0 AND job_id IS NOT NULL)
    OR (kind = 'release' AND balance_delta = 0 AND held_delta < 0 AND job_id IS NOT NULL)
    OR (kind = 'capture' AND balance_delta < 0 AND held_delta = balance_delta AND job_id IS NOT NULL));
CREATE INDEX IF NOT EXISTS ledger_source ON ledger (bot_id, source, created_at) WHERE source IS NOT NULL;

-- banned: an operator blocked the user (one polite message, then nothing; they cannot pay);
-- ban_told: that message went out. username and last_seen serve the admin's lookup and stats
-- (last_seen is written at most once an hour per user, not per update).
ALTER TABLE users ADD COLUMN IF NOT EXISTS banned boolean NOT NULL DEFAULT false;
ALTER TABLE users ADD COLUMN IF NOT EXISTS ban_told boolean NOT NULL DEFAULT false;
ALTER TABLE users ADD COLUMN IF NOT EXISTS username text;
ALTER TABLE users ADD COLUMN IF NOT EXISTS last_seen timestamptz;
CREATE INDEX IF NOT EXISTS users_username ON users (bot_id, lower(username)) WHERE username IS NOT NULL;
CREATE INDEX IF NOT EXISTS users_last_seen ON users (bot_id, last_seen);

-- Kopecks one Star buys, as set by admins over time; the newest row applies (STARS_RATE before any).
CREATE TABLE IF NOT EXISTS stars_rates (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bot_id   bigint      NOT NULL,
    kopecks  integer     NOT NULL CHECK (kopecks > 0),
    set_by   bigint      NOT NULL,
    set_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS stars_rates_newest ON stars_rates (bot_id, id DESC);

-- An invoice the bot sent: its id is the invoice payload. kopecks is what it credits, fixed at
-- creation with the rate of that moment. A subscription order names its plan.
CREATE TABLE IF NOT EXISTS star_orders (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bot_id     bigint      NOT NULL,
    user_id    bigint      NOT NULL,
    kind       text        NOT NULL CHECK (kind IN ('top_up', 'subscription')),
    plan       text,
    stars      integer     NOT NULL CHECK (stars > 0),
    kopecks    bigint      NOT NULL CHECK (kopecks >= 0),
    rate       integer     NOT NULL CHECK (rate > 0),
    status     text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'paid', 'refunded')),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    paid_at    timestamptz,
    FOREIGN KEY (bot_id, user_id) REFERENCES users,
    CONSTRAINT star_orders_plan_iff_subscription CHECK ((kind = 'subscription') = (plan IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS star_orders_user ON star_orders (bot_id, user_id, id);

-- A Stars payment as Telegram reported it, once per charge id: the same successful_payment
-- delivered twice, after a failover or to another instance, finds its row and credits nothing.
CREATE TABLE IF NOT EXISTS star_payments (
    bot_id      bigint      NOT NULL,
    charge_id   text        NOT NULL CHECK (charge_id <> ''),
    user_id     bigint      NOT NULL,
    order_id    bigint      REFERENCES star_orders,
    stars       integer     NOT NULL CHECK (stars > 0),
    kopecks     bigint      NOT NULL CHECK (kopecks >= 0),
    recurring   boolean     NOT NULL DEFAULT false,
    expires_at  timestamptz,  -- subscription_expiration_date of a recurring payment
    paid_at     timestamptz NOT NULL DEFAULT now(),
    told_at     timestamptz,  -- the user was told (a crash before it: the redelivery tells them)
    refunded_at timestamptz,
    refunded_by bigint,
    PRIMARY KEY (bot_id, charge_id),
    FOREIGN KEY (bot_id, user_id) REFERENCES users
);
CREATE INDEX IF NOT EXISTS star_payments_user ON star_payments (bot_id, user_id, paid_at);

-- Who brought whom: one row per referred user, written once (no relinking); rewarded_at when the
-- referrer got the bonus (the first paid top-up or succeeded paid generation of the referred user).
CREATE TABLE IF NOT EXISTS referrals (
    bot_id      bigint      NOT NULL,
    user_id     bigint      NOT NULL,
    referrer_id bigint      NOT NULL,
    linked_at   timestamptz NOT NULL DEFAULT now(),
    rewarded_at timestamptz,
    bonus       bigint      NOT NULL DEFAULT 0 CHECK (bonus >= 0),
    PRIMARY KEY (bot_id, user_id),
    FOREIGN KEY (bot_id, user_id) REFERENCES users,
    FOREIGN KEY (bot_id, referrer_id) REFERENCES users (bot_id, user_id),
    CONSTRAINT referrals_not_self CHECK (user_id <> referrer_id)
);
CREATE INDEX IF NOT EXISTS referrals_referrer ON referrals (bot_id, referrer_id);

-- Every admin action: who, what, on whom, the state before and after (JSON text).
CREATE TABLE IF NOT EXISTS admin_audit (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bot_id    bigint      NOT NULL,
    admin_id  bigint      NOT NULL,
    action    text        NOT NULL,
    target    text,
    before    text,
    after     text,
    at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS admin_audit_newest ON admin_audit (bot_id, id DESC);
