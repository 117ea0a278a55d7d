-- A generation's number as its user counts them (issue 19): a user's first generation is №1,
-- whatever the global job id. Internal ids stay in buttons and logs; this is what a user reads.
-- store/jobs.confirm assigns max + 1 under the user's account lock (one user's confirmations run
-- one at a time), so numbers are unique and gapless per user; the trigger below fills the number
-- for any other insert (a test's, an operator's) that leaves it out.
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS user_number integer;

UPDATE jobs j SET user_number = n.number
  FROM (SELECT id, row_number() OVER (PARTITION BY bot_id, user_id ORDER BY id) AS number FROM jobs) n
 WHERE j.id = n.id AND j.user_number IS NULL;

CREATE OR REPLACE FUNCTION jobs_user_number() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.user_number IS NULL THEN
        SELECT COALESCE(max(user_number), 0) + 1 INTO NEW.user_number
          FROM jobs WHERE bot_id = NEW.bot_id AND user_id = NEW.user_id;
    END IF;
    RETURN NEW;
END
$$;
DROP TRIGGER IF EXISTS jobs_user_number ON jobs;
CREATE TRIGGER jobs_user_number BEFORE INSERT ON jobs FOR EACH ROW EXECUTE FUNCTION jobs_user_number();

ALTER TABLE jobs ALTER COLUMN user_number SET NOT NULL;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'jobs_user_number_positive') THEN
        ALTER TABLE jobs ADD CONSTRAINT jobs_user_number_positive CHECK (user_number > 0);
    END IF;
END
$$;
CREATE UNIQUE INDEX IF NOT EXISTS jobs_user_number_unique ON jobs (bot_id, user_id, user_number);
