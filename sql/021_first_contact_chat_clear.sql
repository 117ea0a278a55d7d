-- Issue 21: a first contact also says whether the FSM holds anything under the user's private
-- chat (chat_clear), in the same round trip: the leader's FSM cache then needs no read of its own
-- for a newcomer's first update (bot/middlewares.EnsureUser). A user is normally created before
-- anything of theirs is stored, but rows from before accounts existed (or written by hand) are
-- not ruled out, so the table is asked rather than assumed. The lookup is the primary key's
-- prefix (bot_id, chat_id, user_id). A known user is only read, as before, with chat_clear false.
-- The result gains a column, which CREATE OR REPLACE cannot do: dropped and created again.
DROP FUNCTION IF EXISTS trt_first_contact(text, bigint, bigint, bigint, text, text, bigint, text);
CREATE FUNCTION trt_first_contact(p_lock text, p_epoch bigint, p_bot bigint, p_user bigint,
                                  p_language text, p_username text, p_bonus bigint, p_key text)
RETURNS TABLE (user_id bigint, language text, first_seen timestamptz, blocked boolean, banned boolean,
               ban_told boolean, username text, last_seen timestamptz, lang text, created boolean,
               chat_clear boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    found_user users%ROWTYPE;
BEGIN
    SELECT * INTO found_user FROM users u WHERE u.bot_id = p_bot AND u.user_id = p_user;
    IF FOUND THEN
        RETURN QUERY SELECT found_user.user_id, found_user.language, found_user.first_seen, found_user.blocked,
                            found_user.banned, found_user.ban_told, found_user.username, found_user.last_seen,
                            found_user.lang, false, false;
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
                            found_user.lang, false, false;
        RETURN;
    END IF;
    INSERT INTO accounts (bot_id, user_id) VALUES (p_bot, p_user);
    IF p_bonus > 0 THEN
        INSERT INTO ledger (bot_id, user_id, kind, balance_delta, held_delta, idempotency_key, epoch, note, source)
             VALUES (p_bot, p_user, 'bonus', p_bonus, 0, p_key, p_epoch, 'welcome bonus', 'welcome');
    END IF;
    RETURN QUERY SELECT found_user.user_id, found_user.language, found_user.first_seen, found_user.blocked,
                        found_user.banned, found_user.ban_told, found_user.username, found_user.last_seen,
                        found_user.lang, true,
                        NOT EXISTS (SELECT 1 FROM fsm f
                                     WHERE f.bot_id = p_bot AND f.chat_id = p_user AND f.user_id = p_user);
END;
$$;
