-- Until when a source's server asked us not to come back (Retry-After on a 429/503 or any
-- response); every ingest honours it, scheduled or not, unless run with --force.
ALTER TABLE sources ADD COLUMN retry_after_until TIMESTAMP;
