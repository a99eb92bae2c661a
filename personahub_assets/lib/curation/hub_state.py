"""The hub's persisted dedup state: reading it for a batch, writing a batch's decisions
into it in one transaction, and clearing it for a replay.

The state that makes a batch cost what the batch costs, all warehouse tables keyed by batch
(see :mod:`personahub_assets.lib.common.tables`): ``hub_members`` (every persona that passed the
filters, its place in the order and the stage that decided it), ``hub_band_keys`` (band keys
of the MinHash survivors; a new batch's candidates come from a DuckDB join against them, then
exact Jaccard), ``hub_vectors`` (embeddings of the hub personas), ``hub_index`` (IVF centroids,
trained once when the hub first reaches ``ivf_min_hub`` personas, then frozen) and
``hub_ledger`` (one row per curated batch with its accounting and settings).

The functions take a ``session`` callable (``WarehouseResource.session``): each opens a short
session.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timezone

import duckdb
import numpy as np
import pyarrow as pa

from personahub_assets.lib.common.faults import fault_point
from personahub_assets.lib.common.tables import TABLES
from personahub_assets.lib.common.transactions import fetch_dicts, insert_arrow, rollback_if_open
from personahub_assets.lib.curation.hub_decisions import (
    BatchOutcome,
    HubSettings,
    HubVectors,
    assign_lists,
)

Session = Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]]

#: Tables the hub writes, all replaced per batch.
HUB_TABLES = ("persona_hub", "persona_dedup_log", "hub_members", "hub_band_keys",
              "hub_vectors", "hub_index", "hub_ledger")

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


class HubStateError(RuntimeError):
    """The hub's state cannot take this batch as it is (say which command fixes it)."""


def _one(conn: duckdb.DuckDBPyConnection, sql: str, params: Sequence = ()) -> dict:
    return fetch_dicts(conn, sql, params)[0]


def vectors_of(column: pa.ChunkedArray | pa.Array, dim: int | None = None) -> np.ndarray:
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


@dataclass
class BatchWork:
    """One batch as :func:`~personahub_assets.lib.curation.hub.curate_batch` decides it: its
    personas in decision order, what the hub already holds of them, and the decisions so far.

    ``survivors`` index the batch's personas (those past the filters and exact copies);
    ``after_minhash``, ``kept`` and ``vector_kept`` index ``survivors``.
    """

    batch: str
    seq: int
    ledger: dict
    fingerprint: dict
    ids: list[str]
    texts: list[str]
    methods: list[str]
    #: Persona IDs that passed the filters earlier (in the hub, or earlier in this batch).
    seen: set[str]
    log: list[dict] = field(default_factory=list)
    survivors: list[int] = field(default_factory=list)
    keys: np.ndarray | None = None
    after_minhash: list[int] = field(default_factory=list)
    stage: dict[int, str] = field(default_factory=dict)
    kept: list[int] = field(default_factory=list)
    vector_kept: list[int] = field(default_factory=list)
    new_vectors: np.ndarray | None = None
    hub: HubVectors | None = None
    hub_ids: list[str] = field(default_factory=list)
    trained: np.ndarray | None = None

    def drop(self, i: int, stage: str, duplicate_of: str | None, similarity: float | None,
             text: str | None = None) -> None:
        """Log persona ``i`` as dropped at ``stage`` (with ``text`` instead of its own)."""
        self.log.append({"persona_id": self.ids[i],
                         "persona": self.texts[i] if text is None else text,
                         "method": self.methods[i], "batch": self.batch, "stage": stage,
                         "duplicate_of": duplicate_of, "similarity": similarity})


def read_batch(session: Session, batch: str, seq: int) -> BatchWork:
    """A batch's personas in decision order, with the fingerprints its commit checks again.

    Raises:
        HubStateError: A batch at or after ``seq`` is curated already.
    """
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
    return BatchWork(batch, seq, ledger, fingerprint, ids, texts, methods, seen)


def prior_survivors(session: Session, keys: np.ndarray
                    ) -> tuple[list[str], list[str], tuple[np.ndarray, np.ndarray]]:
    """Earlier MinHash survivors whose band keys collide with ``keys`` (``(bands, n)``, a
    batch's), by a join with ``hub_band_keys``: their persona IDs and texts in hub order, and
    the colliding ``(prior index, batch index)`` pairs."""
    bands, count = keys.shape
    batch_keys = pa.table({
        "q": pa.array(np.tile(np.arange(count, dtype=np.int64), bands)),
        "band": pa.array(np.repeat(np.arange(bands, dtype=np.int32), count)),
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
    return prior_ids, prior_texts, pairs


def read_hub_vectors(session: Session) -> tuple[HubVectors, list[str]]:
    """The hub's vectors in hub order with their persona IDs; with their IVF lists and the
    frozen centroids once the index is trained."""
    with session() as conn:
        # Sorted here rather than in DuckDB: sorting wide rows costs more than the read.
        stored = conn.execute("SELECT persona_id, seq, pos, list, vector FROM hub_vectors"
                              ).to_arrow_table()
        centroid_rows = conn.execute("SELECT vector FROM hub_index WHERE kind = 'ivf' "
                                     "ORDER BY row").to_arrow_table()
    order = np.lexsort((stored["pos"].to_numpy(), stored["seq"].to_numpy()))
    hub = HubVectors(vectors_of(stored["vector"])[order])
    hub_ids = stored["persona_id"].take(order).to_pylist()
    stored_lists = stored["list"].to_numpy(zero_copy_only=False)[order]
    del stored
    if len(centroid_rows):
        hub.centroids = vectors_of(centroid_rows["vector"])
        hub.lists = stored_lists.astype(np.int32)
    return hub, hub_ids


def batch_rows(work: BatchWork, settings: HubSettings, outcome: BatchOutcome
               ) -> list[tuple[str, pa.Table]]:
    """The rows a curated batch adds to the state, the dedup log and the ledger, in the order
    :func:`commit_batch` inserts them."""
    batch, seq, ids, survivors = work.batch, work.seq, work.ids, work.survivors
    members = pa.table({
        "persona_id": pa.array([ids[i] for i in survivors], pa.string()),
        "batch": pa.array([batch] * len(survivors), pa.string()),
        "seq": pa.array([seq] * len(survivors), pa.int64()),
        "pos": pa.array(survivors, pa.int64()),
        "stage": pa.array([work.stage[k] for k in range(len(survivors))], pa.string())})
    band_rows = np.array(work.after_minhash, np.int64)
    band_table = pa.table({
        "persona_id": pa.array([ids[survivors[k]] for k in work.after_minhash] * settings.bands,
                               pa.string()),
        "batch": pa.array([batch] * (len(work.after_minhash) * settings.bands), pa.string()),
        "band": pa.array(np.repeat(np.arange(settings.bands, dtype=np.int32),
                                   len(work.after_minhash))),
        "key": pa.array(work.keys[:, band_rows].reshape(-1).view(np.int64))})
    writes: list[tuple[str, pa.Table]] = [("hub_members", members),
                                          ("hub_band_keys", band_table)]
    if work.new_vectors is not None:
        lists = (assign_lists(work.new_vectors, work.hub.centroids)
                 if work.hub.centroids is not None
                 else np.full(len(work.new_vectors), -1, np.int32))
        writes.append(("hub_vectors", pa.table({
            "persona_id": pa.array([ids[survivors[k]] for k in work.vector_kept], pa.string()),
            "batch": pa.array([batch] * len(work.vector_kept), pa.string()),
            "seq": pa.array([seq] * len(work.vector_kept), pa.int64()),
            "pos": pa.array([survivors[k] for k in work.vector_kept], pa.int64()),
            "list": pa.array(lists, pa.int32()),
            "vector": _vector_column(work.new_vectors)})))
    if work.trained is not None:
        writes.append(("hub_index", pa.table({
            "batch": pa.array([batch] * len(work.trained), pa.string()),
            "kind": pa.array(["ivf"] * len(work.trained), pa.string()),
            "row": pa.array(np.arange(len(work.trained), dtype=np.int32)),
            "vector": _vector_column(work.trained)})))
    log_table = pa.Table.from_pylist(work.log, schema=TABLES["persona_dedup_log"])
    writes.append(("persona_dedup_log", log_table))
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    writes.append(("hub_ledger", pa.Table.from_pylist([{
        "batch": batch, "seq": seq, "personas_in": outcome.personas_in, "kept": outcome.kept,
        "dropped": outcome.dropped, "filtered": outcome.filtered, "exact": outcome.exact,
        "minhash": outcome.minhash, "embedding": outcome.embedding,
        "settings": settings.to_json(), "curated_at": now}], schema=TABLES["hub_ledger"])))
    return writes


def commit_batch(session: Session, work: BatchWork, writes: list[tuple[str, pa.Table]]
                 ) -> None:
    """Replace the batch's hub rows with ``work``'s in one transaction: its kept personas
    into ``persona_hub``, ``writes`` into their tables, and the hub's IVF lists when this
    batch trained the index.

    Raises:
        HubStateError: The ledger or the batch's personas changed since :func:`read_batch`.
    """
    batch = work.batch
    kept_ids = [work.ids[work.survivors[k]] for k in work.kept]
    hub_names = ", ".join(f'p."{c}"' for c in TABLES["persona_hub"].names)
    with session() as conn:
        conn.execute("BEGIN TRANSACTION")
        try:
            if (_one(conn, _LEDGER_FINGERPRINT) != work.ledger
                    or _one(conn, _BATCH_FINGERPRINT, [batch]) != work.fingerprint):
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
            if work.trained is not None:
                conn.register("relisted", pa.table({
                    "persona_id": pa.array(work.hub_ids, pa.string()),
                    "list": pa.array(work.hub.lists, pa.int32())}))
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
