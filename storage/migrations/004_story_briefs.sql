-- Story briefs: 2–4 sentences quoted from a story's articles, each attributed to its outlet
-- and article, plus what the story's latest day added (see pipeline/briefs). Refreshed by the
-- cluster run for every story whose membership changed, in the run's transaction.
CREATE TABLE story_briefs (
    story_id       VARCHAR PRIMARY KEY,
    sentences      STRUCT(text VARCHAR, article_id VARCHAR, source VARCHAR, published_at TIMESTAMP)[] NOT NULL,
    new_day        DATE,               -- the story's latest day, in digest.timezone
    new_sentences  STRUCT(text VARCHAR, article_id VARCHAR, source VARCHAR, published_at TIMESTAMP)[] NOT NULL,
    article_count  INTEGER NOT NULL,   -- members when the brief was built
    method         VARCHAR NOT NULL,   -- how it was built: 'extractive-v1'
    updated_at     TIMESTAMP NOT NULL
);
