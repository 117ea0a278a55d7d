-- Trace events: what happened to one update or generation, keyed by its correlation id.
-- Written in batches by correlation_flusher; trimmed by age by the janitor.
CREATE TABLE IF NOT EXISTS traces (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    correlation_id text        NOT NULL,
    at             timestamptz NOT NULL,
    actor          text        NOT NULL,
    event          text        NOT NULL,
    data           jsonb
);
CREATE INDEX IF NOT EXISTS traces_correlation_id ON traces (correlation_id);
CREATE INDEX IF NOT EXISTS traces_at ON traces (at);
