-- Issue 21: a user's first contact in one round trip. The fenced transaction it replaces took
-- seven (the read, BEGIN, the fence, users, accounts, the welcome bonus, COMMIT), and under load
-- every statement is a round trip the update waits for. Same rules as store/fence.py: the write
-- happens only while p_epoch is the leader's epoch (FOR SHARE on the leader row, so an epoch bump
-- waits for it), and a refused fence raises SQLSTATE 'TRTF1' (store/accounts.py maps it to
-- Fenced). A known user is only read, unfenced. The bonus is a ledger row like any other (its
-- trigger moves the account), keyed by the user.
CREATE OR REPLACE FUNCTION trt_first_contact(p_lock text, p_epoch bigint, p_bot bigint, p_user bigint,
                                             p_language text, p_username text, p_bonus bigint, p_key text)
RETURNS TABLE (user_id bigint, language text, first_seen timestamptz, blocked boolean, banned boolean,
               ban_told boolean, username text, last_seen timestamptz, lang text, created boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    found_user users%ROWTYPE;
BEGIN
    SELECT * INTO found_user FROM users u WHERE u.bot_id = p_bot AND u.user_id = p_user;
    IF FOUND THEN
        RETURN QUERY SELECT found_user.user_id, found_user.language, found_user.first_seen, found_user.blocked,
                            found_user.banned, found_user.ban_told, found_user.username, found_user.last_seen,
                            found_user.lang, false;
        RETURN;
    END IF;
    PERFORM 1 FROM leader l WHERE l.name = p_lock AND l.epoch = p_epoch FOR SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'epoch % is no longer the leader of %', p_epoch, p_lock USING ERRCODE = 'TRTF1';
    END IF;
    INSERT INTO users AS u (bot_id, user_id, language, username, last_seen)
         VALUES (p_bot, p_user, p_language, p_username, now())
    ON CONFLICT (bot_id, user_id) DO NOTHING
    RETURNING u.* INTO found_user;
    IF NOT FOUND THEN  -- a concurrent first contact created them: theirs stands
        SELECT * INTO found_user FROM users u WHERE u.bot_id = p_bot AND u.user_id = p_user;
        RETURN QUERY SELECT found_user.user_id, found_user.language, found_user.first_seen, found_user.blocked,
                            found_user.banned, found_user.ban_told, found_user.username, found_user.last_seen,
                            found_user.lang, false;
        RETURN;
    END IF;
    INSERT INTO accounts (bot_id, user_id) VALUES (p_bot, p_user);
    IF p_bonus > 0 THEN
        INSERT INTO ledger (bot_id, user_id, kind, balance_delta, held_delta, idempotency_key, epoch, note, source)
             VALUES (p_bot, p_user, 'bonus', p_bonus, 0, p_key, p_epoch, 'welcome bonus', 'welcome');
    END IF;
    RETURN QUERY SELECT found_user.user_id, found_user.language, found_user.first_seen, found_user.blocked,
                        found_user.banned, found_user.ban_told, found_user.username, found_user.last_seen,
                        found_user.lang, true;
END;
$$;
