-- Issue 21: concurrent first contacts in one round trip (store/first_contacts.py). Each is
-- trt_first_contact (sql/021) as before, in the order given, inside the one statement's
-- transaction: the same fence per user (a refused fence refuses the whole statement, which holds
-- one epoch), the same bonus keyed by the user. The caller sorts the users, so two batches that
-- share a user take its row's locks in the same order and cannot deadlock. The arrays are of one
-- length; p_keys names each user's welcome bonus.
CREATE OR REPLACE FUNCTION trt_first_contacts(p_lock text, p_epoch bigint, p_bot bigint, p_users bigint[],
                                              p_languages text[], p_usernames text[], p_bonus bigint,
                                              p_keys text[])
RETURNS TABLE (user_id bigint, language text, first_seen timestamptz, blocked boolean, banned boolean,
               ban_told boolean, username text, last_seen timestamptz, lang text, created boolean,
               chat_clear boolean)
LANGUAGE plpgsql AS $$
BEGIN
    IF cardinality(p_users) <> cardinality(p_languages) OR cardinality(p_users) <> cardinality(p_usernames)
       OR cardinality(p_users) <> cardinality(p_keys) THEN
        RAISE EXCEPTION 'trt_first_contacts: arrays of different lengths';
    END IF;
    FOR i IN 1 .. coalesce(cardinality(p_users), 0) LOOP
        RETURN QUERY SELECT * FROM trt_first_contact(p_lock, p_epoch, p_bot, p_users[i], p_languages[i],
                                                     p_usernames[i], p_bonus, p_keys[i]);
    END LOOP;
END;
$$;
