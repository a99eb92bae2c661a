"""The incremental persona hub: each batch is curated once, in sequence order, against the
hub's persisted dedup state; a rebuild replays the batches through the same code.

Decision rule (the same whatever the split into batches): personas are visited in the order
(batch sequence, method, depth, persona ID, ...). A persona is dropped when

1. a filter rejects it (PII, length, refusal, not a persona);
2. its persona ID passed the filters earlier (``exact``);
3. its word-set Jaccard with an earlier MinHash survivor that shares an LSH band reaches the
   threshold (``minhash``, the most similar survivor recorded, the earliest on ties);
4. its embedding's cosine with an earlier hub persona reaches the threshold (``embedding``).

The state that makes a batch cost what the batch costs, all warehouse tables keyed by batch
(see :mod:`personahub_assets.lib.common.tables`): ``hub_members`` (every persona that passed the
filters, its place in the order and the stage that decided it), ``hub_band_keys`` (band keys
of the MinHash survivors; a new batch's candidates come from a DuckDB join against them, then
exact Jaccard), ``hub_vectors`` (embeddings of the hub personas), ``hub_index`` (IVF centroids,
trained once when the hub first reaches ``ivf_min_hub`` personas, then frozen) and
``hub_ledger`` (one row per curated batch with its accounting and settings).

Nothing here depends on when a batch ran: a batch's decisions are a function of the state left
by the batches before it in sequence order, so replaying them gives the identical hub.

The functions take a ``session`` callable (``WarehouseResource.session``): each phase opens a
short session, and no session is held while the encoder runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from personahub_assets.lib.common.faults import fault_point
from personahub_assets.lib.common.tables import TABLES
from personahub_assets.lib.common.transactions import fetch_dicts, insert_arrow, rollback_if_open
from personahub_assets.lib.curation.embeddings import (
    DEFAULT_MIN_COVERAGE,
    Encoder,
    _ExactKept,
    _resolve_block,
    _single_threaded_blas,
    _spherical_kmeans,
    encoder_coverage,
    normalize,
)
from personahub_assets.lib.curation.minhash import (
    MinHasher,
    SimilarPairs,
    TokenSets,
    band_keys,
    exact_jaccard,
    resolve_duplicates,
    similar_pairs,
)
from personahub_assets.lib.personas.pii import redact
from personahub_assets.lib.personas.validation import hub_filter_reason

Session = Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]]

#: Tables the hub writes, all replaced per batch.
HUB_TABLES = ("persona_hub", "persona_dedup_log", "hub_members", "hub_band_keys",
              "hub_vectors", "hub_index", "hub_ledger")
#: Tables holding rows of a batch, in the order a retraction deletes them.
BATCH_TABLES = ("math_answers", "math_solutions", "synthetic_samples", *HUB_TABLES,
                "rejected_personas", "personas", "file_accounting", "rejected_documents",
                "documents", "batch_files", "batches")

METHOD_ORDER = "CASE method WHEN 'import' THEN 0 WHEN 'text' THEN 1 ELSE 2 END"
# After the method: shallower first, then every other column, so the order is total and the
# survivor of a group of exact copies is the same row in Python and in SQL.
TIE_ORDER = ("depth, persona_id, doc_id NULLS FIRST, parent_persona_id NULLS FIRST, "
             "batch, role NULLS FIRST, relation NULLS FIRST, template NULLS FIRST")
_BATCH_ORDER = f"{METHOD_ORDER}, {TIE_ORDER}"
_BATCH_FINGERPRINT = ("SELECT count(*) AS n, coalesce(sum(hash(persona_id, method, depth, "
                      "doc_id, parent_persona_id, persona)), 0) AS h FROM personas "
                      "WHERE batch = ?")
_LEDGER_FINGERPRINT = ("SELECT count(*) AS n, coalesce(sum(hash(batch, seq)), 0) AS h "
                       "FROM hub_ledger")
_EMBEDDING_BLOCK = 2048
_HEAD_DIMS = 64


class HubStateError(RuntimeError):
    """The hub's state cannot take this batch as it is (say which command fixes it)."""


@dataclass(frozen=True)
class HubSettings:
    """Everything a decision depends on; stored in the ledger with every batch."""

    minhash_threshold: float = 0.9
    min_words: int = 4
    max_words: int = 80
    num_perm: int = 128
    bands: int = 16
    rows: int = 8
    seed: int = 1
    embedding_dedup: bool = True
    embedding_threshold: float = 0.9
    encoder: str = "static"
    #: Exact search until the hub holds this many vectors; then IVF centroids are trained
    #: once on the hub and frozen (0: always exact).
    ivf_min_hub: int = 100_000
    ivf_nlist: int = 1024
    ivf_nprobe: int = 16
    #: Texts the encoder represents below this share (``encoder_coverage``) take no part in
    #: embedding dedup: MinHash alone decides for them.
    min_coverage: float = DEFAULT_MIN_COVERAGE

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass
class BatchOutcome:
    """What curating one batch decided."""

    batch: str
    seq: int
    personas_in: int = 0
    kept: int = 0
    filtered: int = 0
    exact: int = 0
    minhash: int = 0
    embedding: int = 0
    #: Personas the encoder could not represent, left to MinHash alone.
    unseen: int = 0
    index: str = "exact"
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def dropped(self) -> int:
        return self.filtered + self.exact + self.minhash + self.embedding


# --------------------------------------------------------------------------------------------
# the decisions (plain data in, plain data out)


def text_band_keys(texts: Sequence[str], settings: HubSettings) -> np.ndarray:
    """LSH band keys ``(bands, n)`` of texts, the ones :func:`similar_pairs` uses."""
    sets = TokenSets.from_texts(texts)
    keys = np.empty((settings.bands, len(sets)), np.uint64)
    hasher = MinHasher(num_perm=settings.num_perm, seed=settings.seed)
    for docs, minima in hasher.signature_blocks(sets):
        keys[:, docs] = band_keys(minima, settings.bands, settings.rows, settings.seed)
    return keys


def minhash_decisions(texts: Sequence[str], prior_texts: Sequence[str],
                      prior_pairs: tuple[np.ndarray, np.ndarray], settings: HubSettings
                      ) -> list[tuple[int, int, float]]:
    """MinHash drops of ``texts`` (a batch, in order) after ``prior_texts`` (earlier MinHash
    survivors that collide with the batch, in order; all kept).

    ``prior_pairs`` are ``(prior index, batch index)`` band collisions from the state join.
    Returns ``(batch index, duplicate, similarity)``; ``duplicate`` < 0 names prior text
    ``-duplicate - 1``, otherwise a batch index.
    """
    if settings.minhash_threshold > 1.0 or not texts:
        return []
    inner = similar_pairs(texts, settings.minhash_threshold, settings.num_perm,
                          settings.bands, settings.rows, settings.seed)
    h = len(prior_texts)
    left, right = prior_pairs
    # Pairs of representatives only (as in similar_pairs): a later copy of a set follows its
    # representative's decision.
    own = inner.representative[right] == right
    left, right = left[own], right[own]
    if len(left):
        sets = TokenSets.from_texts(list(prior_texts) + list(texts))
        sims = exact_jaccard(sets, left, right + h)
        similar = sims >= settings.minhash_threshold
        left, right, sims = left[similar], right[similar] + h, sims[similar]
    else:
        sims = np.empty(0)
    pairs = SimilarPairs(
        representative=np.concatenate([np.arange(h), inner.representative + h]),
        left=np.concatenate([left, inner.left + h]).astype(np.int64),
        right=np.concatenate([right, inner.right + h]).astype(np.int64),
        similarity=np.concatenate([sims, inner.similarity]))
    out = []
    for d in resolve_duplicates(pairs):
        assert d.index >= h, "a prior survivor is never dropped again"
        dup = d.duplicate_of - h if d.duplicate_of >= h else -d.duplicate_of - 1
        out.append((d.index - h, dup, d.similarity))
    return out


@dataclass
class HubVectors:
    """The hub's vectors in hub order, with their IVF lists and the frozen centroids."""

    vectors: np.ndarray
    lists: np.ndarray | None = None
    centroids: np.ndarray | None = None


def search_hub(hub: HubVectors, queries: np.ndarray, threshold: float, nprobe: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """Best hub match of every query at or above ``threshold``: ``(similarity, hub index)``,
    ``(-inf, -1)`` when there is none; ties go to the earliest hub item.

    The one place the embedding index lives: exact search (all hub vectors, with a proven
    Cauchy-Schwarz filter) until centroids exist, then the ``nprobe`` nearest inverted lists
    of the frozen centroids. A faiss index would replace this function's body.
    """
    n = len(queries)
    best_sim = np.full(n, -np.inf, np.float32)
    best_idx = np.full(n, -1, np.int64)
    m = len(hub.vectors)
    if not n or not m:
        return best_sim, best_idx
    if hub.centroids is None:
        dim = hub.vectors.shape[1]
        index = _ExactKept(dim, m, _HEAD_DIMS if dim >= 2 * _HEAD_DIMS else 0)
        index.add(hub.vectors, np.arange(m))
        return index.best(queries, threshold)
    nlist = len(hub.centroids)
    probes = min(max(1, nprobe), nlist)
    scores = queries @ hub.centroids.T
    chosen = (np.argpartition(-scores, probes - 1, axis=1)[:, :probes] if probes < nlist
              else np.broadcast_to(np.arange(nlist), scores.shape))
    members = np.argsort(hub.lists, kind="stable")  # hub order within each list
    bounds = np.searchsorted(hub.lists[members], np.arange(nlist + 1))
    flat = chosen.ravel()
    order = np.argsort(flat, kind="stable")
    askers = np.repeat(np.arange(n), probes)[order]
    lists = flat[order]
    edges = np.flatnonzero(np.diff(lists)) + 1
    # Many small products: a multithreaded BLAS spends longer synchronizing than computing.
    with _single_threaded_blas():
        for begin, end in zip(np.r_[0, edges].tolist(), np.r_[edges, len(lists)].tolist(),
                              strict=True):
            target = int(lists[begin])
            ids = members[bounds[target]:bounds[target + 1]]
            if not len(ids):
                continue
            who = askers[begin:end]
            sims = queries[who] @ hub.vectors[ids].T
            arg = sims.argmax(axis=1)
            top, found = sims[np.arange(len(who)), arg], ids[arg]
            better = (top > best_sim[who]) | ((top == best_sim[who])
                                              & (found < best_idx[who]))
            best_sim[who[better]] = top[better]
            best_idx[who[better]] = found[better]
    miss = best_sim < threshold
    best_sim[miss], best_idx[miss] = -np.inf, -1
    return best_sim, best_idx


def embedding_decisions(vectors: np.ndarray, hub: HubVectors, threshold: float,
                        nprobe: int) -> list[tuple[int, int, float]]:
    """Embedding drops of a batch's vectors (in order) against the hub and within the batch.

    Returns ``(batch index, duplicate, similarity)``; ``duplicate`` < 0 names hub item
    ``-duplicate - 1``, otherwise a batch index. On equal similarity the hub item wins (it
    comes first).
    """
    n = len(vectors)
    if not n:
        return []
    prior_sim, hub_idx = search_hub(hub, vectors, threshold, nprobe)
    prior_ids = np.where(hub_idx >= 0, -hub_idx - 2, -1)  # -1: no match; < -1: a hub item
    dim = vectors.shape[1]
    inside = _ExactKept(dim, n, _HEAD_DIMS if dim >= 2 * _HEAD_DIMS else 0)
    out = []
    for start in range(0, n, _EMBEDDING_BLOCK):
        block = np.ascontiguousarray(vectors[start:start + _EMBEDDING_BLOCK])
        stop = start + len(block)
        sim_in, ids_in = inside.best(block, threshold)
        use_in = sim_in > prior_sim[start:stop]  # strict: the hub item wins ties
        sims = np.where(use_in, sim_in, prior_sim[start:stop])
        ids = np.where(use_in, ids_in, prior_ids[start:stop])
        kept, best_sim, best_ids = _resolve_block(block, start, threshold, sims, ids)
        for j in np.flatnonzero(~kept).tolist():
            ref = int(best_ids[j])
            out.append((start + j, ref if ref >= 0 else ref + 1, float(best_sim[j])))
        rows = np.flatnonzero(kept)
        inside.add(block[rows], rows + start)
    return out


def train_centroids(vectors: np.ndarray, nlist: int, seed: int) -> np.ndarray:
    """IVF centroids of the hub's vectors (spherical k-means on a seeded sample)."""
    rng = np.random.default_rng(seed)
    nlist = max(1, min(nlist, len(vectors)))
    sample = vectors[np.sort(rng.choice(len(vectors), min(len(vectors), 32 * nlist),
                                        replace=False))]
    return _spherical_kmeans(np.ascontiguousarray(sample), nlist, rng)


def assign_lists(vectors: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Nearest centroid of every vector."""
    out = np.empty(len(vectors), np.int32)
    for s in range(0, len(vectors), 16_384):
        out[s:s + 16_384] = (vectors[s:s + 16_384] @ centroids.T).argmax(axis=1)
    return out


# --------------------------------------------------------------------------------------------
# the warehouse side


def _one(conn: duckdb.DuckDBPyConnection, sql: str, params: Sequence = ()) -> dict:
    return fetch_dicts(conn, sql, params)[0]


def _vectors_of(column: pa.ChunkedArray | pa.Array, dim: int | None = None) -> np.ndarray:
    """A list<float> column as an ``(n, dim)`` float32 array."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if not len(array):
        return np.zeros((0, dim or 0), np.float32)
    flat = array.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    return flat.reshape(len(array), -1)


def _vector_column(vectors: np.ndarray) -> pa.Array:
    dim = vectors.shape[1] if vectors.ndim == 2 else 0
    offsets = pa.array(np.arange(len(vectors) + 1, dtype=np.int32) * dim)
    return pa.ListArray.from_arrays(offsets, pa.array(vectors.reshape(-1), pa.float32()))


def ledger_settings(session: Session) -> HubSettings | None:
    """The settings the hub was built with (None for an empty hub)."""
    with session() as conn:
        row = conn.execute("SELECT settings FROM hub_ledger ORDER BY seq LIMIT 1").fetchone()
    return HubSettings(**json.loads(row[0])) if row else None


def pending_batches(session: Session, upto_seq: int | None = None) -> list[tuple[str, int]]:
    """Registered batches not yet curated, in sequence order (up to ``upto_seq``)."""
    with session() as conn:
        rows = fetch_dicts(conn, "SELECT b.batch, b.seq FROM batches b WHERE NOT EXISTS (SELECT 1 "
                      "FROM hub_ledger l WHERE l.batch = b.batch) AND b.seq <= ? ORDER BY "
                      "b.seq", [upto_seq if upto_seq is not None else 2**62])
    return [(r["batch"], r["seq"]) for r in rows]


def curate_batch(session: Session, batch: str, seq: int, settings: HubSettings,
                 encoder: Encoder | None) -> BatchOutcome:
    """Curate one batch against the hub's state and commit it in one transaction.

    Every earlier batch (by sequence) must be curated already; the caller goes in order.
    """
    import time

    clock = time.perf_counter()
    outcome = BatchOutcome(batch, seq)
    with session() as conn:
        ledger = _one(conn, _LEDGER_FINGERPRINT)
        fingerprint = _one(conn, _BATCH_FINGERPRINT, [batch])
        later = conn.execute("SELECT min(seq) FROM hub_ledger WHERE seq >= ?", [seq]
                             ).fetchone()[0]
        if later is not None:
            raise HubStateError(f"batch {batch} (seq {seq}) would be curated after batch seq "
                                f"{later}: replay the hub from seq {seq} (rebuild_hub)")
        columns = conn.execute(f"SELECT persona_id, persona, method FROM personas WHERE "
                               f"batch = ? ORDER BY {_BATCH_ORDER}", [batch]
                               ).to_arrow_table().to_pydict()
        ids, texts, methods = columns["persona_id"], columns["persona"], columns["method"]
        conn.register("batch_ids", pa.table({"persona_id": pa.array(ids, pa.string())}))
        seen = {r[0] for r in conn.execute(
            "SELECT DISTINCT m.persona_id FROM hub_members m JOIN batch_ids USING "
            "(persona_id)").fetchall()}
        conn.unregister("batch_ids")
    outcome.personas_in = len(ids)
    log: list[dict] = []

    def drop(i: int, stage: str, duplicate_of: str | None, similarity: float | None,
             text: str | None = None) -> None:
        log.append({"persona_id": ids[i], "persona": texts[i] if text is None else text,
                    "method": methods[i], "batch": batch, "stage": stage,
                    "duplicate_of": duplicate_of, "similarity": similarity})

    survivors: list[int] = []
    for i, text in enumerate(texts):
        reason = hub_filter_reason(text, settings.min_words, settings.max_words)
        if reason is not None:
            outcome.filtered += 1
            drop(i, f"filter:{reason}", None, None, text=redact(text))
        elif ids[i] in seen:
            outcome.exact += 1
            drop(i, "exact", ids[i], 1.0)
        else:
            seen.add(ids[i])
            survivors.append(i)
    outcome.seconds["filters"] = time.perf_counter() - clock

    # MinHash: candidates from a join of the batch's band keys with the state's.
    clock = time.perf_counter()
    survivor_texts = [texts[i] for i in survivors]
    keys = text_band_keys(survivor_texts, settings)
    batch_keys = pa.table({
        "q": pa.array(np.tile(np.arange(len(survivors), dtype=np.int64), settings.bands)),
        "band": pa.array(np.repeat(np.arange(settings.bands, dtype=np.int32),
                                   len(survivors))),
        "key": pa.array(keys.reshape(-1).view(np.int64))})
    with session() as conn:
        conn.register("batch_keys", batch_keys)
        candidates = conn.execute(
            "WITH hits AS (SELECT DISTINCT q.q, k.persona_id FROM batch_keys q JOIN "
            "hub_band_keys k ON k.band = q.band AND k.key = q.key), "
            "texts AS (SELECT persona_id, min(persona) AS persona FROM personas WHERE "
            "persona_id IN (SELECT persona_id FROM hits) GROUP BY persona_id) "
            "SELECT h.q, h.persona_id, m.seq, m.pos, t.persona FROM hits h "
            "JOIN hub_members m USING (persona_id) JOIN texts t USING (persona_id) "
            "ORDER BY m.seq, m.pos, h.q").to_arrow_table().to_pydict()
        conn.unregister("batch_keys")
    prior_ids: list[str] = []
    prior_texts: list[str] = []
    prior_index: dict[str, int] = {}
    for pid, text in zip(candidates["persona_id"], candidates["persona"], strict=True):
        if pid not in prior_index:
            prior_index[pid] = len(prior_ids)
            prior_ids.append(pid)
            prior_texts.append(text)
    pairs = (np.array([prior_index[p] for p in candidates["persona_id"]], np.int64),
             np.array(candidates["q"], np.int64))
    minhash_drops = minhash_decisions(survivor_texts, prior_texts, pairs, settings)
    dropped_here: set[int] = set()
    for k, dup, sim in minhash_drops:
        dropped_here.add(k)
        dup_id = prior_ids[-dup - 1] if dup < 0 else ids[survivors[dup]]
        drop(survivors[k], "minhash", dup_id, round(sim, 4))
    outcome.minhash = len(minhash_drops)
    after_minhash = [k for k in range(len(survivors)) if k not in dropped_here]
    stage = dict.fromkeys(range(len(survivors)), "minhash")
    for k in after_minhash:
        stage[k] = "kept"
    outcome.seconds["minhash"] = time.perf_counter() - clock

    # Embeddings: exact search, or the frozen IVF index, over the stored hub vectors.
    clock = time.perf_counter()
    kept = after_minhash
    new_vectors = None
    trained: np.ndarray | None = None
    hub = None
    if settings.embedding_dedup and after_minhash:
        if encoder is None:
            raise ValueError("embedding_dedup is on but no encoder was given")
        with session() as conn:
            # Sorted here rather than in DuckDB: sorting wide rows costs more than the read.
            stored = conn.execute("SELECT persona_id, seq, pos, list, vector FROM hub_vectors"
                                  ).to_arrow_table()
            centroid_rows = conn.execute("SELECT vector FROM hub_index WHERE kind = 'ivf' "
                                         "ORDER BY row").to_arrow_table()
        order = np.lexsort((stored["pos"].to_numpy(), stored["seq"].to_numpy()))
        hub = HubVectors(_vectors_of(stored["vector"])[order])
        hub_ids = stored["persona_id"].take(order).to_pylist()
        stored_lists = stored["list"].to_numpy(zero_copy_only=False)[order]
        del stored
        if len(centroid_rows):
            hub.centroids = _vectors_of(centroid_rows["vector"])
            hub.lists = stored_lists.astype(np.int32)
        elif settings.ivf_min_hub and len(hub.vectors) >= settings.ivf_min_hub:
            trained = hub.centroids = train_centroids(hub.vectors, settings.ivf_nlist,
                                                      settings.seed)
            hub.lists = assign_lists(hub.vectors, hub.centroids)
        outcome.index = "ivf" if hub.centroids is not None else "exact"
        outcome.seconds["read_vectors"] = time.perf_counter() - clock
        clock = time.perf_counter()
        candidates = [survivor_texts[k] for k in after_minhash]
        # Evidence only where the encoder can see: texts it cannot represent are neither
        # dropped nor stored as vectors, so they never cause a drop either.
        coverage = encoder_coverage(encoder, candidates)
        visible = [j for j in range(len(candidates)) if coverage[j] >= settings.min_coverage]
        outcome.unseen = len(candidates) - len(visible)
        new_vectors = (normalize(encoder.encode([candidates[j] for j in visible]))
                       if visible else None)
        outcome.seconds["encode"] = time.perf_counter() - clock
        clock = time.perf_counter()
        emb = (embedding_decisions(new_vectors, hub, settings.embedding_threshold,
                                   settings.ivf_nprobe) if visible else [])
        gone = set()
        for i, dup, sim in emb:
            j = visible[i]
            gone.add(j)
            k = after_minhash[j]
            stage[k] = "embedding"
            dup_id = (hub_ids[-dup - 1] if dup < 0
                      else ids[survivors[after_minhash[visible[dup]]]])
            drop(survivors[k], "embedding", dup_id, round(sim, 4))
        outcome.embedding = len(emb)
        kept = [after_minhash[j] for j in range(len(after_minhash)) if j not in gone]
        vector_rows = [i for i, j in enumerate(visible) if j not in gone]
        vector_kept = [after_minhash[visible[i]] for i in vector_rows]
        if new_vectors is not None:
            new_vectors = new_vectors[vector_rows]
    outcome.kept = len(kept)
    outcome.seconds["embedding"] = time.perf_counter() - clock

    clock = time.perf_counter()
    kept_ids = [ids[survivors[k]] for k in kept]
    members = pa.table({
        "persona_id": pa.array([ids[i] for i in survivors], pa.string()),
        "batch": pa.array([batch] * len(survivors), pa.string()),
        "seq": pa.array([seq] * len(survivors), pa.int64()),
        "pos": pa.array(survivors, pa.int64()),
        "stage": pa.array([stage[k] for k in range(len(survivors))], pa.string())})
    band_rows = np.array(after_minhash, np.int64)
    band_table = pa.table({
        "persona_id": pa.array([ids[survivors[k]] for k in after_minhash] * settings.bands,
                               pa.string()),
        "batch": pa.array([batch] * (len(after_minhash) * settings.bands), pa.string()),
        "band": pa.array(np.repeat(np.arange(settings.bands, dtype=np.int32),
                                   len(after_minhash))),
        "key": pa.array(keys[:, band_rows].reshape(-1).view(np.int64))})
    writes: list[tuple[str, pa.Table]] = [("hub_members", members),
                                          ("hub_band_keys", band_table)]
    if new_vectors is not None:
        lists = (assign_lists(new_vectors, hub.centroids) if hub.centroids is not None
                 else np.full(len(new_vectors), -1, np.int32))
        writes.append(("hub_vectors", pa.table({
            "persona_id": pa.array([ids[survivors[k]] for k in vector_kept], pa.string()),
            "batch": pa.array([batch] * len(vector_kept), pa.string()),
            "seq": pa.array([seq] * len(vector_kept), pa.int64()),
            "pos": pa.array([survivors[k] for k in vector_kept], pa.int64()),
            "list": pa.array(lists, pa.int32()),
            "vector": _vector_column(new_vectors)})))
    if trained is not None:
        writes.append(("hub_index", pa.table({
            "batch": pa.array([batch] * len(trained), pa.string()),
            "kind": pa.array(["ivf"] * len(trained), pa.string()),
            "row": pa.array(np.arange(len(trained), dtype=np.int32)),
            "vector": _vector_column(trained)})))
    log_table = pa.Table.from_pylist(log, schema=TABLES["persona_dedup_log"])
    writes.append(("persona_dedup_log", log_table))
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    writes.append(("hub_ledger", pa.Table.from_pylist([{
        "batch": batch, "seq": seq, "personas_in": outcome.personas_in, "kept": outcome.kept,
        "dropped": outcome.dropped, "filtered": outcome.filtered, "exact": outcome.exact,
        "minhash": outcome.minhash, "embedding": outcome.embedding,
        "settings": settings.to_json(), "curated_at": now}], schema=TABLES["hub_ledger"])))
    hub_names = ", ".join(f'p."{c}"' for c in TABLES["persona_hub"].names)
    with session() as conn:
        conn.execute("BEGIN TRANSACTION")
        try:
            if (_one(conn, _LEDGER_FINGERPRINT) != ledger
                    or _one(conn, _BATCH_FINGERPRINT, [batch]) != fingerprint):
                raise HubStateError(f"the hub or the personas of batch {batch} changed while "
                                    f"it was being curated; materialize persona_hub again")
            for table in HUB_TABLES:
                if table != "hub_index":
                    conn.execute(f'DELETE FROM "{table}" WHERE batch = ?', [batch])
            conn.register("kept_ids", pa.table({"persona_id": pa.array(kept_ids,
                                                                       pa.string())}))
            conn.execute(
                f'INSERT INTO persona_hub BY NAME SELECT {hub_names} FROM (SELECT *, '
                f'row_number() OVER (PARTITION BY persona_id ORDER BY {_BATCH_ORDER}) AS rn '
                f'FROM personas WHERE batch = ?) p JOIN kept_ids k USING (persona_id) '
                f'WHERE p.rn = 1', [batch])
            conn.unregister("kept_ids")
            if trained is not None:
                conn.register("relisted", pa.table({
                    "persona_id": pa.array(hub_ids, pa.string()),
                    "list": pa.array(hub.lists, pa.int32())}))
                conn.execute("UPDATE hub_vectors SET list = r.list FROM relisted r "
                             "WHERE hub_vectors.persona_id = r.persona_id")
                conn.unregister("relisted")
            for i, (table, rows) in enumerate(writes):
                insert_arrow(conn, table, rows, f"hub_rows_{i}")
            fault_point("warehouse_before_commit")
            conn.execute("COMMIT")
        except BaseException:
            rollback_if_open(conn)
            raise
    outcome.seconds["write"] = time.perf_counter() - clock
    return outcome


def curate_pending(session: Session, settings: HubSettings, encoder: Encoder | None,
                   upto_seq: int | None = None, ready: Callable[[str], bool] | None = None,
                   on_batch: Callable[[BatchOutcome], None] | None = None
                   ) -> tuple[list[BatchOutcome], tuple[str, int] | None]:
    """Curate every registered, uncurated batch up to ``upto_seq``, in sequence order.

    Stops at the first batch whose personas are not ready (``ready(batch)`` False) and
    returns it as the blocker: no later batch may be curated before it. A batch registered
    with a sequence number below the ledger's last (the ledger was edited) makes the hub
    replay from there. Settings different from the ledger's raise: rebuild the hub to change
    them.
    """
    stored = ledger_settings(session)
    if stored is not None and stored != settings:
        raise HubStateError(
            f"persona_hub was built with other settings ({stored.to_json()}); run the "
            f"rebuild_hub job to rebuild it with {settings.to_json()}")
    outcomes: list[BatchOutcome] = []
    pending = pending_batches(session, upto_seq)
    if pending:
        with session() as conn:
            last = conn.execute("SELECT max(seq) FROM hub_ledger").fetchone()[0]
        if last is not None and pending[0][1] < last:
            clear_hub_state(session, from_seq=pending[0][1])
            pending = pending_batches(session, upto_seq)
    for batch, seq in pending:
        if ready is not None and not ready(batch):
            return outcomes, (batch, seq)
        outcome = curate_batch(session, batch, seq, settings, encoder)
        outcomes.append(outcome)
        if on_batch:
            on_batch(outcome)
    return outcomes, None


def language_funnel(session: Session, batch: str) -> list[dict]:
    """Per language of one curated batch: personas in, dropped at each hub stage (filters,
    exact, MinHash, embedding), kept, and the share dropped; most frequent language first.

    Dropped personas take their language from the batch's ``personas`` rows (one text, one
    persona ID, one language), so every persona in is counted once: in = dropped + kept.
    """
    with session() as conn:
        rows = fetch_dicts(conn, """
            WITH lang AS (
                SELECT persona_id, any_value(coalesce(language, '')) AS language
                FROM personas WHERE batch = $1 GROUP BY persona_id),
            dropped AS (
                SELECT l.language,
                       count(*) FILTER (WHERE d.stage LIKE 'filter:%') AS filtered,
                       count(*) FILTER (WHERE d.stage = 'exact') AS exact,
                       count(*) FILTER (WHERE d.stage = 'minhash') AS minhash,
                       count(*) FILTER (WHERE d.stage = 'embedding') AS embedding
                FROM persona_dedup_log d JOIN lang l USING (persona_id)
                WHERE d.batch = $1 GROUP BY l.language),
            arrived AS (
                SELECT coalesce(language, '') AS language, count(*) AS "in"
                FROM personas WHERE batch = $1 GROUP BY 1)
            SELECT a.language, a."in", coalesce(d.filtered, 0) AS filtered,
                   coalesce(d.exact, 0) AS exact, coalesce(d.minhash, 0) AS minhash,
                   coalesce(d.embedding, 0) AS embedding
            FROM arrived a LEFT JOIN dropped d USING (language)
            ORDER BY a."in" DESC, a.language""", [batch])
    for row in rows:
        dropped = row["filtered"] + row["exact"] + row["minhash"] + row["embedding"]
        row["kept"] = row["in"] - dropped
        row["drop_rate"] = round(dropped / row["in"], 4) if row["in"] else 0.0
    return rows


def clear_hub_state(session: Session, from_seq: int = 0) -> list[str]:
    """Delete the hub state of every curated batch with ``seq >= from_seq`` (one
    transaction); returns those batches. ``from_seq`` 0 clears the whole hub."""
    with session() as conn:
        conn.execute("BEGIN TRANSACTION")
        try:
            batches = [r[0] for r in conn.execute(
                "SELECT batch FROM hub_ledger WHERE seq >= ? ORDER BY seq", [from_seq]
            ).fetchall()]
            conn.execute("CREATE OR REPLACE TEMP TABLE cleared AS SELECT batch FROM hub_ledger "
                         "WHERE seq >= ? UNION SELECT batch FROM batches WHERE seq >= ?",
                         [from_seq, from_seq])
            if from_seq <= 0:
                for table in HUB_TABLES:
                    conn.execute(f'DELETE FROM "{table}"')
            else:
                for table in HUB_TABLES:
                    conn.execute(f'DELETE FROM "{table}" WHERE batch IN (SELECT batch FROM '
                                 f'cleared)')
                # An index trained at or after from_seq goes with those batches; its lists too.
                if not conn.execute("SELECT count(*) FROM hub_index").fetchone()[0]:
                    conn.execute("UPDATE hub_vectors SET list = -1")
            conn.execute("DROP TABLE cleared")
            conn.execute("COMMIT")
        except BaseException:
            rollback_if_open(conn)
            raise
    return batches


def rebuild(session: Session, settings: HubSettings, encoder: Encoder | None,
            on_batch: Callable[[BatchOutcome], None] | None = None,
            ready: Callable[[str], bool] | None = None) -> list[BatchOutcome]:
    """Clear the hub and replay every registered batch in sequence order."""
    clear_hub_state(session)
    outcomes, _ = curate_pending(session, settings, encoder, ready=ready, on_batch=on_batch)
    return outcomes


def hub_snapshot(session: Session) -> dict[str, list[tuple]]:
    """The hub's tables as sorted row tuples (for equality tests and the benchmark)."""
    order = {"persona_hub": "persona_id", "persona_dedup_log": "batch, persona_id, stage, "
             "duplicate_of NULLS FIRST, persona", "hub_members": "seq, pos",
             "hub_band_keys": "persona_id, band", "hub_vectors": "seq, pos",
             "hub_index": "row"}
    out = {}
    with session() as conn:
        for table, by in order.items():
            out[table] = conn.execute(f'SELECT * FROM "{table}" ORDER BY {by}').fetchall()
        out["hub_ledger"] = conn.execute(
            "SELECT * EXCLUDE (curated_at) FROM hub_ledger ORDER BY seq").fetchall()
    return out


def hub_fingerprint(session: Session) -> dict[str, tuple[int, int]]:
    """Row count and an order-free checksum of every hub table (for large hubs)."""
    out = {}
    with session() as conn:
        for table in HUB_TABLES:
            columns = [f'"{c}"' for c in TABLES[table].names if c != "curated_at"]
            out[table] = tuple(conn.execute(
                f'SELECT count(*), coalesce(sum(hash({", ".join(columns)})), 0) '
                f'FROM "{table}"').fetchone())
    return out


# --------------------------------------------------------------------------------------------
# retraction


@dataclass
class Retraction:
    """What retracting a batch removed and which later batches' hub rows changed."""

    batch: str
    seq: int
    rows_deleted: dict[str, int]
    files_deleted: list[str]
    replayed: list[str]
    changed_batches: list[str]
    personas_left: int
    personas_admitted: int
    samples_removed: int


def retract_batch(session: Session, batch: str, settings: HubSettings | None,
                  encoder: Encoder | None, exports_dir: str | Path | None = None,
                  ready: Callable[[str], bool] | None = None) -> Retraction:
    """Remove a batch and every row derived from it, then replay the hub after it.

    In one transaction: every row of the batch in every table goes, as does the hub state of
    every later curated batch; the batch's files are recorded in ``retracted_files`` so the
    incoming folder does not register them again. Then the later batches are curated again
    in sequence order (personas dropped as duplicates of the retracted ones come back when
    nothing else covers them), samples of personas that left the hub are deleted with their
    math verdicts, and the batch's export files are removed.
    """
    settings = settings or ledger_settings(session) or HubSettings()
    with session() as conn:
        row = conn.execute("SELECT seq FROM batches WHERE batch = ?", [batch]).fetchone()
        if row is None:
            raise KeyError(f"batch {batch!r} is not registered (nothing to retract)")
        seq = int(row[0])
        before = {(r[0], r[1]) for r in conn.execute(
            "SELECT persona_id, batch FROM persona_hub p WHERE EXISTS (SELECT 1 FROM "
            "hub_ledger l WHERE l.batch = p.batch AND l.seq > ?)", [seq]).fetchall()}
    deleted: dict[str, int] = {}
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with session() as conn:
        conn.execute("BEGIN TRANSACTION")
        try:
            conn.execute("INSERT INTO retracted_files SELECT batch, path, content_hash, ? "
                         "FROM batch_files WHERE batch = ?", [now, batch])
            for table in ("math_answers", "math_solutions"):
                deleted[table] = conn.execute(
                    f'DELETE FROM "{table}" WHERE batch = ? OR sample_id IN (SELECT sample_id '
                    f'FROM synthetic_samples WHERE batch = ?)', [batch, batch]).fetchone()[0]
            for table in BATCH_TABLES[2:]:
                deleted[table] = conn.execute(f'DELETE FROM "{table}" WHERE batch = ?',
                                              [batch]).fetchone()[0]
            conn.execute("COMMIT")
        except BaseException:
            rollback_if_open(conn)
            raise
    replayed = clear_hub_state(session, from_seq=seq)
    curate_pending(session, settings, encoder, ready=ready)
    with session() as conn:
        after = {(r[0], r[1]) for r in conn.execute(
            "SELECT persona_id, batch FROM persona_hub p WHERE EXISTS (SELECT 1 FROM "
            "hub_ledger l WHERE l.batch = p.batch AND l.seq > ?)", [seq]).fetchall()}
        conn.execute("BEGIN TRANSACTION")
        try:
            orphan = ("SELECT sample_id FROM synthetic_samples s WHERE NOT EXISTS (SELECT 1 "
                      "FROM persona_hub h WHERE h.persona_id = s.persona_id AND h.batch = "
                      "s.batch)")
            for table in ("math_answers", "math_solutions"):
                conn.execute(f'DELETE FROM "{table}" WHERE sample_id IN ({orphan})')
            removed = conn.execute(f"DELETE FROM synthetic_samples WHERE sample_id IN "
                                   f"({orphan})").fetchone()[0]
            conn.execute("COMMIT")
        except BaseException:
            rollback_if_open(conn)
            raise
    files: list[str] = []
    if exports_dir is not None and Path(exports_dir).is_dir():
        for domain_dir in sorted(p for p in Path(exports_dir).iterdir() if p.is_dir()):
            for suffix in (".jsonl", ".parquet"):
                path = domain_dir / f"{batch}{suffix}"
                if path.exists():
                    path.unlink()
                    files.append(str(path))
    changed = sorted({b for _, b in before ^ after},
                     key=lambda b: replayed.index(b) if b in replayed else len(replayed))
    return Retraction(batch=batch, seq=seq, rows_deleted=deleted, files_deleted=files,
                      replayed=[b for b in replayed if b != batch], changed_batches=changed,
                      personas_left=len(before - after), personas_admitted=len(after - before),
                      samples_removed=int(removed))


# --------------------------------------------------------------------------------------------
# checks from independent evidence


def ledger_accounting(session: Session, batches: Iterable[str] | None = None) -> list[dict]:
    """Batches whose accounting does not add up: personas in the batch (counted in the
    personas table) = hub rows + dedup log rows, and both equal the ledger's figures."""
    with session() as conn:
        rows = fetch_dicts(conn, """
            SELECT l.batch, l.personas_in, l.kept, l.dropped,
                   (SELECT count(*) FROM personas p WHERE p.batch = l.batch) AS personas,
                   (SELECT count(*) FROM persona_hub h WHERE h.batch = l.batch) AS hub,
                   (SELECT count(*) FROM persona_dedup_log d WHERE d.batch = l.batch) AS log
            FROM hub_ledger l ORDER BY l.seq""")
    wanted = set(batches) if batches is not None else None
    return [r for r in rows if (wanted is None or r["batch"] in wanted) and not (
        r["personas"] == r["personas_in"] == r["kept"] + r["dropped"] == r["hub"] + r["log"]
        and r["kept"] == r["hub"])]


_SALT = "hub-check"


def consistent_sample(session: Session, target: int) -> list[tuple[str, str]]:
    """About ``target`` hub personas chosen by one MinHash of DuckDB's own hash function over
    the lower-cased words: two personas of word-set Jaccard J are chosen together with
    probability about J, so near-duplicates left in the hub land in the sample in pairs."""
    with session() as conn:
        n = conn.execute("SELECT count(*) FROM persona_hub").fetchone()[0]
        if not n:
            return []
        rate = min(1.0, target / n)
        cut = min(int(rate * (2**64 - 1)), 2**64 - 1)
        rows = conn.execute(
            "SELECT persona_id, persona FROM (SELECT persona_id, persona, list_min("
            "list_transform(regexp_extract_all(lower(persona), '[[:alnum:]_]+'), "
            f"w -> hash(w || '{_SALT}'))) AS h FROM persona_hub) WHERE h <= ?::UBIGINT "
            "ORDER BY persona_id", [cut]).fetchall()
    return [(r[0], r[1]) for r in rows]


def pairs_at_or_above(texts: Sequence[str], threshold: float) -> list[tuple[int, int, float]]:
    """Every pair of texts whose exact word-set Jaccard reaches ``threshold`` (all pairs,
    with only the size bound |small| >= t |large| to skip pairs that cannot)."""
    from personahub_assets.lib.curation.minhash import jaccard, word_set

    sets = [word_set(t) for t in texts]
    order = sorted(range(len(sets)), key=lambda i: len(sets[i]))
    found = []
    for a, i in enumerate(order):
        for j in order[a + 1:]:
            if len(sets[i]) < threshold * len(sets[j]) - 1e-9:
                break
            sim = jaccard(sets[i], sets[j])
            if sim >= threshold:
                found.append((min(i, j), max(i, j), sim))
    return found


def sample_embedding_pairs(session: Session, threshold: float, sample: int = 256,
                           seed: int = 0) -> dict:
    """Hub vectors of a seeded sample against every hub vector, by plain float64 products:
    pairs at or above the cosine threshold (the IVF index may miss some; exact search none).
    """
    with session() as conn:
        n = conn.execute("SELECT count(*) FROM hub_vectors").fetchone()[0]
        if n < 2:
            return {"checked": n, "pairs": 0}
        table = conn.execute("SELECT vector FROM hub_vectors ORDER BY seq, pos"
                             ).to_arrow_table()
    vectors = _vectors_of(table["vector"]).astype(np.float64)
    rng = np.random.default_rng(seed)
    picks = np.sort(rng.choice(n, min(sample, n), replace=False))
    pairs = 0
    for start in range(0, n, 65_536):
        sims = vectors[picks] @ vectors[start:start + 65_536].T
        own = (picks[:, None] == np.arange(start, min(start + 65_536, n))[None, :])
        pairs += int(((sims >= threshold) & ~own).sum())
    return {"checked": len(picks), "pairs": pairs, "hub": n}


def ivf_recall_note(settings: HubSettings) -> str:
    """A line on which index decides embedding duplicates."""
    return (f"exact search up to {settings.ivf_min_hub:,} hub vectors, then IVF with "
            f"{settings.ivf_nlist} frozen centroids and nprobe={settings.ivf_nprobe}"
            if settings.ivf_min_hub else "exact search")
