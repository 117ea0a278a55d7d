-- Issue 21: Confirm in one round trip. store/jobs.py's confirm() took about ten (BEGIN, the fence,
-- the account lock, the nonce, the active jobs, the day's free ones, the insert, the hold, COMMIT),
-- and in a burst of presses every one is a wait the press's createTask stands behind. Same rules as
-- store/fence.py and sql/019_first_contact.sql: nothing is written unless p_epoch is the leader's
-- epoch (FOR SHARE on the leader row, so an epoch bump waits for us), and a refused fence raises
-- SQLSTATE 'TRTF1'. The account row is locked before anything is read, so one user's
-- confirmations run one at a time; every later statement of a plpgsql function takes a new
-- snapshot, so each sees the confirmations committed before it got the lock.
--
-- trt_confirm_check: the checks (a nonce confirmed before answers first, then generations paused
-- by KIE's 402, then the rest); trt_confirm_insert: the job and its hold; trt_confirm: both, for
-- the orders that need nothing else. A promo grant, a plan's allowance or a discount is decided in
-- Python (store/grants.py) between the two, inside one fenced transaction.

-- The fence of one statement: it raises 'TRTF1' unless p_epoch is the leader's epoch, and holds the
-- leader row FOR SHARE until the statement's transaction ends (store/jobs.py's steps call it in a
-- CTE that their UPDATE joins, so a row changes only under the fence).
CREATE OR REPLACE FUNCTION trt_fence(p_lock text, p_epoch bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM leader l WHERE l.name = p_lock AND l.epoch = p_epoch FOR SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'epoch % is no longer the leader of %', p_epoch, p_lock USING ERRCODE = 'TRTF1';
    END IF;
    RETURN true;
END;
$$;

CREATE OR REPLACE FUNCTION trt_confirm_check(p_lock text, p_epoch bigint, p_bot bigint, p_user bigint, p_nonce text,
                                             p_parent bigint, p_free_day date, p_free_limit integer,
                                             p_max_active integer)
RETURNS TABLE (c_outcome text, c_available bigint, c_count bigint, c_job jobs)
LANGUAGE plpgsql AS $$
DECLARE
    acc record;
    found_job jobs%ROWTYPE;
    parent_owner bigint;
    counted bigint;
BEGIN
    PERFORM trt_fence(p_lock, p_epoch);
    SELECT a.balance, a.held INTO acc FROM accounts a WHERE a.bot_id = p_bot AND a.user_id = p_user FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'unknown_user'::text, NULL::bigint, NULL::bigint, NULL::jobs;
        RETURN;
    END IF;
    SELECT * INTO found_job FROM jobs j WHERE j.bot_id = p_bot AND j.confirm_nonce = p_nonce;
    IF FOUND THEN  -- a double click or a replayed update: the first confirmation stands
        RETURN QUERY SELECT CASE WHEN found_job.user_id = p_user THEN 'existing' ELSE 'other_user' END,
                            NULL::bigint, NULL::bigint, found_job;
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM kie_account k WHERE k.bot_id = p_bot AND k.paused_since IS NOT NULL) THEN
        -- KIE said our credits ran out (store/kie_account.py): nothing is held until it is resumed
        RETURN QUERY SELECT 'paused'::text, NULL::bigint, NULL::bigint, NULL::jobs;
        RETURN;
    END IF;
    IF p_parent IS NOT NULL THEN  -- an action acts on the user's own result, never another's
        SELECT j.user_id INTO parent_owner FROM jobs j WHERE j.id = p_parent AND j.bot_id = p_bot;
        IF parent_owner IS DISTINCT FROM p_user THEN
            RETURN QUERY SELECT 'not_yours'::text, NULL::bigint, NULL::bigint, NULL::jobs;
            RETURN;
        END IF;
    END IF;
    SELECT count(*) INTO counted FROM jobs j
     WHERE j.bot_id = p_bot AND j.user_id = p_user AND j.state IN ('created', 'submitting', 'submitted', 'running');
    IF counted >= p_max_active THEN
        RETURN QUERY SELECT 'too_many'::text, NULL::bigint, counted, NULL::jobs;
        RETURN;
    END IF;
    IF p_free_day IS NOT NULL THEN  -- a failed or timed-out free generation gave nothing: it does not count
        SELECT count(*) INTO counted FROM jobs j
         WHERE j.bot_id = p_bot AND j.user_id = p_user AND j.free_day = p_free_day AND j.paid_with = 'free'
           AND j.state NOT IN ('failed', 'timed_out');
        IF counted >= p_free_limit THEN
            RETURN QUERY SELECT 'free_limit'::text, NULL::bigint, counted, NULL::jobs;
            RETURN;
        END IF;
    END IF;
    RETURN QUERY SELECT 'ok'::text, acc.balance - acc.held, NULL::bigint, NULL::jobs;
END;
$$;

CREATE OR REPLACE FUNCTION trt_confirm_insert(p_epoch bigint, p_bot bigint, p_user bigint, p_chat bigint,
                                              p_nonce text, p_model text, p_sku text, p_input text, p_price bigint,
                                              p_paid_with text, p_held bigint, p_free_day date,
                                              p_status_message bigint, p_endpoint text, p_parent bigint)
RETURNS SETOF jobs
LANGUAGE plpgsql AS $$
DECLARE
    made jobs%ROWTYPE;
BEGIN
    -- the user's next number: their account row is locked (trt_confirm_check), so no other
    -- confirmation of theirs reads the same max (unique and gapless per user)
    INSERT INTO jobs AS j (bot_id, user_id, chat_id, confirm_nonce, model, sku, input, price, paid_with, held,
                           free_day, epoch, status_message_id, user_number, endpoint, parent_id)
         VALUES (p_bot, p_user, p_chat, p_nonce, p_model, p_sku, p_input, p_price, p_paid_with, p_held,
                 p_free_day, p_epoch, p_status_message,
                 (SELECT COALESCE(max(x.user_number), 0) + 1 FROM jobs x WHERE x.bot_id = p_bot AND x.user_id = p_user),
                 p_endpoint, p_parent)
    RETURNING j.* INTO made;
    IF p_held > 0 THEN  -- a ledger row like any other (its trigger moves the account), keyed by the job
        INSERT INTO ledger (bot_id, user_id, kind, balance_delta, held_delta, job_id, idempotency_key, epoch)
             VALUES (p_bot, p_user, 'hold', 0, p_held, made.id, 'hold:' || made.id, p_epoch);
    END IF;
    RETURN NEXT made;
END;
$$;

CREATE OR REPLACE FUNCTION trt_confirm(p_lock text, p_epoch bigint, p_bot bigint, p_user bigint, p_chat bigint,
                                       p_nonce text, p_model text, p_sku text, p_input text, p_price bigint,
                                       p_paid_with text, p_held bigint, p_free_day date, p_free_limit integer,
                                       p_max_active integer, p_status_message bigint, p_endpoint text,
                                       p_parent bigint)
RETURNS TABLE (c_outcome text, c_available bigint, c_count bigint, c_job jobs)
LANGUAGE plpgsql AS $$
DECLARE
    checked record;
    made jobs%ROWTYPE;
BEGIN
    SELECT * INTO checked
      FROM trt_confirm_check(p_lock, p_epoch, p_bot, p_user, p_nonce, p_parent, p_free_day, p_free_limit,
                             p_max_active) ch;
    IF checked.c_outcome <> 'ok' THEN
        RETURN QUERY SELECT checked.c_outcome, checked.c_available, checked.c_count, checked.c_job;
        RETURN;
    END IF;
    IF checked.c_available < p_held THEN
        RETURN QUERY SELECT 'insufficient'::text, checked.c_available, NULL::bigint, NULL::jobs;
        RETURN;
    END IF;
    SELECT * INTO made
      FROM trt_confirm_insert(p_epoch, p_bot, p_user, p_chat, p_nonce, p_model, p_sku, p_input, p_price,
                              p_paid_with, p_held, p_free_day, p_status_message, p_endpoint, p_parent) i;
    RETURN QUERY SELECT 'created'::text, checked.c_available, NULL::bigint, made;
END;
$$;
