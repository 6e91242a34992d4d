"""Synthetic news windows with known stories, for the scale benchmark.

Seeded, so every run of ``bench/scale.py`` sees the same articles. The shape follows what a
real window looks like to the clusterer:

- Story sizes are heavy-tailed: most articles are singletons (a story nobody else covered), a
  few stories have hundreds of reports (Zipf, exponent ``zipf_a``, capped at ``max_story``).
- Stories belong to topics (crime, markets, ...). A story's centre lies near its topic's centre
  (cosine about 0.65 between two stories of one topic), and its articles lie around the story
  centre with a within-story cosine drawn per story from 0.6-0.85, the range the sentence model
  gives reports of one event. Different stories of one topic are the hard negatives.
- Texts are 60 words in sentences of 12: a story's own words and names (capitalised inside
  sentences, so the names view sees them), its topic's words, and general words from a Zipf
  vocabulary shared by all.
- Times: each story starts at a uniform point of the window; its reports follow within hours.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DIM = 384
_SYLLABLES = [c + v for c in "bcdfghklmnprstvz" for v in "aeiou"]


@dataclass(frozen=True)
class Window:
    vectors: np.ndarray  # (n, 384) float32 unit rows
    texts: list[str]
    times: np.ndarray  # epoch seconds
    truth: np.ndarray  # story index per article


def _words(rng: np.random.Generator, count: int, syllables: int) -> np.ndarray:
    picks = rng.integers(0, len(_SYLLABLES), size=(count, syllables))
    table = np.array(_SYLLABLES)
    return np.array(["".join(row) for row in table[picks]])


def _unit(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def story_sizes(rng: np.random.Generator, n: int, zipf_a: float = 2.0, max_story: int = 600) -> np.ndarray:
    sizes: list[int] = []
    total = 0
    while total < n:
        draw = np.minimum(rng.zipf(zipf_a, size=max(n // 4, 16)), max_story)
        for s in draw.tolist():
            s = min(s, n - total)
            sizes.append(s)
            total += s
            if total >= n:
                break
    return np.array(sizes, dtype=np.int64)


def make_window(n: int, seed: int = 0, days: float = 4.0, t0: float = 1_717_200_000.0) -> Window:
    rng = np.random.default_rng(seed)
    sizes = story_sizes(rng, n)
    n_stories = len(sizes)
    n_topics = max(8, n // 4000)
    topic_of = rng.integers(0, n_topics, size=n_stories)
    topics = _unit(rng.normal(size=(n_topics, DIM)).astype(np.float32))
    # Story centres: topic centre + noise of norm ~0.75 gives cosine ~0.65 between two stories of a topic.
    centres = _unit(
        topics[topic_of] + rng.normal(scale=0.75 / np.sqrt(DIM), size=(n_stories, DIM)).astype(np.float32)
    )
    truth = np.repeat(np.arange(n_stories), sizes)
    # Within-story cosine c = 1 / (1 + sigma^2): sigma^2 = 1/c - 1.
    within = rng.uniform(0.6, 0.85, size=n_stories)
    sigma = np.sqrt(1.0 / within - 1.0)[truth]
    vectors = np.empty((n, DIM), dtype=np.float32)
    for lo in range(0, n, 65536):
        hi = min(lo + 65536, n)
        noise = rng.normal(size=(hi - lo, DIM)).astype(np.float32) * (
            sigma[lo:hi, None] / np.sqrt(DIM)
        ).astype(np.float32)
        vectors[lo:hi] = _unit(centres[truth[lo:hi]] + noise)

    general = _words(rng, 20000, 3)
    zipf_p = 1.0 / np.arange(1, len(general) + 1)
    zipf_p /= zipf_p.sum()
    topic_words = rng.integers(0, len(general), size=(n_topics, 150))
    story_words = _words(rng, n_stories * 6, 4).reshape(n_stories, 6)
    story_names = np.char.capitalize(_words(rng, n_stories * 4, 3)).reshape(n_stories, 4)
    # Per article: 60 slots, ~14 % story words, ~6 % names, ~30 % topic words, the rest general.
    kind = rng.choice(4, size=(n, 60), p=[0.14, 0.06, 0.3, 0.5])
    pick6 = rng.integers(0, 6, size=(n, 60))
    pick4 = rng.integers(0, 4, size=(n, 60))
    pick_topic = rng.integers(0, 150, size=(n, 60))
    pick_general = rng.choice(len(general), size=(n, 60), p=zipf_p)
    texts: list[str] = []
    for i in range(n):
        s = truth[i]
        row = kind[i]
        words = np.where(
            row == 0,
            story_words[s][pick6[i]],
            np.where(
                row == 1,
                story_names[s][pick4[i]],
                np.where(
                    row == 2, general[topic_words[topic_of[s]][pick_topic[i]]], general[pick_general[i]]
                ),
            ),
        ).tolist()
        sentences = [" ".join(words[k : k + 12]) for k in range(0, 60, 12)]
        texts.append(". ".join(w[:1].upper() + w[1:] for w in sentences) + ".")

    start = rng.uniform(0, days * 86400.0, size=n_stories)
    times = t0 + start[truth] + rng.exponential(6 * 3600.0, size=n)
    order = rng.permutation(n)  # a window arrives interleaved, not story by story
    return Window(vectors[order], [texts[i] for i in order], times[order], truth[order])
