-- Full text behind teasers: where an article's text came from ('feed': the entry itself; 'page':
-- extracted from the linked article page), and one row per article page fetched, for conditional
-- GET, for never fetching an extracted page again, and to say why a page gave no text.
ALTER TABLE articles ADD COLUMN text_source VARCHAR DEFAULT 'feed';
UPDATE articles SET text_source = 'feed' WHERE text_source IS NULL;

CREATE TABLE page_fetches (
    url            VARCHAR PRIMARY KEY,  -- the entry's link as the feed gave it
    article_id     VARCHAR,              -- the article it was fetched for (last time)
    source         VARCHAR,              -- the configured source (sources.name)
    fetched_at     TIMESTAMP NOT NULL,
    status         VARCHAR NOT NULL,     -- extracted | no_text | not_modified | skipped | error
    http_status    INTEGER,
    bytes          BIGINT,
    chars          INTEGER,              -- characters of text extracted
    etag           VARCHAR,
    last_modified  VARCHAR,
    error_class    VARCHAR,              -- error: as for feeds, plus robots_disallowed, blocked_address
    error          VARCHAR
);
