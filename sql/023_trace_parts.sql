-- Trace events in parts: one row per correlation id in each batch correlation_flusher writes, its
-- steps a JSON array of [unix time, actor, event, data] in the order they were emitted. An update's
-- story of about eight steps is one row and one entry in each index instead of eight: the table
-- `traces` (a row per event) cost the hot path and the WAL more than the update's own rows.
-- `json`, not `jsonb`: written at every update and read once in a while, by correlation id.
-- `traces` stays readable until the janitor has trimmed what it holds.
CREATE TABLE IF NOT EXISTS trace_parts (
    correlation_id text        NOT NULL,
    at             timestamptz NOT NULL,  -- its first step's
    steps          json        NOT NULL
);
CREATE INDEX IF NOT EXISTS trace_parts_correlation_id ON trace_parts (correlation_id);
CREATE INDEX IF NOT EXISTS trace_parts_at ON trace_parts (at);
