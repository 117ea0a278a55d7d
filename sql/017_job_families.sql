-- Issue 20: KIE families with their own endpoints (Veo, Suno, Runway, Aleph, 4o Image, Flux
-- Kontext) and actions on a result. endpoint: the KIE family that runs the job's task ("jobs"
-- for the Market API), stored so a job is polled the way it was created even after a deploy
-- drops its model from the catalog. parent_id: the job whose result this one acts on (extend,
-- 1080p, 4K, another version): history shows the chain.
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS endpoint text NOT NULL DEFAULT 'jobs';
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS parent_id bigint;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'jobs_parent_fk') THEN
        ALTER TABLE jobs ADD CONSTRAINT jobs_parent_fk FOREIGN KEY (parent_id) REFERENCES jobs (id);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'jobs_endpoint_named') THEN
        ALTER TABLE jobs ADD CONSTRAINT jobs_endpoint_named CHECK (endpoint <> '');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'jobs_parent_not_self') THEN
        ALTER TABLE jobs ADD CONSTRAINT jobs_parent_not_self CHECK (parent_id IS NULL OR parent_id <> id);
    END IF;
END $$;
CREATE INDEX IF NOT EXISTS jobs_parent ON jobs (parent_id) WHERE parent_id IS NOT NULL;
