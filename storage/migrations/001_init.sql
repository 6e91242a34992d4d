-- Storyline schema, version 1. All timestamps are UTC (TIMESTAMP without zone, UTC by convention).

CREATE SEQUENCE IF NOT EXISTS run_id_seq START 1;
CREATE SEQUENCE IF NOT EXISTS fetch_id_seq START 1;

-- One row per pipeline step execution (run, ingest, embed, cluster, digest, import, backfill).
CREATE TABLE runs (
    run_id       BIGINT PRIMARY KEY DEFAULT nextval('run_id_seq'),
    kind         VARCHAR NOT NULL,
    started_at   TIMESTAMP NOT NULL,
    finished_at  TIMESTAMP,
    status       VARCHAR NOT NULL DEFAULT 'running',   -- running | ok | failed
    as_of        TIMESTAMP,                            -- the clock a cluster step ran with
    stats        JSON,
    error        VARCHAR
);

-- Feeds from the sources file, plus what politeness and conditional GET need.
CREATE TABLE sources (
    name                 VARCHAR PRIMARY KEY,
    url                  VARCHAR NOT NULL,      -- where we fetch now (follows permanent redirects)
    config_url           VARCHAR NOT NULL,      -- as written in the sources file
    language             VARCHAR,
    enabled              BOOLEAN NOT NULL DEFAULT TRUE,
    disabled_reason      VARCHAR,
    etag                 VARCHAR,
    last_modified        VARCHAR,
    body_hash            VARCHAR,
    ttl_minutes          INTEGER,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    failing_since        TIMESTAMP,
    last_error_class     VARCHAR,
    last_error           VARCHAR,
    last_attempt_at      TIMESTAMP,
    last_success_at      TIMESTAMP,
    next_fetch_at        TIMESTAMP,
    added_at             TIMESTAMP NOT NULL
);

-- One row per fetch attempt, successful or not.
CREATE TABLE fetches (
    fetch_id      BIGINT PRIMARY KEY DEFAULT nextval('fetch_id_seq'),
    run_id        BIGINT,
    source        VARCHAR NOT NULL,
    url           VARCHAR NOT NULL,
    started_at    TIMESTAMP NOT NULL,
    duration_ms   INTEGER,
    status        VARCHAR NOT NULL,      -- ok | not_modified | unchanged | error
    http_status   INTEGER,
    bytes         BIGINT,
    entries       INTEGER,
    new_articles  INTEGER,
    error_class   VARCHAR,
    error         VARCHAR,
    warning       VARCHAR
);

CREATE TABLE articles (
    article_id     VARCHAR PRIMARY KEY,
    source         VARCHAR NOT NULL,
    external_id    VARCHAR,
    guid           VARCHAR,
    url            VARCHAR,
    canonical_url  VARCHAR,
    title          VARCHAR NOT NULL,
    text           VARCHAR NOT NULL,
    published_at   TIMESTAMP,            -- as the feed says; NULL if absent or in the future (untrusted)
    fetched_at     TIMESTAMP NOT NULL,
    effective_at   TIMESTAMP NOT NULL,   -- published_at, else fetched_at: what windows and digests use
    language       VARCHAR,
    content_hash   VARCHAR NOT NULL,
    fingerprint    UBIGINT,              -- SimHash of the text, for near-duplicate detection
    duplicate_of   VARCHAR,              -- the original of a syndicated / near-identical copy
    run_id         BIGINT
);

-- Persistent stories. story_id is ours (opaque, never reused); HDBSCAN labels never leave a run.
CREATE TABLE stories (
    story_id       VARCHAR PRIMARY KEY,
    status         VARCHAR NOT NULL DEFAULT 'live',  -- live | merged
    created_at     TIMESTAMP NOT NULL,               -- the run clock when it was born
    created_run    BIGINT,
    first_seen     TIMESTAMP NOT NULL,               -- earliest member's effective time
    last_seen      TIMESTAMP NOT NULL,               -- latest member's effective time
    article_count  INTEGER NOT NULL DEFAULT 0,
    merged_into    VARCHAR,
    parent_id      VARCHAR,                          -- set when split off another story
    headline       VARCHAR,
    headline_article VARCHAR,
    keywords       VARCHAR[],
    labelled_count INTEGER,                          -- article_count when the label was computed
    updated_at     TIMESTAMP NOT NULL
);

-- Current membership: one story per article. History of changes is in membership_changes.
CREATE TABLE story_articles (
    article_id   VARCHAR PRIMARY KEY,
    story_id     VARCHAR NOT NULL,
    assigned_at  TIMESTAMP NOT NULL,
    run_id       BIGINT,
    method       VARCHAR NOT NULL      -- new | cluster | attach | merge | split
);

-- Every change of an article's story, first assignment included: nothing changes silently.
CREATE TABLE membership_changes (
    run_id      BIGINT,
    changed_at  TIMESTAMP NOT NULL,
    article_id  VARCHAR NOT NULL,
    from_story  VARCHAR,
    to_story    VARCHAR NOT NULL,
    reason      VARCHAR NOT NULL
);

-- Merges (story_id retired into other_id) and splits (story_id split off parent other_id).
CREATE TABLE story_lineage (
    run_id    BIGINT,
    changed_at TIMESTAMP NOT NULL,
    kind      VARCHAR NOT NULL,       -- merge | split
    story_id  VARCHAR NOT NULL,
    other_id  VARCHAR NOT NULL
);

CREATE VIEW story_summary AS
SELECT
    s.story_id,
    s.headline,
    s.keywords,
    s.status,
    min(a.effective_at)                                              AS first_seen,
    max(a.effective_at)                                              AS last_seen,
    count(*)                                                         AS article_count,
    count(*) FILTER (WHERE a.duplicate_of IS NULL)                   AS independent_article_count,
    count(DISTINCT a.source)                                         AS source_count,
    count(DISTINCT a.source) FILTER (WHERE a.duplicate_of IS NULL)   AS independent_source_count
FROM stories s
JOIN story_articles sa USING (story_id)
JOIN articles a USING (article_id)
GROUP BY ALL;

CREATE VIEW source_health AS
SELECT
    name,
    url,
    enabled,
    CASE
        WHEN NOT enabled THEN 'disabled'
        WHEN consecutive_failures > 0 THEN 'failing'
        WHEN last_success_at IS NULL THEN 'never fetched'
        ELSE 'ok'
    END AS health,
    consecutive_failures,
    failing_since,
    last_error_class,
    last_error,
    last_success_at,
    last_attempt_at,
    next_fetch_at,
    disabled_reason
FROM sources;
