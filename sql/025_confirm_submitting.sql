-- Issue 21: a Confirm whose job can go to KIE at once commits createTask's intent with the job.
-- The jobs actor committed it in a transaction of its own (store/jobs.py's mark_submitting) right
-- before createTask left, and in a burst of presses that round trip was the longest wait between
-- a Confirm's commit and its createTask (4-15 ms each; bench.generation A's p99 read 80 against
-- 100 ms over 4 interleaved pairs with it left out). It is the same write: 'submitting' means
-- "KIE may have the task", and it must be committed before the request leaves. So a Confirm that
-- already holds a slot of KIE's createTask limit (kie/limiter.py's reserve: one free now) and
-- whose input needs nothing fetched, uploaded or spoken first commits its job in 'submitting',
-- its first attempt counted, and the jobs actor of the same process sends it without a write.
--
-- intent_epoch is the epoch whose Confirm committed that intent. It tells the jobs actor of that
-- epoch that the first createTask is its own to send (actors/kie_poller.py keeps, for its epoch,
-- the jobs it has sent, so a row read late never sends twice). Any other epoch reads the job as
-- every 'submitting' job: KIE may have the task, so it waits for the task's callback or its
-- deadline (released, a possible orphan), never a second createTask. A crash between the commit
-- and the request is that case, as a crash between mark_submitting and the request always was.

ALTER TABLE jobs ADD COLUMN IF NOT EXISTS intent_epoch bigint;

-- trt_confirm_money (sql/024) with the job made in 'submitting' when p_submitting holds. Its
-- refusals are trt_confirm_money's, unchanged.
CREATE OR REPLACE FUNCTION trt_confirm_submitting(p_lock text, p_epoch bigint, p_bot bigint, p_user bigint,
                                                  p_chat bigint, p_nonce text, p_model text, p_sku text,
                                                  p_input text, p_price bigint, p_max_active integer,
                                                  p_status_message bigint, p_endpoint text, p_parent bigint,
                                                  p_day date, p_now timestamptz)
RETURNS TABLE (c_outcome text, c_available bigint, c_count bigint, c_job jobs)
LANGUAGE plpgsql AS $$
DECLARE
    answer record;
    made jobs%ROWTYPE;
BEGIN
    SELECT * INTO answer
      FROM trt_confirm_money(p_lock, p_epoch, p_bot, p_user, p_chat, p_nonce, p_model, p_sku, p_input, p_price,
                             p_max_active, p_status_message, p_endpoint, p_parent, p_day, p_now) m;
    IF answer.c_outcome <> 'created' THEN
        RETURN QUERY SELECT answer.c_outcome, answer.c_available, answer.c_count, answer.c_job;
        RETURN;
    END IF;
    UPDATE jobs j SET state = 'submitting', attempts = 1, intent_epoch = p_epoch
     WHERE j.id = (answer.c_job).id
    RETURNING j.* INTO made;
    RETURN QUERY SELECT 'created'::text, answer.c_available, NULL::bigint, made;
END;
$$;
