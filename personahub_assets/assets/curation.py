"""Curation: all shards' personas -> a deduplicated ``persona_hub`` and its dedup log.

Stages, each logged per dropped persona in ``persona_dedup_log``: filters (length, PII-only,
refusals, boilerplate, not a persona), exact duplicates, MinHash near-duplicates (Jaccard on
word 1-grams) and embedding near-duplicates (cosine on sentence embeddings).
"""

import time

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

from personahub_assets.lib import markdown, plots
from personahub_assets.lib.embeddings import embedding_near_duplicates
from personahub_assets.lib.ids import shard_of
from personahub_assets.lib.minhash import band_recall, near_duplicates
from personahub_assets.lib.pii import find_pii, redact
from personahub_assets.lib.tables import TABLES, to_arrow
from personahub_assets.lib.validation import hub_filter_reason
from personahub_assets.resources.embeddings import EmbeddingsResource
from personahub_assets.resources.warehouse import WarehouseResource
from personahub_assets.settings import SETTINGS

_METHOD_ORDER = "CASE method WHEN 'import' THEN 0 WHEN 'text' THEN 1 ELSE 2 END"


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
    deps=["text_personas", "relation_personas", "imported_personas"],
    group_name="curation",
    kinds={"duckdb", "python"},
    check_specs=[
        AssetCheckSpec("hub_accounted", asset="persona_hub", blocking=True,
                       description="Personas in = personas in the hub + personas in the log."),
        AssetCheckSpec("hub_unique_ids", asset="persona_hub", blocking=True,
                       description="No persona appears twice in the hub."),
        AssetCheckSpec("hub_no_near_duplicates", asset="persona_hub", blocking=True,
                       description="No pair in the hub reaches the MinHash threshold."),
        AssetCheckSpec("hub_no_pii", asset="persona_hub", blocking=True,
                       description="No persona in the hub holds personal data."),
        AssetCheckSpec("hub_no_embedding_near_duplicates", asset="persona_hub",
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

    Survivors are chosen deterministically: imported before text before relation personas,
    shallower before deeper, then by persona ID. Every dropped persona goes to
    ``persona_dedup_log`` with the persona it duplicates.
    """
    hub_cols = [c for c in TABLES["persona_hub"].names if c not in ("shard", "source_shard")]
    personas = warehouse.rows(
        f"SELECT {', '.join(hub_cols)}, shard AS source_shard FROM personas "
        f"ORDER BY {_METHOD_ORDER}, depth, persona_id, doc_id, parent_persona_id NULLS FIRST")
    survivors, log, first = [], [], {}
    filtered = 0
    for p in personas:
        reason = hub_filter_reason(p["persona"], config.min_words, config.max_words)
        if reason is not None:
            filtered += 1
            log.append({"persona_id": p["persona_id"], "persona": redact(p["persona"]),
                        "method": p["method"], "source_shard": p["source_shard"],
                        "stage": f"filter:{reason}", "duplicate_of": None, "similarity": None})
            continue
        if p["persona_id"] in first:
            log.append({"persona_id": p["persona_id"], "persona": p["persona"],
                        "method": p["method"], "source_shard": p["source_shard"],
                        "stage": "exact", "duplicate_of": first[p["persona_id"]],
                        "similarity": 1.0})
        else:
            first[p["persona_id"]] = p["persona_id"]
            survivors.append(p)
    dropped = near_duplicates([p["persona"] for p in survivors], config.minhash_threshold,
                              config.num_perm, config.bands, config.rows)
    dropped_idx = {d.index for d in dropped}
    for d in dropped:
        p = survivors[d.index]
        log.append({"persona_id": p["persona_id"], "persona": p["persona"], "method": p["method"],
                    "source_shard": p["source_shard"], "stage": "minhash",
                    "duplicate_of": survivors[d.duplicate_of]["persona_id"],
                    "similarity": round(d.similarity, 4)})
    after_minhash = [p for i, p in enumerate(survivors) if i not in dropped_idx]
    embedding_stats: dict = {"embedding_near_duplicates": 0}
    kept = after_minhash
    kept_vectors = None
    if config.embedding_dedup and after_minhash:
        encoder = embeddings.build()
        started = time.perf_counter()
        vectors = encoder.encode([p["persona"] for p in after_minhash])
        encoded = time.perf_counter()
        emb_dropped = embedding_near_duplicates(vectors, config.embedding_threshold,
                                                index=config.embedding_index,
                                                assume_normalized=True)
        finished = time.perf_counter()
        for d in emb_dropped:
            p = after_minhash[d.index]
            log.append({"persona_id": p["persona_id"], "persona": p["persona"],
                        "method": p["method"], "source_shard": p["source_shard"],
                        "stage": "embedding",
                        "duplicate_of": after_minhash[d.duplicate_of]["persona_id"],
                        "similarity": round(d.similarity, 4)})
        emb_idx = {d.index for d in emb_dropped}
        kept_rows = [i for i in range(len(after_minhash)) if i not in emb_idx]
        kept = [after_minhash[i] for i in kept_rows]
        kept_vectors = vectors[kept_rows]
        embedding_stats = {
            "embedding_near_duplicates": len(emb_dropped),
            "embedding_encoder": embeddings.describe(),
            "embedding_seconds": round(finished - started, 3),
            "embedding_personas_per_second": round(len(after_minhash) / (encoded - started), 1)
            if encoded > started else 0.0,
        }
        context.log.info(f"embedding dedup ({embeddings.describe()}, cosine >= "
                         f"{config.embedding_threshold}): {len(after_minhash)} personas encoded "
                         f"in {encoded - started:.1f} s, {len(emb_dropped)} dropped in "
                         f"{finished - encoded:.1f} s")
    hub = [{**p, "shard": shard_of(p["persona_id"], SETTINGS.num_shards)} for p in kept]
    warehouse.replace_partitions([
        ("persona_hub", {}, to_arrow("persona_hub", hub)),
        ("persona_dedup_log", {}, to_arrow("persona_dedup_log", log)),
    ])

    stored = warehouse.rows("SELECT count(*) AS n, count(DISTINCT persona_id) AS ids "
                            "FROM persona_hub")[0]
    logged = warehouse.scalar("SELECT count(*) FROM persona_dedup_log")
    remaining = near_duplicates([p["persona"] for p in hub], config.minhash_threshold,
                                config.num_perm, config.bands, config.rows)
    exact = sum(1 for e in log if e["stage"] == "exact")
    remaining_emb = _embedding_pairs_left(kept_vectors, config)
    funnel = {"personas_in": len(personas), "after_filters": len(personas) - filtered,
              "after_exact": len(survivors), "after_minhash": len(after_minhash),
              "after_embedding": len(hub)}
    pii_leaks = sum(1 for p in hub if find_pii(p["persona"]))
    per_shard = {str(s): sum(1 for p in hub if p["shard"] == s)
                 for s in range(SETTINGS.num_shards)}
    context.log.info(f"persona_hub: {len(personas)} in, {filtered} filtered, {exact} exact, "
                     f"{len(dropped)} MinHash and {embedding_stats['embedding_near_duplicates']} "
                     f"embedding near duplicates dropped, {len(hub)} kept")
    return MaterializeResult(
        metadata={
            "personas_in": len(personas),
            "filtered": filtered,
            "exact_duplicates": exact,
            "near_duplicates": len(dropped),
            **embedding_stats,
            "hub_size": len(hub),
            "dedup_ratio": round(1 - len(hub) / len(personas), 4) if personas else 0.0,
            **{f"drop_ratio_{stage}": _ratio(funnel[before], funnel[after])
               for stage, before, after in _FUNNEL_STEPS},
            "dedup_funnel": MetadataValue.md(plots.svg_markdown(plots.funnel_svg(
                list(funnel.items()), title="Persona dedup funnel"), "dedup funnel")),
            "persona_length_histogram": MetadataValue.md(plots.svg_markdown(
                plots.histogram_svg([len(p["persona"].split()) for p in hub],
                                    title="Hub persona length", x_label="words"),
                "persona length histogram")),
            "lsh_recall_at_threshold": round(
                band_recall(config.minhash_threshold, config.bands, config.rows), 6),
            "personas_per_shard": per_shard,
            "preview": MetadataValue.md(markdown.table(hub[:10], ["persona_id", "method",
                                                                  "depth", "persona"])),
            "dedup_log_preview": MetadataValue.md(markdown.table(
                log[:10], ["stage", "similarity", "persona", "duplicate_of"])),
        },
        check_results=[
            AssetCheckResult(check_name="hub_accounted",
                             passed=len(personas) == stored["n"] + logged,
                             severity=AssetCheckSeverity.ERROR,
                             metadata={"in": len(personas), "hub": stored["n"], "log": logged}),
            AssetCheckResult(check_name="hub_unique_ids", passed=stored["n"] == stored["ids"],
                             severity=AssetCheckSeverity.ERROR,
                             metadata={"rows": stored["n"], "distinct_ids": stored["ids"]}),
            AssetCheckResult(check_name="hub_no_near_duplicates", passed=not remaining,
                             severity=AssetCheckSeverity.ERROR,
                             metadata={"pairs_above_threshold": len(remaining)}),
            AssetCheckResult(check_name="hub_no_embedding_near_duplicates",
                             passed=not remaining_emb, severity=AssetCheckSeverity.WARN,
                             metadata={"pairs_above_threshold": len(remaining_emb),
                                       "sample": min(len(hub), config.check_sample),
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
