"""The incremental persona hub: each batch is curated once, in sequence order, against the
hub's persisted dedup state; a rebuild replays the batches through the same code.

Decision rule (the same whatever the split into batches): personas are visited in the order
(batch sequence, method, depth, persona ID, ...). A persona is dropped when

1. a filter rejects it (PII, length, refusal, not a persona);
2. its persona ID passed the filters earlier (``exact``);
3. its word-set Jaccard with an earlier MinHash survivor that shares an LSH band reaches the
   threshold (``minhash``, the most similar survivor recorded, the earliest on ties);
4. its embedding's cosine with an earlier hub persona reaches the threshold (``embedding``).

Nothing here depends on when a batch ran: a batch's decisions are a function of the state left
by the batches before it in sequence order, so replaying them gives the identical hub.

The entry points take a ``session`` callable (``WarehouseResource.session``): each phase
opens a short session, and no session is held while the encoder runs.

The work is split by job: :mod:`.hub_decisions` (the decisions, on plain data),
:mod:`.hub_state` (the persisted state, read and written), :mod:`.retraction` and
:mod:`.audit` (checks from independent evidence); this module runs them batch by batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from personahub_assets.lib.curation.audit import (
    consistent_sample,
    ivf_recall_note,
    language_funnel,
    ledger_accounting,
    pairs_at_or_above,
    sample_embedding_pairs,
)
from personahub_assets.lib.curation.coverage import encoder_coverage
from personahub_assets.lib.curation.encoders import Encoder
from personahub_assets.lib.curation.hub_decisions import (
    BatchOutcome,
    HubSettings,
    assign_lists,
    embedding_decisions,
    minhash_decisions,
    text_band_keys,
    train_centroids,
)
from personahub_assets.lib.curation.hub_state import (
    BatchWork,
    HubStateError,
    Session,
    batch_rows,
    clear_hub_state,
    commit_batch,
    ledger_settings,
    pending_batches,
    prior_survivors,
    read_batch,
    read_hub_vectors,
)
from personahub_assets.lib.curation.retraction import (
    Retraction,
    changed_batches,
    delete_batch_rows,
    delete_export_files,
    locate_batch,
    remove_orphan_samples,
)
from personahub_assets.lib.curation.vectors import normalize
from personahub_assets.lib.personas.pii import redact
from personahub_assets.lib.personas.validation import hub_filter_reason

# The names the hub's assets and jobs reach through this module.
__all__ = [
    "BatchOutcome",
    "HubSettings",
    "HubStateError",
    "Retraction",
    "consistent_sample",
    "curate_batch",
    "curate_pending",
    "ivf_recall_note",
    "language_funnel",
    "ledger_accounting",
    "ledger_settings",
    "pairs_at_or_above",
    "rebuild",
    "retract_batch",
    "sample_embedding_pairs",
]


def curate_batch(session: Session, batch: str, seq: int, settings: HubSettings,
                 encoder: Encoder | None) -> BatchOutcome:
    """Curate one batch against the hub's state and commit it in one transaction.

    Every earlier batch (by sequence) must be curated already; the caller goes in order.
    """
    clock = time.perf_counter()
    outcome = BatchOutcome(batch, seq)
    work = read_batch(session, batch, seq)
    outcome.personas_in = len(work.ids)
    _filter(work, settings, outcome)
    outcome.seconds["filters"] = time.perf_counter() - clock

    # MinHash: candidates from a join of the batch's band keys with the state's.
    clock = time.perf_counter()
    _minhash_stage(session, work, settings, outcome)
    outcome.seconds["minhash"] = time.perf_counter() - clock

    # Embeddings: exact search, or the frozen IVF index, over the stored hub vectors.
    _embedding_stage(session, work, settings, encoder, outcome)

    clock = time.perf_counter()
    commit_batch(session, work, batch_rows(work, settings, outcome))
    outcome.seconds["write"] = time.perf_counter() - clock
    return outcome


def _filter(work: BatchWork, settings: HubSettings, outcome: BatchOutcome) -> None:
    """Drop what the filters reject and exact copies of personas seen before; the rest are
    the batch's survivors."""
    ids = work.ids
    for i, text in enumerate(work.texts):
        reason = hub_filter_reason(text, settings.min_words, settings.max_words)
        if reason is not None:
            outcome.filtered += 1
            work.drop(i, f"filter:{reason}", None, None, text=redact(text))
        elif ids[i] in work.seen:
            outcome.exact += 1
            work.drop(i, "exact", ids[i], 1.0)
        else:
            work.seen.add(ids[i])
            work.survivors.append(i)


def _minhash_stage(session: Session, work: BatchWork, settings: HubSettings,
                   outcome: BatchOutcome) -> None:
    """MinHash drops of the survivors, against the earlier survivors their band keys hit."""
    ids, survivors = work.ids, work.survivors
    survivor_texts = [work.texts[i] for i in survivors]
    work.keys = text_band_keys(survivor_texts, settings)
    prior_ids, prior_texts, pairs = prior_survivors(session, work.keys)
    minhash_drops = minhash_decisions(survivor_texts, prior_texts, pairs, settings)
    dropped_here: set[int] = set()
    for k, dup, sim in minhash_drops:
        dropped_here.add(k)
        dup_id = prior_ids[-dup - 1] if dup < 0 else ids[survivors[dup]]
        work.drop(survivors[k], "minhash", dup_id, round(sim, 4))
    outcome.minhash = len(minhash_drops)
    work.after_minhash = [k for k in range(len(survivors)) if k not in dropped_here]
    work.stage = dict.fromkeys(range(len(survivors)), "minhash")
    for k in work.after_minhash:
        work.stage[k] = "kept"


def _embedding_stage(session: Session, work: BatchWork, settings: HubSettings,
                     encoder: Encoder | None, outcome: BatchOutcome) -> None:
    """Embedding drops of the MinHash survivors, against the hub and within the batch; the
    IVF index is trained here, once, when the hub first reaches ``ivf_min_hub`` vectors."""
    clock = time.perf_counter()
    work.kept = work.after_minhash
    if settings.embedding_dedup and work.after_minhash:
        if encoder is None:
            raise ValueError("embedding_dedup is on but no encoder was given")
        hub, work.hub_ids = read_hub_vectors(session)
        work.hub = hub
        if (hub.centroids is None and settings.ivf_min_hub
                and len(hub.vectors) >= settings.ivf_min_hub):
            work.trained = hub.centroids = train_centroids(hub.vectors, settings.ivf_nlist,
                                                           settings.seed)
            hub.lists = assign_lists(hub.vectors, hub.centroids)
        outcome.index = "ivf" if hub.centroids is not None else "exact"
        outcome.seconds["read_vectors"] = time.perf_counter() - clock
        clock = time.perf_counter()
        visible = _encode_visible(work, settings, encoder, outcome)
        outcome.seconds["encode"] = time.perf_counter() - clock
        clock = time.perf_counter()
        _embedding_drops(work, visible, settings, outcome)
    outcome.kept = len(work.kept)
    outcome.seconds["embedding"] = time.perf_counter() - clock


def _encode_visible(work: BatchWork, settings: HubSettings, encoder: Encoder,
                    outcome: BatchOutcome) -> list[int]:
    """Encode the MinHash survivors the encoder can see; returns their places in
    ``after_minhash``."""
    candidates = [work.texts[work.survivors[k]] for k in work.after_minhash]
    # Evidence only where the encoder can see: texts it cannot represent are neither
    # dropped nor stored as vectors, so they never cause a drop either.
    coverage = encoder_coverage(encoder, candidates)
    visible = [j for j in range(len(candidates)) if coverage[j] >= settings.min_coverage]
    outcome.unseen = len(candidates) - len(visible)
    work.new_vectors = (normalize(encoder.encode([candidates[j] for j in visible]))
                        if visible else None)
    return visible


def _embedding_drops(work: BatchWork, visible: list[int], settings: HubSettings,
                     outcome: BatchOutcome) -> None:
    """Drop the visible survivors whose embedding matches an earlier hub or batch persona;
    keep the vectors of the rest."""
    ids, survivors, after_minhash = work.ids, work.survivors, work.after_minhash
    emb = (embedding_decisions(work.new_vectors, work.hub, settings.embedding_threshold,
                               settings.ivf_nprobe) if visible else [])
    gone = set()
    for i, dup, sim in emb:
        j = visible[i]
        gone.add(j)
        k = after_minhash[j]
        work.stage[k] = "embedding"
        dup_id = (work.hub_ids[-dup - 1] if dup < 0
                  else ids[survivors[after_minhash[visible[dup]]]])
        work.drop(survivors[k], "embedding", dup_id, round(sim, 4))
    outcome.embedding = len(emb)
    work.kept = [after_minhash[j] for j in range(len(after_minhash)) if j not in gone]
    vector_rows = [i for i, j in enumerate(visible) if j not in gone]
    work.vector_kept = [after_minhash[visible[i]] for i in vector_rows]
    if work.new_vectors is not None:
        work.new_vectors = work.new_vectors[vector_rows]


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


def rebuild(session: Session, settings: HubSettings, encoder: Encoder | None,
            on_batch: Callable[[BatchOutcome], None] | None = None,
            ready: Callable[[str], bool] | None = None) -> list[BatchOutcome]:
    """Clear the hub and replay every registered batch in sequence order."""
    clear_hub_state(session)
    outcomes, _ = curate_pending(session, settings, encoder, ready=ready, on_batch=on_batch)
    return outcomes


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
    seq, before = locate_batch(session, batch)
    deleted = delete_batch_rows(session, batch)
    replayed = clear_hub_state(session, from_seq=seq)
    curate_pending(session, settings, encoder, ready=ready)
    after, removed = remove_orphan_samples(session, seq)
    files = delete_export_files(exports_dir, batch)
    changed = changed_batches(before, after, replayed)
    return Retraction(batch=batch, seq=seq, rows_deleted=deleted, files_deleted=files,
                      replayed=[b for b in replayed if b != batch], changed_batches=changed,
                      personas_left=len(before - after), personas_admitted=len(after - before),
                      samples_removed=removed)
