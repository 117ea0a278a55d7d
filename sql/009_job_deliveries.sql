-- What of a job's outcome has reached the user, part by part, as it went out (issue 17): a
-- retry resumes at the first part not recorded here (nothing the user has is sent again), and
-- a job with any result part here is a success whatever ends it (store/jobs.finish captures).
-- part: "<result index>:<as>" for a result ("0:photo", "0:document", "1:video", "1:link"), or
-- what we told about it ("1:missing"), or "apology" for a failure's explanation.
-- reached: a result (its file or its link) is in the chat; false for our words about it.
CREATE TABLE IF NOT EXISTS job_deliveries (
    job_id     bigint      NOT NULL REFERENCES jobs,
    part       text        NOT NULL CHECK (part <> ''),
    reached    boolean     NOT NULL,
    file_id    text,  -- Telegram's file_id of what was sent (none for a text)
    message_id bigint,  -- the message in the job's chat (a photo's original replies to it)
    epoch      bigint      NOT NULL,  -- the fence epoch that recorded it
    sent_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, part)
);
