-- Referral codes and promo codes (issue 18).

-- A user's personal referral code (t.me/<bot>?start=ref_<code>): random, written once, the first
-- time the user opens "Invite friends", unique per bot. Not the user id: a link must not be
-- guessable from someone's id.
ALTER TABLE users ADD COLUMN IF NOT EXISTS ref_code text;
ALTER TABLE users DROP CONSTRAINT IF EXISTS users_ref_code_format;
ALTER TABLE users ADD CONSTRAINT users_ref_code_format CHECK (ref_code IS NULL OR ref_code ~ '^[A-Za-z0-9]{6,16}$');
CREATE UNIQUE INDEX IF NOT EXISTS users_ref_code ON users (bot_id, ref_code) WHERE ref_code IS NOT NULL;

-- A promo code an admin created: `value` kopecks (kind amount) or free generations (kind
-- generations); `uses` counts redemptions and never passes max_uses (the redemption's conditional
-- UPDATE, and this CHECK whoever writes). Codes are stored upper-case; users type any case.
CREATE TABLE IF NOT EXISTS promo_codes (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bot_id      bigint      NOT NULL,
    code        text        NOT NULL CHECK (code ~ '^[A-Z0-9_-]{3,32}$'),
    kind        text        NOT NULL CHECK (kind IN ('amount', 'generations')),
    value       bigint      NOT NULL CHECK (value > 0),
    max_uses    integer     NOT NULL CHECK (max_uses > 0),
    uses        integer     NOT NULL DEFAULT 0,
    expires_at  timestamptz NOT NULL,
    disabled_at timestamptz,
    disabled_by bigint,
    created_by  bigint      NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT promo_codes_uses CHECK (uses >= 0 AND uses <= max_uses)
);
CREATE UNIQUE INDEX IF NOT EXISTS promo_codes_code ON promo_codes (bot_id, code);
CREATE INDEX IF NOT EXISTS promo_codes_newest ON promo_codes (bot_id, id DESC);

-- One redemption per user per code (the primary key), written in the same transaction as the
-- code's use and the credit or grant. told_at: the user was told (a crash before it: the
-- update's rerun tells them instead of saying "already used").
CREATE TABLE IF NOT EXISTS promo_redemptions (
    code_id     bigint      NOT NULL REFERENCES promo_codes,
    bot_id      bigint      NOT NULL,
    user_id     bigint      NOT NULL,
    redeemed_at timestamptz NOT NULL DEFAULT now(),
    told_at     timestamptz,
    PRIMARY KEY (code_id, user_id),
    FOREIGN KEY (bot_id, user_id) REFERENCES users
);
CREATE INDEX IF NOT EXISTS promo_redemptions_user ON promo_redemptions (bot_id, user_id);
