"""The sparse path kept between runs, so that an hourly run costs what is new.

``build`` clusters a window by the sparse path (pipeline/stories/sparse.py) and keeps what the
next run can reuse: the lexicon (TF-IDF models), the inverted lists of the neighbour search,
each article's k best neighbour similarities, the candidate edges with their blends, the hub
terms, the strong-edge components and the labels. ``update`` takes the articles that left the
window and those that arrived and:

1. drops the leaving articles' edges; the articles they were joined to are *affected*;
2. finds each new article's neighbours among all articles (its own k, plus any article whose
   k best it enters: the reverse direction the full search would also have found);
3. blends the new edges only, with the kept lexicon (no refit over the window);
4. recomputes the hub term of the affected articles (new ones and every endpoint of a new or
   dropped edge) and the similarity of the edges that touch them;
5. recomputes the components, and clusters again only those holding an affected article.

Every other component has the same members, edges and hub terms as before, so the exact
procedure would give it the same labels: it keeps them without being looked at. What can drift
from a full run is what a full run refits: the TF-IDF weights, the inverted lists, and the
neighbours that replace a departed one. ``needs_rebuild`` says when that drift is large enough
(``rebuild_share`` of the window added or removed since the last build) to start over.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.stories.lexicon import Lexicon, fit_lexicon
from pipeline.stories.neighbours import InvertedLists, search_exact, search_lists, train_lists, uses_gpu
from pipeline.stories.numbering import canonical_labels
from pipeline.stories.params import ClusterParams
from pipeline.stories.sparse import (
    EdgeGraph,
    candidate_pairs,
    edge_blend,
    edge_graph,
    edge_sim,
    floored_hub,
    label_components,
    strong_components,
    top_values,
)
from pipeline.stories.terms import day_numbers
from pipeline.stories.views import TextViews, kept_then


@dataclass(frozen=True)
class WindowGraph:
    """What a sparse-path run leaves for the next one; rows are the window's articles in order."""

    vectors: np.ndarray  # (n, d) float32 unit rows; (0, 0) in a stored graph (the database has them)
    views: TextViews
    days: np.ndarray | None
    lexicon: Lexicon
    lists: InvertedLists | None  # None: the neighbour search is exact
    where: np.ndarray | None  # each article's inverted list
    top: np.ndarray  # (n, k) each article's k best neighbour similarities, best first, -inf empty
    graph: EdgeGraph
    comp: np.ndarray
    labels: np.ndarray  # per article, -1 = alone; not canonical (cluster.canonical_labels)
    drift: int = 0  # window articles added or removed since the last build
    # Per row: a context article (an older neighbour of a new one, there for story matching),
    # whose coming and going is not drift; None: none is.
    context: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)


def build(
    vectors: np.ndarray, texts: Sequence[str], times: np.ndarray | None, params: ClusterParams
) -> WindowGraph:
    """A full sparse-path run over the window."""
    vecs = np.ascontiguousarray(vectors, dtype=np.float32)
    n = len(vecs)
    lexicon, views = fit_lexicon(
        texts,
        words_weight=params.words_weight,
        names_weight=params.names_weight,
        full_words=params.lexical_full_words,
    )
    days = day_numbers(times, params)
    k = max(0, min(params.knn_neighbours, n - 1))
    lists = where = None
    if n <= params.knn_exact_max or uses_gpu():
        idx, top = search_exact(vecs, vecs, k, self_offset=0)
    else:
        lists = train_lists(vecs, params.knn_nprobe)
        where = lists.assign(vecs)
        idx, top = search_lists(vecs, where, vecs, where, lists, k, self_offset=0)
    graph = edge_graph(vecs, views, days, params, *candidate_pairs(idx))
    del idx
    comp = strong_components(graph, n, params)
    labels = label_components(vecs, views, days, params, graph, comp, np.ones(n, dtype=bool))
    return WindowGraph(vecs, views, days, lexicon, lists, where, top, graph, comp, labels)


def needs_rebuild(state: WindowGraph, removed: int, added: int, rebuild_share: float) -> bool:
    """Whether so much of the window has changed since the last build that its lexicon, lists
    and neighbour lists should be refitted (a full ``build``)."""
    size = len(state) - removed + added
    return size < 2 or state.drift + removed + added > rebuild_share * size


def update(
    state: WindowGraph,
    keep: np.ndarray,
    vectors: np.ndarray,
    texts: Sequence[str],
    times: np.ndarray | None,
    params: ClusterParams,
) -> WindowGraph:
    """The window without the rows of ``state`` where ``keep`` is False, with the new articles
    appended after the kept ones in this order: ``vectors`` are the updated window's (the kept
    rows, then the new articles), ``texts`` and ``times`` the new articles' (``state`` needs no
    vectors)."""
    keep = np.asarray(keep, dtype=bool)
    kept = np.flatnonzero(keep)
    m, added = len(kept), len(texts)
    n = m + added
    if len(vectors) != n:
        raise ValueError(f"{len(vectors)} vectors for a window of {m} kept and {added} new articles")
    remap = np.full(len(state), -1, dtype=np.int64)
    remap[kept] = np.arange(m)
    vecs = np.ascontiguousarray(vectors, dtype=np.float32)
    new_vecs = vecs[m:]
    lexicon, new_views = state.lexicon.extended(texts)
    views = kept_then(state.views, keep, new_views)
    days = None
    if state.days is not None:
        new_days = day_numbers(times, params)
        days = np.concatenate(
            [state.days[kept], new_days if new_days is not None else np.full(added, np.nan)]
        )

    old = state.graph
    alive = keep[old.i] & keep[old.j]
    # Per article, the highest blend among the edges it lost or gained (-inf: none).
    worst = np.full(n, -np.inf, dtype=np.float32)
    lost = old.blended[~alive]
    for end in (old.i[~alive], old.j[~alive]):
        np.maximum.at(worst, remap[end[keep[end]]], lost[keep[end]])

    top = np.concatenate([state.top[kept], np.full((added, state.top.shape[1]), -np.inf, np.float32)])
    where = None if state.where is None else np.concatenate([state.where[kept], state.lists.assign(new_vecs)])
    ni, nj = _new_edges(vecs, m, top, state.lists, where, params)
    gained = edge_blend(vecs, views, ni, nj, params)
    np.maximum.at(worst, ni, gained)
    np.maximum.at(worst, nj, gained)
    affected = worst > -np.inf
    affected[m:] = True

    i = np.concatenate([remap[old.i[alive]], ni])
    j = np.concatenate([remap[old.j[alive]], nj])
    blended = np.concatenate([old.blended[alive], gained])
    sim = np.concatenate([old.sim[alive], np.empty(len(ni), dtype=np.float32)])
    near = affected[i] | affected[j]
    hub = None
    if old.hub is not None:
        hub = np.concatenate([old.hub[kept], np.zeros(added, dtype=np.float32)])
        # Every edge of an affected article is among ``near``, so its hub comes out as in a full run.
        hub[affected] = floored_hub(i[near], j[near], blended[near], n, params)[affected]
    sim[near] = edge_sim(i[near], j[near], blended[near], hub, days, params)
    graph = EdgeGraph(i, j, blended, sim, hub)

    comp = strong_components(graph, n, params)
    todo = _reclustered(state, keep, graph, int(alive.sum()), comp, worst, affected, params)
    fresh = label_components(vecs, views, days, params, graph, comp, todo)
    labels = np.concatenate([state.labels[kept], np.full(added, -1, dtype=np.int64)])
    offset = int(labels.max()) + 1 if n else 0
    labels = np.where(todo, np.where(fresh >= 0, fresh + offset, -1), labels)
    return WindowGraph(
        vecs,
        views,
        days,
        lexicon,
        state.lists,
        where,
        top,
        graph,
        comp,
        labels,
        drift=state.drift + (len(state) - m) + added,
    )


def _reclustered(
    state: WindowGraph,
    keep: np.ndarray,
    graph: EdgeGraph,
    kept_edges: int,
    comp: np.ndarray,
    worst: np.ndarray,
    affected: np.ndarray,
    params: ClusterParams,
) -> np.ndarray:
    """The articles whose component must be clustered again.

    A component up to ``dense_max`` articles is clustered from its dense matrix, which holds
    nothing but its members' pairs and each member's hub term: the mean of its
    ``hub_neighbours`` best blends, inside the component or outside. So the exact procedure
    gives it the same labels as last time when its members are the same and no member's hub
    term moved; a member's hub term cannot move when every edge it lost or gained (``worst``,
    the highest of their blends) lies below its ``hub_neighbours``-th best kept edge. A larger
    component is clustered on its edges and the window-wide hub terms, so there any member
    with a lost or gained edge counts (``affected``: those articles and the new ones)."""
    m = int(keep.sum())
    if m == 0:  # nothing kept: every component is new
        return np.ones(len(comp), dtype=bool)
    old_comp = state.comp[keep]
    count = int(comp.max()) + 1
    sizes = np.bincount(comp, minlength=count)
    # Same members: all were kept from one old component, which lost none of its members.
    lo = np.full(count, np.iinfo(np.int64).max)
    hi = np.full(count, -1)
    np.minimum.at(lo, comp[:m], old_comp)
    np.maximum.at(hi, comp[:m], old_comp)
    old_sizes = np.bincount(state.comp, minlength=int(state.comp.max()) + 1)
    same = (lo == hi) & (sizes == old_sizes[np.minimum(lo, len(old_sizes) - 1)])
    same[comp[m:]] = False
    big = sizes > params.dense_max
    changed = ~same | (big & (np.bincount(comp, weights=affected, minlength=count) > 0))
    ask = affected & ~changed[comp]
    if ask.any():
        # The first ``kept_edges`` of ``graph`` are those kept from the last run.
        i, j = graph.i[:kept_edges], graph.j[:kept_edges]
        near = ask[i] | ask[j]
        blended = graph.blended[:kept_edges][near]
        floor = top_values(i[near], j[near], blended, len(comp), params.hub_neighbours)
        # The dense matrix's blends may differ from the edges' in the last bits.
        moved = ask & (worst >= floor[:, -1] - np.float32(1e-4))
        changed[comp[moved]] = True
    return changed[comp]


def _new_edges(
    vecs: np.ndarray,
    m: int,
    top: np.ndarray,
    lists: InvertedLists | None,
    where: np.ndarray | None,
    params: ClusterParams,
) -> tuple[np.ndarray, np.ndarray]:
    """The candidate edges of the articles from row ``m`` on (i < j, each once), updating ``top``
    in place: each new article's own k best, and each article whose k best a new one enters."""
    n = len(vecs)
    k = top.shape[1]
    if n == m or k == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    # Twice k from each new article: an article whose k best it enters is, by symmetry of the
    # similarity, almost always among the new article's own nearest 2k.
    wide = min(2 * k, n - 1)
    if lists is None or where is None:
        idx, sims = search_exact(vecs[m:], vecs, wide, self_offset=m)
    else:
        idx, sims = search_lists(vecs[m:], where[m:], vecs, where, lists, wide, self_offset=m)
        if 1 < n - m <= params.knn_exact_max:
            # A story that is new as a whole lies far from every trained list centre, so its
            # reports can fall into lists that do not probe each other; all new-to-new pairs
            # are few and catch them (a full run would have trained a list on that story).
            among = search_exact(vecs[m:], vecs[m:], min(wide, n - m - 1), self_offset=0)
            idx, sims = _best_of(idx, sims, np.where(among[0] >= 0, among[0] + m, -1), among[1], wide)
    top[m:] = sims[:, :k] if wide >= k else np.pad(sims, ((0, 0), (0, k - wide)), constant_values=-np.inf)
    found = idx >= 0
    own = found & (np.arange(wide)[None, :] < k)
    target = np.where(found, idx, 0)
    enters = found & ~own & (sims > top[target, k - 1])
    take = own | enters
    src = np.repeat(np.arange(m, n, dtype=np.int64), wide).reshape(-1, wide)[take]
    dst = idx[take]
    _enter_top(top, dst[enters[take]], sims[take][enters[take]])
    lo, hi = np.minimum(src, dst), np.maximum(src, dst)
    key = np.unique(lo * n + hi)
    return key // n, key % n


def _best_of(
    idx_a: np.ndarray, sims_a: np.ndarray, idx_b: np.ndarray, sims_b: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the k best of two neighbour lists (a neighbour in both counted once), best first."""
    idx = np.concatenate([idx_a, idx_b], axis=1)
    sims = np.concatenate([sims_a, sims_b], axis=1)
    by_index = np.argsort(idx, axis=1, kind="stable")
    idx, sims = np.take_along_axis(idx, by_index, 1), np.take_along_axis(sims, by_index, 1)
    repeated = np.zeros_like(idx, dtype=bool)
    repeated[:, 1:] = idx[:, 1:] == idx[:, :-1]
    sims = np.where(repeated | (idx < 0), -np.inf, sims)
    best = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    sims = np.take_along_axis(sims, best, 1)
    return np.where(np.isneginf(sims), -1, np.take_along_axis(idx, best, 1)), sims


def _enter_top(top: np.ndarray, rows: np.ndarray, sims: np.ndarray) -> None:
    """Insert similarities into the rows' best-k lists (in place), keeping each row's k best."""
    if len(rows) == 0:
        return
    k = top.shape[1]
    uniq, inverse = np.unique(rows, return_inverse=True)
    cand = np.full((len(uniq), k + np.bincount(inverse).max()), -np.inf, dtype=np.float32)
    cand[:, :k] = top[uniq]
    order = np.argsort(inverse, kind="stable")
    slot = np.arange(len(rows)) - np.searchsorted(inverse[order], inverse[order])
    cand[inverse[order], k + slot] = sims[order]
    top[uniq] = -np.sort(-cand, axis=1)[:, :k]


@dataclass(frozen=True)
class Clustered:
    """A sparse-path run's result: canonical labels in the window's order, and the graph to keep."""

    labels: np.ndarray
    graph: WindowGraph
    graph_ids: list[str]  # the article of each graph row
    updated: bool  # True: the previous graph was updated; False: built afresh


def cluster_with_graph(
    previous: tuple[list[str], WindowGraph] | None,
    ids: Sequence[str],
    vectors: np.ndarray,
    texts: Sequence[str],
    times: np.ndarray | None,
    params: ClusterParams,
    *,
    rebuild_share: float,
    context: Collection[str] = (),
) -> Clustered:
    """Cluster the window (articles ``ids`` with their vectors, texts and times), updating the
    previous run's graph (its article ids, and the graph without vectors) where it is close
    enough to this window, else building one. Articles named in ``context`` are clustered like
    the others, but their coming and going does not count as drift."""
    position = {a: k for k, a in enumerate(ids)}
    is_context = np.array([a in context for a in ids], dtype=bool)
    if previous is not None:
        old_ids, old = previous
        keep = np.array([a in position for a in old_ids], dtype=bool)
        kept_ids = [a for a, k in zip(old_ids, keep, strict=True) if k]
        known = set(kept_ids)
        fresh = [k for k, a in enumerate(ids) if a not in known]
        was_context = np.zeros(len(old_ids), dtype=bool) if old.context is None else old.context
        removed = int((~keep & ~was_context).sum())
        added = int((~is_context[fresh]).sum())
        if not needs_rebuild(old, removed, added, rebuild_share):
            rows = np.array([position[a] for a in kept_ids], dtype=np.int64)
            order = np.concatenate([rows, np.array(fresh, dtype=np.int64)])
            graph = update(
                old,
                keep,
                vectors[order],
                [texts[k] for k in fresh],
                None if times is None else times[fresh],
                params,
            )
            graph = dataclasses.replace(graph, drift=old.drift + removed + added, context=is_context[order])
            in_window = np.empty(len(ids), dtype=np.int64)
            in_window[order] = np.arange(len(ids))
            graph_ids = kept_ids + [ids[k] for k in fresh]
            return Clustered(canonical_labels(graph.labels[in_window]), graph, graph_ids, True)
    graph = dataclasses.replace(build(vectors, texts, times, params), context=is_context)
    return Clustered(canonical_labels(graph.labels), graph, list(ids), False)
