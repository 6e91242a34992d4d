"""The window graph a sparse-path cluster run leaves for the next one, in one file beside the database.

Not in the database: it is a cache of what the last run computed (about 1.3 GB at a million
articles), rewritten whole each run, and nothing but the cluster step reads it. It is valid only
for the run that wrote it: its header names that run, the embedding model and the clustering
parameters, and the cluster step ignores a file whose run is not the last finished cluster run
(a run killed after its commit but before the file was replaced, an older copy restored) and
then builds the graph afresh. The file is replaced atomically, so a crash leaves the old file or
the new one; an unreadable file counts as no file. The vectors are not stored (the database has
them); the TF-IDF rows, the lexicon, the inverted lists, the neighbour similarities, the edges,
the components and the labels are.
"""

from __future__ import annotations

import json
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import sparse

from pipeline.stories.incremental import WindowGraph
from pipeline.stories.lexicon import restored_lexicon
from pipeline.stories.neighbours import InvertedLists
from pipeline.stories.sparse import EdgeGraph
from pipeline.stories.views import TextViews
from storage.files import write_atomically

_FORMAT = 1


@dataclass(frozen=True)
class StoredGraph:
    """A window graph as stored: rows named by article id, for the run that computed it."""

    run_id: int
    key: str  # model and clustering parameters the graph was computed with
    article_ids: list[str]
    graph: WindowGraph  # its ``vectors`` are empty (0, 0) until the caller attaches them


def graph_path(db: str | Path) -> Path | None:
    """Where the window graph of this database lives; None for an in-memory database."""
    if str(db) in ("", ":memory:"):
        return None
    return Path(f"{db}.window-graph.npz")


def save_graph(path: Path, run_id: int, key: str, article_ids: list[str], graph: WindowGraph) -> None:
    """Replace the stored graph with this one (atomically)."""
    arrays: dict[str, np.ndarray] = {
        "header": _text(json.dumps({"format": _FORMAT, "run_id": run_id, "key": key, "drift": graph.drift})),
        "article_ids": _text("\n".join(article_ids)),
        "top": graph.top,
        "comp": graph.comp.astype(np.int64),
        "labels": graph.labels,
        "edge_i": graph.graph.i.astype(np.int64),
        "edge_j": graph.graph.j.astype(np.int64),
        "edge_blended": graph.graph.blended,
        "edge_sim": graph.graph.sim,
    }
    if graph.graph.hub is not None:
        arrays["hub"] = graph.graph.hub
    if graph.days is not None:
        arrays["days"] = graph.days
    if graph.context is not None:
        arrays["context"] = graph.context
    if graph.lists is not None and graph.where is not None:
        arrays |= {"centres": graph.lists.centres, "probes": graph.lists.probes, "where": graph.where}
    if graph.views.rel is not None:
        arrays["rel"] = graph.views.rel
    for name, matrix in (("words", graph.views.words), ("names", graph.views.names)):
        if matrix is not None:
            arrays |= _csr(name, matrix)
    lexicon = graph.lexicon
    arrays["lexicon"] = _text(json.dumps({"full_words": lexicon.full_words, "lexical": lexicon.lexical}))
    for name, model in (("words", lexicon.words), ("names", lexicon.names)):
        if model is not None:
            arrays[f"{name}_terms"] = _text("\n".join(model.terms()))
            arrays[f"{name}_idf"] = model.idf
            arrays[f"{name}_docs"] = np.array(model.docs, dtype=np.int64)
    _remove_abandoned(path)
    write_atomically(path, lambda handle: np.savez(handle, **arrays))


def _remove_abandoned(path: Path) -> None:
    """Temporary files of saves killed halfway (each up to the graph's size); one younger than
    an hour may be another run's save in progress."""
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            if time.time() - tmp.stat().st_mtime > 3600:
                tmp.unlink()
        except OSError:
            pass


def load_graph(path: Path) -> StoredGraph | None:
    """The stored graph, or None when there is none or it cannot be read whole."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            return _restored({name: f[name] for name in f.files})
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError, EOFError):
        return None


def _restored(a: dict[str, np.ndarray]) -> StoredGraph | None:
    header = json.loads(_untext(a["header"]))
    if header.get("format") != _FORMAT:
        return None
    ids = _untext(a["article_ids"]).split("\n") if a["article_ids"].size else []
    lex = json.loads(_untext(a["lexicon"]))
    lexicon = restored_lexicon(_model(a, "words"), _model(a, "names"), **lex)
    views = TextViews(_uncsr(a, "words"), _uncsr(a, "names"), a.get("rel"))
    lists = InvertedLists(a["centres"], a["probes"]) if "centres" in a else None
    edges = EdgeGraph(a["edge_i"], a["edge_j"], a["edge_blended"], a["edge_sim"], a.get("hub"))
    graph = WindowGraph(
        np.zeros((0, 0), dtype=np.float32),
        views,
        a.get("days"),
        lexicon,
        lists,
        a.get("where"),
        a["top"],
        edges,
        a["comp"],
        a["labels"],
        drift=int(header["drift"]),
        context=a.get("context"),
    )
    if not (len(ids) == len(graph.labels) == len(graph.top) == len(graph.comp)):
        return None
    return StoredGraph(int(header["run_id"]), str(header["key"]), ids, graph)


def _model(a: dict[str, np.ndarray], name: str) -> tuple[list[str], np.ndarray, int] | None:
    if f"{name}_terms" not in a:
        return None
    return _untext(a[f"{name}_terms"]).split("\n"), a[f"{name}_idf"], int(a[f"{name}_docs"])


def _csr(name: str, matrix: sparse.csr_matrix) -> dict[str, np.ndarray]:
    return {
        f"{name}_data": matrix.data,
        f"{name}_indices": matrix.indices,
        f"{name}_indptr": matrix.indptr,
        f"{name}_shape": np.array(matrix.shape, dtype=np.int64),
    }


def _uncsr(a: dict[str, np.ndarray], name: str) -> sparse.csr_matrix | None:
    if f"{name}_data" not in a:
        return None
    shape = tuple(int(x) for x in a[f"{name}_shape"])
    return sparse.csr_matrix((a[f"{name}_data"], a[f"{name}_indices"], a[f"{name}_indptr"]), shape=shape)


def _text(value: str) -> np.ndarray:
    return np.frombuffer(value.encode("utf-8"), dtype=np.uint8)


def _untext(value: np.ndarray) -> str:
    return value.tobytes().decode("utf-8")
