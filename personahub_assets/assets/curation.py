"""Curation: personas -> a deduplicated ``persona_hub`` and its dedup log, by batch order.

Stages, each logged per dropped persona in ``persona_dedup_log``: filters (length, PII-only,
refusals, boilerplate, not a persona), exact duplicates, MinHash near-duplicates (Jaccard on
word 1-grams) and embedding near-duplicates (cosine on sentence embeddings).
"""

import time

import pyarrow as pa
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field

from personahub_assets.assets.common import table_metadata
from personahub_assets.automation import batch_condition
from personahub_assets.lib import markdown, plots
from personahub_assets.lib.embeddings import (
    embedding_near_duplicates,
    embedding_near_duplicates_where_seen,
    encoder_coverage,
)
from personahub_assets.lib.minhash import band_recall, near_duplicates
from personahub_assets.lib.pii import find_pii, redact
from personahub_assets.lib.tables import TABLES, to_arrow
from personahub_assets.lib.validation import hub_filter_reason
from personahub_assets.partitions import batch_partitions
from personahub_assets.resources.embeddings import EmbeddingsResource
from personahub_assets.resources.warehouse import QueryRows, WarehouseResource

_METHOD_ORDER = "CASE method WHEN 'import' THEN 0 WHEN 'text' THEN 1 ELSE 2 END"
# After the method: shallower first, then every other column, so the order is total and the
# survivor of a group of exact copies is the same row in Python and in SQL.
_TIE_ORDER = ("depth, persona_id, doc_id NULLS FIRST, parent_persona_id NULLS FIRST, "
              "batch, role NULLS FIRST, relation NULLS FIRST, template NULLS FIRST")
# Read before the decisions and checked again inside the write transaction.
_FINGERPRINT = ("SELECT count(*) AS n, coalesce(sum(hash(persona_id, method, batch, depth, "
                "doc_id, parent_persona_id)), 0) AS h FROM personas")


_SEQ = "(SELECT seq FROM batches b WHERE b.batch = personas.batch)"


def _hub_select() -> str:
    """The hub rows: the first row of each kept persona ID in decision order, copied in SQL."""
    names = [f'p."{column}"' for column in TABLES["persona_hub"].names]
    return (f"SELECT {', '.join(names)} FROM (SELECT *, row_number() OVER (PARTITION BY "
            f"persona_id ORDER BY {_SEQ}, {_METHOD_ORDER}, {_TIE_ORDER}) AS first_row "
            f"FROM personas) p JOIN kept k USING (persona_id) WHERE p.first_row = 1")


_HUB_FROM_PERSONAS = _hub_select()


class HubConfig(Config):
    """Dedup settings (the paper: MinHash on 1-grams, 128 permutations, 0.9; embeddings 0.9)."""

    minhash_threshold: float = Field(default=0.9, description="Jaccard at which to drop.")
    min_words: int = Field(default=4, description="Shorter personas are filtered out.")
    max_words: int = Field(default=80, description="Longer personas are filtered out.")
    num_perm: int = Field(default=128, description="MinHash permutations.")
    bands: int = Field(default=16, description="LSH bands (bands * rows <= num_perm).")
    rows: int = Field(default=8, description="Rows per LSH band.")
    embedding_dedup: bool = Field(default=True, description="Also drop embedding near-dups.")
    embedding_threshold: float = Field(
        default=0.9, description="Cosine at which to drop; the paper suggests 0.5 when "
        "diversity matters more than volume.")
    embedding_index: str = Field(
        default="auto", description="exact, ivf (approximate, about linear) or auto "
        "(exact up to 100,000 personas).")
    check_sample: int = Field(default=20_000, description="Hub personas re-checked for "
                              "remaining embedding near-duplicates.")


@asset(
    partitions_def=batch_partitions,
    deps=["text_personas", "relation_personas", "imported_personas"],
    automation_condition=batch_condition(),
    group_name="curation",
    kinds={"duckdb", "python"},
    check_specs=[
        AssetCheckSpec(
            "hub_accounted", asset="persona_hub",
            partitions_def=batch_partitions, blocking=True,
                       description="Personas in = personas in the hub + personas in the log."),
        AssetCheckSpec(
            "hub_unique_ids", asset="persona_hub",
            partitions_def=batch_partitions, blocking=True,
                       description="No persona appears twice in the hub."),
        AssetCheckSpec(
            "hub_no_near_duplicates", asset="persona_hub",
            partitions_def=batch_partitions, blocking=True,
                       description="No pair in the hub reaches the MinHash threshold."),
        AssetCheckSpec(
            "hub_no_pii", asset="persona_hub",
            partitions_def=batch_partitions, blocking=True,
                       description="No persona in the hub holds personal data."),
        AssetCheckSpec(
            "hub_no_embedding_near_duplicates", asset="persona_hub",
            partitions_def=batch_partitions,
                       description="No pair in a sample of the hub reaches the cosine "
                       "threshold (exact search)."),
    ],
)
def persona_hub(
    context: AssetExecutionContext, config: HubConfig, warehouse: WarehouseResource,
    embeddings: EmbeddingsResource,
) -> MaterializeResult:
    """The deduplicated persona hub: filters, exact dedup on normalized text, MinHash
    near-dedup, then embedding near-dedup.

    Survivors are chosen deterministically: earlier batches (by sequence number) first, then
    imported before text before relation personas, shallower before deeper, then by persona
    ID. Every dropped persona goes to
    ``persona_dedup_log`` with the persona it duplicates.
    """
    # Read before the rows: a change in between then fails the write's guard, never passes it.
    fingerprint = warehouse.rows(_FINGERPRINT)[0]
    # Only the four columns the decisions need come into Python, as columns, not row dicts;
    # the hub rows themselves are copied inside DuckDB from `personas`.
    columns = warehouse.arrow(
        f"SELECT persona_id, persona, method, batch FROM personas "
        f"ORDER BY {_SEQ}, {_METHOD_ORDER}, {_TIE_ORDER}").to_pydict()
    ids, texts = columns["persona_id"], columns["persona"]
    methods, batches = columns["method"], columns["batch"]
    del columns
    total = len(ids)

    log: list[dict] = []

    def drop(i: int, stage: str, duplicate_of: str | None, similarity: float | None,
             text: str | None = None) -> None:
        log.append({"persona_id": ids[i], "persona": texts[i] if text is None else text,
                    "method": methods[i], "batch": batches[i], "stage": stage,
                    "duplicate_of": duplicate_of, "similarity": similarity})

    survivors: list[int] = []  # positions, in decision order
    seen: set[str] = set()
    filtered = 0
    for i in range(total):
        reason = hub_filter_reason(texts[i], config.min_words, config.max_words)
        if reason is not None:
            filtered += 1
            drop(i, f"filter:{reason}", None, None, text=redact(texts[i]))
        elif ids[i] in seen:
            drop(i, "exact", ids[i], 1.0)
        else:
            seen.add(ids[i])
            survivors.append(i)
    del seen
    context.log.info(f"persona_hub: {total} personas read, {filtered} filtered, "
                     f"{total - filtered - len(survivors)} exact duplicates")
    dropped = near_duplicates([texts[i] for i in survivors], config.minhash_threshold,
                              config.num_perm, config.bands, config.rows)
    for d in dropped:
        drop(survivors[d.index], "minhash", ids[survivors[d.duplicate_of]],
             round(d.similarity, 4))
    dropped_idx = {d.index for d in dropped}
    after_minhash = [pos for k, pos in enumerate(survivors) if k not in dropped_idx]
    del dropped_idx
    context.log.info(f"persona_hub: {len(dropped)} MinHash near duplicates "
                     f"(Jaccard >= {config.minhash_threshold})")
    embedding_stats: dict = {"embedding_near_duplicates": 0}
    kept = after_minhash
    kept_vectors = None
    if config.embedding_dedup and after_minhash:
        encoder = embeddings.build()
        started = time.perf_counter()
        vectors = encoder.encode([texts[i] for i in after_minhash])
        encoded = time.perf_counter()
        # Only where the encoder sees the text: others are never dropped by similarity.
        split = embedding_near_duplicates_where_seen(
            vectors, encoder_coverage(encoder, [texts[i] for i in after_minhash]),
            config.embedding_threshold, index=config.embedding_index, assume_normalized=True)
        emb_dropped, unseen = split.duplicates, set(split.unseen)
        finished = time.perf_counter()
        for d in emb_dropped:
            drop(after_minhash[d.index], "embedding", ids[after_minhash[d.duplicate_of]],
                 round(d.similarity, 4))
        emb_idx = {d.index for d in emb_dropped}
        kept_rows = [k for k in range(len(after_minhash)) if k not in emb_idx]
        kept = [after_minhash[k] for k in kept_rows]
        kept_vectors = vectors[[k for k in kept_rows if k not in unseen]]
        del vectors
        embedding_stats = {
            "embedding_near_duplicates": len(emb_dropped),
            "embedding_unseen_personas": len(unseen),  # kept out of the embedding stage
            "embedding_encoder": embeddings.describe(),
            "embedding_seconds": round(finished - started, 3),
            "embedding_personas_per_second": round(len(after_minhash) / (encoded - started), 1)
            if encoded > started else 0.0,
        }
        context.log.info(f"embedding dedup ({embeddings.describe()}, cosine >= "
                         f"{config.embedding_threshold}): {len(after_minhash)} personas encoded "
                         f"in {encoded - started:.1f} s, {len(emb_dropped)} dropped in "
                         f"{finished - encoded:.1f} s; {len(unseen)} the encoder cannot see "
                         "(MinHash only)")
    kept_table = pa.table({"persona_id": pa.array([ids[i] for i in kept], pa.string())})
    warehouse.replace_partitions([
        ("persona_hub", {}, QueryRows(_HUB_FROM_PERSONAS, {"kept": kept_table})),
        ("persona_dedup_log", {}, to_arrow("persona_dedup_log", log)),
    ], guards=[(_FINGERPRINT, fingerprint,
                "the personas table changed while persona_hub was curating it; "
                "materialize persona_hub again")])
    del kept_table

    stored = warehouse.rows("SELECT count(*) AS n, count(DISTINCT persona_id) AS ids "
                            "FROM persona_hub")[0]
    logged = warehouse.scalar("SELECT count(*) FROM persona_dedup_log")
    hub_texts = [texts[i] for i in kept]
    remaining = near_duplicates(hub_texts, config.minhash_threshold,
                                config.num_perm, config.bands, config.rows)
    exact = sum(1 for e in log if e["stage"] == "exact")
    remaining_emb = _embedding_pairs_left(kept_vectors, config)
    funnel = {"personas_in": total, "after_filters": total - filtered,
              "after_exact": len(survivors), "after_minhash": len(after_minhash),
              "after_embedding": len(kept)}
    pii_leaks = sum(1 for text in hub_texts if find_pii(text))
    per_batch = {str(r["batch"]): r["n"] for r in warehouse.rows(
        "SELECT batch, count(*) AS n FROM persona_hub GROUP BY batch ORDER BY batch")}
    preview = warehouse.rows("SELECT persona_id, method, depth, persona FROM persona_hub "
                             "ORDER BY persona_id LIMIT 10")
    context.log.info(f"persona_hub: {total} in, {filtered} filtered, {exact} exact, "
                     f"{len(dropped)} MinHash and {embedding_stats['embedding_near_duplicates']} "
                     f"embedding near duplicates dropped, {len(kept)} kept")
    return MaterializeResult(
        metadata={
            **table_metadata("persona_hub", stored["n"]),
            "personas_in": total,
            "filtered": filtered,
            "exact_duplicates": exact,
            "near_duplicates": len(dropped),
            **embedding_stats,
            "hub_size": len(kept),
            "dedup_ratio": round(1 - len(kept) / total, 4) if total else 0.0,
            **{f"drop_ratio_{stage}": _ratio(funnel[before], funnel[after])
               for stage, before, after in _FUNNEL_STEPS},
            "dedup_funnel": MetadataValue.md(plots.svg_markdown(plots.funnel_svg(
                list(funnel.items()), title="Persona dedup funnel"), "dedup funnel")),
            "persona_length_histogram": MetadataValue.md(plots.svg_markdown(
                plots.histogram_svg([len(text.split()) for text in hub_texts],
                                    title="Hub persona length", x_label="words"),
                "persona length histogram")),
            "lsh_recall_at_threshold": round(
                band_recall(config.minhash_threshold, config.bands, config.rows), 6),
            "personas_per_batch": per_batch,
            "preview": MetadataValue.md(markdown.table(preview, ["persona_id", "method",
                                                                 "depth", "persona"])),
            "dedup_log_preview": MetadataValue.md(markdown.table(
                log[:10], ["stage", "similarity", "persona", "duplicate_of"])),
        },
        check_results=[
            AssetCheckResult(check_name="hub_accounted",
                             passed=total == stored["n"] + logged,
                             severity=AssetCheckSeverity.ERROR,
                             metadata={"in": total, "hub": stored["n"], "log": logged}),
            AssetCheckResult(check_name="hub_unique_ids", passed=stored["n"] == stored["ids"],
                             severity=AssetCheckSeverity.ERROR,
                             metadata={"rows": stored["n"], "distinct_ids": stored["ids"]}),
            AssetCheckResult(check_name="hub_no_near_duplicates", passed=not remaining,
                             severity=AssetCheckSeverity.ERROR,
                             metadata={"pairs_above_threshold": len(remaining)}),
            AssetCheckResult(check_name="hub_no_embedding_near_duplicates",
                             passed=not remaining_emb, severity=AssetCheckSeverity.WARN,
                             metadata={"pairs_above_threshold": len(remaining_emb),
                                       "sample": min(len(kept), config.check_sample),
                                       "checked": kept_vectors is not None}),
            AssetCheckResult(check_name="hub_no_pii", passed=pii_leaks == 0,
                             severity=AssetCheckSeverity.ERROR,
                             metadata={"pii_leaks": pii_leaks}),
        ],
    )


_FUNNEL_STEPS = [("filters", "personas_in", "after_filters"),
                 ("exact", "after_filters", "after_exact"),
                 ("minhash", "after_exact", "after_minhash"),
                 ("embedding", "after_minhash", "after_embedding")]


def _ratio(before: int, after: int) -> float:
    """Share of a stage's input that it dropped."""
    return round(1 - after / before, 4) if before else 0.0


def _embedding_pairs_left(vectors, config: HubConfig) -> list:
    """Pairs at or above the cosine threshold left in (a sample of) the hub, searched exactly.

    Reuses the embeddings of the dedup stage, so a paid embeddings API is not called twice.
    """
    if vectors is None or not len(vectors):
        return []
    step = max(1, -(-len(vectors) // config.check_sample))
    return embedding_near_duplicates(vectors[::step], config.embedding_threshold,
                                     index="exact", assume_normalized=True)
