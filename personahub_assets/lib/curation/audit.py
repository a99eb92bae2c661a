"""Checks of the hub from independent evidence, and what it decided per language.

The checks do not trust the ledger or the index: the ledger's accounting is recounted from the
tables, near-duplicates left in the hub are looked for in a consistent sample by exact
Jaccard, and a sample of hub vectors is compared with every hub vector by plain products.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from personahub_assets.lib.common.transactions import fetch_dicts
from personahub_assets.lib.curation.hub_decisions import HubSettings
from personahub_assets.lib.curation.hub_state import Session, vectors_of
from personahub_assets.lib.curation.shingles import jaccard, word_set


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
    vectors = vectors_of(table["vector"]).astype(np.float64)
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
