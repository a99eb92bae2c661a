"""Curation: all shards' personas -> a deduplicated ``persona_hub`` and its dedup log."""

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

from personahub_assets.lib import markdown
from personahub_assets.lib.ids import shard_of
from personahub_assets.lib.minhash import band_recall, near_duplicates
from personahub_assets.lib.pii import find_pii, redact
from personahub_assets.lib.tables import TABLES, to_arrow
from personahub_assets.lib.validation import hub_filter_reason
from personahub_assets.resources.warehouse import WarehouseResource
from personahub_assets.settings import SETTINGS

_METHOD_ORDER = "CASE method WHEN 'import' THEN 0 WHEN 'text' THEN 1 ELSE 2 END"


class HubConfig(Config):
    """MinHash near-duplicate settings (the paper: 1-grams, 128 permutations, 0.9)."""

    minhash_threshold: float = Field(default=0.9, description="Jaccard at which to drop.")
    min_words: int = Field(default=4, description="Shorter personas are filtered out.")
    max_words: int = Field(default=80, description="Longer personas are filtered out.")
    num_perm: int = Field(default=128, description="MinHash permutations.")
    bands: int = Field(default=16, description="LSH bands (bands * rows <= num_perm).")
    rows: int = Field(default=8, description="Rows per LSH band.")


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
    ],
)
def persona_hub(
    context: AssetExecutionContext, config: HubConfig, warehouse: WarehouseResource
) -> MaterializeResult:
    """The deduplicated persona hub: exact dedup on normalized text, then MinHash near-dedup.

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
    hub = [{**p, "shard": shard_of(p["persona_id"], SETTINGS.num_shards)}
           for i, p in enumerate(survivors) if i not in dropped_idx]
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
    pii_leaks = sum(1 for p in hub if find_pii(p["persona"]))
    per_shard = {str(s): sum(1 for p in hub if p["shard"] == s)
                 for s in range(SETTINGS.num_shards)}
    context.log.info(f"persona_hub: {len(personas)} in, {filtered} filtered, {exact} exact and "
                     f"{len(dropped)} near duplicates dropped, {len(hub)} kept")
    return MaterializeResult(
        metadata={
            "personas_in": len(personas),
            "filtered": filtered,
            "exact_duplicates": exact,
            "near_duplicates": len(dropped),
            "hub_size": len(hub),
            "dedup_ratio": round(1 - len(hub) / len(personas), 4) if personas else 0.0,
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
            AssetCheckResult(check_name="hub_no_pii", passed=pii_leaks == 0,
                             severity=AssetCheckSeverity.ERROR,
                             metadata={"pii_leaks": pii_leaks}),
        ],
    )
