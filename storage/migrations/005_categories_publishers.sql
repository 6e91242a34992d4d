-- Sources: the folder a feed is filed under (sources file `category`, OPML outline folders), and
-- whether it is an aggregator whose items count for their own publishers (Google News).
ALTER TABLE sources ADD COLUMN category VARCHAR;
ALTER TABLE sources ADD COLUMN aggregator BOOLEAN DEFAULT FALSE;
-- Articles: the configured source an article was fetched through. `source` is the outlet that
-- published it (for an aggregator's item, its publisher); NULL here for imported articles.
ALTER TABLE articles ADD COLUMN via_feed VARCHAR;
-- Until now every fetched article's source was the feed it came through.
UPDATE articles SET via_feed = source
WHERE source IN (SELECT name FROM sources WHERE config_url <> '');
