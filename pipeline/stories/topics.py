"""Watch topics: which stories belong to which user-pinned topic.

A topic is a name and a description in the settings. Its description is
embedded with the same model as the articles, and a story belongs to the
topic when the cosine between the story's centroid and that embedding reaches
the topic's threshold. Matching by meaning rather than keywords catches a
story about "grid outages" for a topic described as "power supply problems".
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

# Same default as pipeline.settings.WatchTopic.threshold, for callers that pass partial maps.
DEFAULT_TOPIC_THRESHOLD = 0.45


def topic_text(name: str, description: str) -> str:
    """The text to embed for a topic: its description, or its name when that is empty.

    Prefixing the name measured no better with all-MiniLM-L6-v2 (on-topic cosines
    0.34-0.58 either way, off-topic at most ~0.2), so the user's words go in as written.
    """
    return " ".join(description.split()) or " ".join(name.split())


def match_topics(
    centroids: Mapping[str, np.ndarray],
    topic_vectors: Mapping[str, np.ndarray],
    thresholds: Mapping[str, float],
) -> dict[str, list[str]]:
    """Map every story id to the names of the topics it belongs to.

    Vectors need not be normalised. A story's topics are ordered by cosine,
    closest first (ties by name); a zero vector matches nothing. Topics missing
    from ``thresholds`` use DEFAULT_TOPIC_THRESHOLD.
    """
    story_ids = list(centroids)
    names = list(topic_vectors)
    result: dict[str, list[str]] = {sid: [] for sid in story_ids}
    if not story_ids or not names:
        return result
    stories = _unit_rows(np.stack([np.asarray(centroids[s], dtype=np.float64) for s in story_ids]))
    topics = _unit_rows(np.stack([np.asarray(topic_vectors[t], dtype=np.float64) for t in names]))
    if stories.shape[1] != topics.shape[1]:
        raise ValueError(
            f"story centroids have dimension {stories.shape[1]} but topic vectors {topics.shape[1]}: "
            "were they embedded with different models?"
        )
    sims = stories @ topics.T
    # A zero vector (empty text) has no direction: it matches nothing, whatever the threshold.
    sims[~stories.any(axis=1), :] = -np.inf
    sims[:, ~topics.any(axis=1)] = -np.inf
    limits = np.array([thresholds.get(t, DEFAULT_TOPIC_THRESHOLD) for t in names])
    for row, story_id in enumerate(story_ids):
        hits = [(float(sims[row, col]), names[col]) for col in np.flatnonzero(sims[row] >= limits)]
        result[story_id] = [name for _, name in sorted(hits, key=lambda h: (-h[0], h[1]))]
    return result


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    # Zero rows stay zero instead of becoming NaN.
    norms[norms == 0] = 1.0
    return matrix / norms
