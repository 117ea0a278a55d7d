-- Issue 21: a paid Confirm without reading its terms first. The handler read them (a round trip,
-- store/grants.py's STANDING) only to learn whether anything but money at the full price applies
-- by now: a plan's allowance, a promo grant, a plan's discount. In a burst of presses that read
-- held a dispatch turn while it waited, and every later press waited behind it (bench.generation
-- A: the first 18 createTasks' p99 101 -> 85 ms over 4 interleaved pairs with the read left out).
-- So the commit asks that itself, after the account lock like every other check.
--
-- trt_only_money says what store/grants.py's standing() and bot/flow.py's terms() decide for a
-- price that is not free-tier: nothing but money at the full price. The two are kept equal by
-- tests/test_confirm_money.py, which compares them over every kind of subscription, allowance,
-- grant and discount. trt_confirm_money is trt_confirm (sql/020_confirm.sql) with that check
-- between the others and the balance's: 'terms_changed' after 'existing' (a replayed press finds
-- its job) and the other refusals, before 'insufficient' (a plan may make a short balance enough).

CREATE OR REPLACE FUNCTION trt_only_money(p_bot bigint, p_user bigint, p_model text, p_price bigint, p_day date,
                                          p_now timestamptz)
RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT NOT EXISTS (  -- the current subscription (subscriptions.current_sql): its discount or allowance
               SELECT 1
                 FROM (SELECT s.daily, s.discount FROM subscriptions s
                        WHERE s.bot_id = p_bot AND s.user_id = p_user AND s.expires_at > p_now
                        ORDER BY s.expires_at DESC, s.id DESC LIMIT 1) cur
                WHERE (cur.discount > 0 AND GREATEST(1, p_price * (100 - cur.discount) / 100) <> p_price)
                   OR COALESCE((cur.daily::jsonb ->> p_model)::bigint, 0) >
                      (SELECT count(*) FROM entitlement_uses u
                        WHERE u.bot_id = p_bot AND u.user_id = p_user AND u.kind = 'plan' AND u.day = p_day
                          AND u.model = p_model
                          AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = u.job_id
                                                                  AND j.state IN ('failed', 'timed_out'))))
       AND NOT EXISTS (  -- a grant that covers the price and has generations left
               SELECT 1 FROM grants g
                WHERE g.bot_id = p_bot AND g.user_id = p_user AND (g.max_price IS NULL OR g.max_price >= p_price)
                  AND g.count > (SELECT count(*) FROM entitlement_uses u
                                  WHERE u.bot_id = g.bot_id AND u.kind = 'grant' AND u.grant_key = g.key
                                    AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = u.job_id
                                                                            AND j.state IN ('failed', 'timed_out'))))
$$;

CREATE OR REPLACE FUNCTION trt_confirm_money(p_lock text, p_epoch bigint, p_bot bigint, p_user bigint, p_chat bigint,
                                             p_nonce text, p_model text, p_sku text, p_input text, p_price bigint,
                                             p_max_active integer, p_status_message bigint,
                                             p_endpoint text, p_parent bigint, p_day date, p_now timestamptz)
RETURNS TABLE (c_outcome text, c_available bigint, c_count bigint, c_job jobs)
LANGUAGE plpgsql AS $$
DECLARE
    checked record;
    made jobs%ROWTYPE;
BEGIN
    SELECT * INTO checked
      FROM trt_confirm_check(p_lock, p_epoch, p_bot, p_user, p_nonce, p_parent, NULL, 0, p_max_active) ch;
    IF checked.c_outcome <> 'ok' THEN
        RETURN QUERY SELECT checked.c_outcome, checked.c_available, checked.c_count, checked.c_job;
        RETURN;
    END IF;
    IF NOT trt_only_money(p_bot, p_user, p_model, p_price, p_day, p_now) THEN
        RETURN QUERY SELECT 'terms_changed'::text, checked.c_available, NULL::bigint, NULL::jobs;
        RETURN;
    END IF;
    IF checked.c_available < p_price THEN
        RETURN QUERY SELECT 'insufficient'::text, checked.c_available, NULL::bigint, NULL::jobs;
        RETURN;
    END IF;
    SELECT * INTO made
      FROM trt_confirm_insert(p_epoch, p_bot, p_user, p_chat, p_nonce, p_model, p_sku, p_input, p_price,
                              'money', p_price, NULL, p_status_message, p_endpoint, p_parent) i;
    RETURN QUERY SELECT 'created'::text, checked.c_available, NULL::bigint, made;
END;
$$;
