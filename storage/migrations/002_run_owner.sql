-- Which process owns a run, so a run left 'running' by a killed process can be marked
-- 'interrupted' by the next one instead of looking busy forever.
ALTER TABLE runs ADD COLUMN pid INTEGER;
ALTER TABLE runs ADD COLUMN host VARCHAR;
