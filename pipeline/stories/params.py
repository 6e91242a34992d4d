"""The knobs of window clustering, with the defaults measured on the gold sets (bench/README.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pipeline.settings import ClusterSettings


@dataclass(frozen=True)
class ClusterParams:
    # Weights of the three views in the blended similarity (renormalised per pair).
    embed_weight: float = 1.0
    words_weight: float = 1.0
    names_weight: float = 1.0
    # Lexical views count fully once the shorter text of a pair has this many words.
    lexical_full_words: int = 40
    # Hub correction: neighbours averaged, and the share of that average subtracted.
    hub_neighbours: int = 10
    hub_weight: float = 0.5
    # Floor on that average, so the bar does not sink in small or thin windows.
    hub_floor: float = 0.35
    # Soft time penalty (0 disables).
    time_weight: float = 0.05
    time_scale_days: float = 1.0
    # Two groups join while their mean pairwise similarity is at least this.
    threshold: float = 0.10
    # HDBSCAN core finding.
    min_cluster_size: int = 2
    min_samples: int = 1
    cluster_selection_method: Literal["leaf", "eom"] = "leaf"
    # Windows above this many articles take the sparse path (pipeline/stories/sparse.py).
    exact_max: int = 5000
    # Sparse path: candidate neighbours per article, exact k-NN up to knn_exact_max articles
    # (an IVF index above), and inverted lists searched per query.
    knn_neighbours: int = 20
    knn_exact_max: int = 20_000
    knn_nprobe: int = 24
    # Sparse path: components of the strong-edge graph up to dense_max articles run the exact
    # procedure (several small ones together, up to dense_batch); larger ones graph average linkage.
    dense_max: int = 10_000
    dense_batch: int = 512

    @classmethod
    def from_settings(cls, settings: ClusterSettings) -> ClusterParams:
        """The configured knobs; everything else keeps the measured defaults above."""
        return cls(
            threshold=settings.link_threshold,
            time_weight=settings.time_weight,
            min_cluster_size=settings.min_cluster_size,
            min_samples=settings.min_samples,
            exact_max=settings.exact_max,
            knn_neighbours=settings.knn_neighbours,
        )
