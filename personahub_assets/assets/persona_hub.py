"""Curation: personas -> the deduplicated ``persona_hub``, one batch at a time, in sequence
order, against the hub's persisted dedup state (``personahub_assets.lib.curation.hub``).

Stages, each logged per dropped persona in ``persona_dedup_log``: filters (length, PII-only,
refusals, boilerplate, not a persona), exact duplicates, MinHash near-duplicates (Jaccard on
word 1-grams) and embedding near-duplicates (cosine on sentence embeddings).
"""


from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field

from personahub_assets import previews
from personahub_assets.assets.common import check_result, materialize_result
from personahub_assets.automation import batch_condition, materialized_partitions
from personahub_assets.cluster import HUB_POOL
from personahub_assets.lib.curation import hub
from personahub_assets.lib.curation import queries as hub_queries
from personahub_assets.lib.curation.minhash import band_recall
from personahub_assets.lib.export import plots
from personahub_assets.lib.personas.pii_audit import audit_pii
from personahub_assets.partitions import batch_partitions
from personahub_assets.resources.embeddings import EmbeddingsResource
from personahub_assets.resources.warehouse import WarehouseResource

#: The assets whose partitions of a batch must exist before the hub curates that batch.
PERSONA_ASSETS = ("text_personas", "relation_personas", "imported_personas")


class HubConfig(Config):
    """Dedup settings (the paper: MinHash on 1-grams, 128 permutations, 0.9; embeddings 0.9).

    They are recorded in the hub's ledger; changing them takes a rebuild (the rebuild_hub
    job), so that every batch of the hub is decided by the same rule.
    """

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
    ivf_min_hub: int = Field(
        default=100_000, description="Exact embedding search until the hub holds this many "
        "personas; then IVF centroids are trained once on the hub and frozen (0: always "
        "exact).")
    ivf_nlist: int = Field(default=1024, description="IVF lists (centroids).")
    ivf_nprobe: int = Field(default=16, description="IVF lists probed per persona.")
    check_sample: int = Field(default=2_000, description="Hub personas in the consistent "
                              "sample checked by exact all-pairs Jaccard.")
    embedding_check_sample: int = Field(default=256, description="Hub vectors compared with "
                                        "the whole hub by exact cosine in the check.")

    def settings(self, encoder: str) -> hub.HubSettings:
        return hub.HubSettings(
            minhash_threshold=self.minhash_threshold, min_words=self.min_words,
            max_words=self.max_words, num_perm=self.num_perm, bands=self.bands,
            rows=self.rows, embedding_dedup=self.embedding_dedup,
            embedding_threshold=self.embedding_threshold,
            encoder=encoder if self.embedding_dedup else "", ivf_min_hub=self.ivf_min_hub,
            ivf_nlist=self.ivf_nlist, ivf_nprobe=self.ivf_nprobe)


def persona_readiness(instance, current: str):
    """``ready(batch)``: the batch's persona partitions are materialized in this instance.

    An asset of which the instance knows no partition at all (personas written to the
    warehouse outside Dagster) does not hold batches back.
    """
    done = {name: materialized_partitions(instance, AssetKey(name))
            for name in PERSONA_ASSETS}

    def ready(batch: str) -> bool:
        return batch == current or all(not keys or batch in keys for keys in done.values())

    return ready


@asset(
    partitions_def=batch_partitions,
    deps=list(PERSONA_ASSETS),
    automation_condition=batch_condition(),
    pool=HUB_POOL,
    group_name="curation",
    kinds={"duckdb", "python"},
    check_specs=[
        AssetCheckSpec("hub_accounted", asset="persona_hub", blocking=True,
                       partitions_def=batch_partitions,
                       description="Per batch: personas in the batch = hub rows + dedup log "
                       "rows, and both match the ledger's figures."),
        AssetCheckSpec("hub_unique_ids", asset="persona_hub", blocking=True,
                       partitions_def=batch_partitions,
                       description="No persona appears twice in the hub."),
        AssetCheckSpec("hub_no_near_duplicates", asset="persona_hub", blocking=True,
                       partitions_def=batch_partitions,
                       description="Exact all-pairs Jaccard on a consistent sample of the hub "
                       "(near-duplicates are sampled together) finds no pair at the "
                       "threshold."),
        AssetCheckSpec("hub_no_pii", asset="persona_hub", blocking=True,
                       partitions_def=batch_partitions,
                       description="A second PII detector (other patterns and a card "
                       "checksum) finds nothing in the batches curated by this run."),
        AssetCheckSpec("hub_no_embedding_near_duplicates", asset="persona_hub",
                       partitions_def=batch_partitions,
                       description="A sample of hub vectors against every hub vector by exact "
                       "cosine: pairs at the threshold (IVF may miss some)."),
    ],
)
def persona_hub(
    context: AssetExecutionContext, config: HubConfig, warehouse: WarehouseResource,
    embeddings: EmbeddingsResource,
) -> MaterializeResult:
    """The deduplicated persona hub, curated incrementally.

    A run for batch B curates every registered batch not yet in the hub's ledger with a
    sequence number up to B's, in sequence order, one transaction per batch, against the
    persisted state of the batches before it. Survivors are decided by sequence, then
    imported before text before relation personas, shallower before deeper, then by persona
    ID. Every dropped persona goes to ``persona_dedup_log`` with the persona it duplicates.
    """
    batch = context.partition_key
    _, seq = warehouse.batch(batch)
    settings = config.settings(embeddings.describe())
    encoder = embeddings.build() if settings.embedding_dedup else None
    try:
        outcomes, blocked = hub.curate_pending(
            warehouse.session, settings, encoder, upto_seq=seq,
            ready=persona_readiness(context.instance, batch),
            on_batch=lambda outcome: context.log.info(_outcome_line(outcome)))
    except hub.HubStateError as exc:
        raise Failure(str(exc)) from exc
    row = hub_queries.ledger_entry(warehouse.rows, batch)
    if row is None:
        raise Failure(f"batch {batch} (seq {seq}) waits for batch {blocked[0]} (seq "
                      f"{blocked[1]}), whose personas are not materialized yet: the hub "
                      f"curates batches in sequence order. Materialize that batch's personas; "
                      f"automation then runs this partition again.")
    curated = [o.batch for o in outcomes]
    with warehouse.reader() as rows:  # the asset's own reads share one session
        hub_rows = hub_queries.hub_size(rows)
        audited = hub_queries.personas_of_batches(rows, curated or [batch])
        preview = hub_queries.hub_preview(rows, batch)
        dropped = hub_queries.dedup_log_preview(rows, batch)
    sample = hub.consistent_sample(warehouse.session, config.check_sample)
    emb = (hub.sample_embedding_pairs(warehouse.session, settings.embedding_threshold,
                                      config.embedding_check_sample)
           if settings.embedding_dedup else {"checked": 0, "pairs": 0})
    checks = _hub_checks(hub.ledger_accounting(warehouse.session), hub_rows, sample,
                         hub.pairs_at_or_above([text for _, text in sample],
                                               settings.minhash_threshold), audited, emb)
    stats = {
        "batch_seq": seq,
        "curated_by_this_run": curated,
        **_ledger_stats(row, outcomes, batch),
        "hub_size": hub_rows["n"],
        "embedding_index": hub.ivf_recall_note(settings),
        **({"embedding_encoder": embeddings.describe()} if settings.embedding_dedup else {}),
        **{f"seconds_{k}": round(sum(o.seconds.get(k, 0.0) for o in outcomes), 3)
           for k in ("filters", "minhash", "read_vectors", "encode", "embedding", "write")},
        "dedup_funnel": MetadataValue.md(plots.svg_markdown(plots.funnel_svg(
            _funnel(row), title=f"Persona dedup funnel, batch {batch}"), "dedup funnel")),
        "lsh_recall_at_threshold": round(
            band_recall(settings.minhash_threshold, settings.bands, settings.rows), 6),
        "preview": previews.table(preview, ["persona_id", "method", "depth", "persona"]),
        "dedup_log_preview": previews.table(
            dropped, ["stage", "similarity", "persona", "duplicate_of"]),
        "languages": previews.table(
            hub.language_funnel(warehouse.session, batch),
            ["language", "in", "filtered", "exact", "minhash", "embedding", "kept",
             "drop_rate"]),
    }
    return materialize_result(stats, table="persona_hub", row_count=hub_rows["n"],
                              checks=checks)


def _outcome_line(outcome: hub.BatchOutcome) -> str:
    """The log line of one curated batch."""
    return (f"persona_hub: batch {outcome.batch} (seq {outcome.seq}, {outcome.index} index): "
            f"{outcome.personas_in} in, {outcome.filtered} filtered, {outcome.exact} exact, "
            f"{outcome.minhash} MinHash, {outcome.embedding} embedding, {outcome.kept} kept, "
            f"{outcome.unseen} left to MinHash (the encoder cannot represent them); "
            + ", ".join(f"{k} {v:.2f}s" for k, v in outcome.seconds.items()))


def _ledger_stats(row: dict[str, Any], outcomes: list[hub.BatchOutcome], batch: str
                  ) -> dict[str, Any]:
    """The batch's figures from its ledger row, in the metadata's names."""
    return {
        "personas_in": row["personas_in"],
        "filtered": row["filtered"],
        "exact_duplicates": row["exact"],
        "near_duplicates": row["minhash"],
        "embedding_near_duplicates": row["embedding"],
        "embedding_unseen_personas": sum(o.unseen for o in outcomes if o.batch == batch),
        "kept": row["kept"],
    }


def _funnel(row: dict[str, Any]) -> list[tuple[str, int]]:
    """Personas left after each stage of the batch's curation."""
    return [("personas_in", row["personas_in"]),
            ("after_filters", row["personas_in"] - row["filtered"]),
            ("after_exact", row["personas_in"] - row["filtered"] - row["exact"]),
            ("after_minhash", row["kept"] + row["embedding"]), ("after_embedding", row["kept"])]


def _hub_checks(unaccounted: list[dict], hub_rows: dict[str, int], sample: list[tuple[str, str]],
                pairs: list[tuple[int, int, float]], audited: list[dict[str, Any]],
                emb: dict[str, int]) -> list[AssetCheckResult]:
    """The hub's five checks, from the recounted ledger, the hub's size and distinct IDs, the
    sample's near-duplicate pairs, the curated personas and the embedding sample."""
    leaks = [(r["persona_id"], kinds) for r in audited if (kinds := audit_pii(r["persona"]))]
    return [
        check_result("hub_accounted", not unaccounted,
                     {"batches_not_adding_up": len(unaccounted), "first": str(unaccounted[:3])}),
        check_result("hub_unique_ids", hub_rows["n"] == hub_rows["ids"],
                     {"rows": hub_rows["n"], "distinct_ids": hub_rows["ids"]}),
        check_result("hub_no_near_duplicates", not pairs,
                     {"sample": len(sample), "pairs_above_threshold": len(pairs),
                      "first": str([(sample[i][0], sample[j][0], round(s, 3))
                                    for i, j, s in pairs[:3]])}),
        check_result("hub_no_pii", not leaks,
                     {"audited": len(audited), "pii_leaks": len(leaks), "first": str(leaks[:3])}),
        check_result("hub_no_embedding_near_duplicates", not emb["pairs"],
                     {"sample": emb["checked"], "pairs_above_threshold": emb["pairs"]},
                     warn=True),
    ]
