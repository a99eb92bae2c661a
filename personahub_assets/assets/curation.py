"""Curation: personas -> the deduplicated ``persona_hub``, one batch at a time, in sequence
order, against the hub's persisted dedup state (``personahub_assets.lib.curation.hub``).

Stages, each logged per dropped persona in ``persona_dedup_log``: filters (length, PII-only,
refusals, boilerplate, not a persona), exact duplicates, MinHash near-duplicates (Jaccard on
word 1-grams) and embedding near-duplicates (cosine on sentence embeddings).
"""


from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
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
from personahub_assets.assets.common import table_metadata
from personahub_assets.automation import batch_condition, materialized_partitions
from personahub_assets.cluster import HUB_POOL
from personahub_assets.lib.curation import hub
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

    def log(outcome: hub.BatchOutcome) -> None:
        context.log.info(
            f"persona_hub: batch {outcome.batch} (seq {outcome.seq}, {outcome.index} index): "
            f"{outcome.personas_in} in, {outcome.filtered} filtered, {outcome.exact} exact, "
            f"{outcome.minhash} MinHash, {outcome.embedding} embedding, {outcome.kept} kept, "
            f"{outcome.unseen} left to MinHash (the encoder cannot represent them); "
            + ", ".join(f"{k} {v:.2f}s" for k, v in outcome.seconds.items()))

    try:
        outcomes, blocked = hub.curate_pending(
            warehouse.session, settings, encoder, upto_seq=seq,
            ready=persona_readiness(context.instance, batch), on_batch=log)
    except hub.HubStateError as exc:
        raise Failure(str(exc)) from exc
    ledger = warehouse.rows("SELECT * FROM hub_ledger WHERE batch = ?", [batch])
    if not ledger:
        raise Failure(f"batch {batch} (seq {seq}) waits for batch {blocked[0]} (seq "
                      f"{blocked[1]}), whose personas are not materialized yet: the hub "
                      f"curates batches in sequence order. Materialize that batch's personas; "
                      f"automation then runs this partition again.")
    row = ledger[0]
    curated = [o.batch for o in outcomes]

    hub_rows = warehouse.rows("SELECT count(*) AS n, count(DISTINCT persona_id) AS ids "
                              "FROM persona_hub")[0]
    unaccounted = hub.ledger_accounting(warehouse.session)
    sample = hub.consistent_sample(warehouse.session, config.check_sample)
    pairs = hub.pairs_at_or_above([text for _, text in sample], settings.minhash_threshold)
    audited = warehouse.rows("SELECT persona_id, persona FROM persona_hub WHERE batch IN "
                             "(SELECT unnest(?::VARCHAR[]))", [curated or [batch]])
    leaks = [(r["persona_id"], kinds) for r in audited if (kinds := audit_pii(r["persona"]))]
    emb = (hub.sample_embedding_pairs(warehouse.session, settings.embedding_threshold,
                                      config.embedding_check_sample)
           if settings.embedding_dedup else {"checked": 0, "pairs": 0})
    preview = warehouse.rows("SELECT persona_id, method, depth, persona FROM persona_hub "
                             "WHERE batch = ? ORDER BY persona_id LIMIT 10", [batch])
    dropped = warehouse.rows("SELECT stage, similarity, persona, duplicate_of FROM "
                             "persona_dedup_log WHERE batch = ? ORDER BY stage, persona_id "
                             "LIMIT 10", [batch])
    funnel = [("personas_in", row["personas_in"]),
              ("after_filters", row["personas_in"] - row["filtered"]),
              ("after_exact", row["personas_in"] - row["filtered"] - row["exact"]),
              ("after_minhash", row["kept"] + row["embedding"]), ("after_embedding", row["kept"])]
    seconds = {f"seconds_{k}": round(sum(o.seconds.get(k, 0.0) for o in outcomes), 3)
               for k in ("filters", "minhash", "read_vectors", "encode", "embedding", "write")}
    return MaterializeResult(
        metadata={
            **table_metadata("persona_hub", hub_rows["n"]),
            "batch_seq": seq,
            "curated_by_this_run": curated,
            "personas_in": row["personas_in"],
            "filtered": row["filtered"],
            "exact_duplicates": row["exact"],
            "near_duplicates": row["minhash"],
            "embedding_near_duplicates": row["embedding"],
            "embedding_unseen_personas": sum(o.unseen for o in outcomes if o.batch == batch),
            "kept": row["kept"],
            "hub_size": hub_rows["n"],
            "embedding_index": hub.ivf_recall_note(settings),
            **({"embedding_encoder": embeddings.describe()} if settings.embedding_dedup
               else {}),
            **seconds,
            "dedup_funnel": MetadataValue.md(plots.svg_markdown(plots.funnel_svg(
                funnel, title=f"Persona dedup funnel, batch {batch}"), "dedup funnel")),
            "lsh_recall_at_threshold": round(
                band_recall(settings.minhash_threshold, settings.bands, settings.rows), 6),
            "preview": previews.table(preview, ["persona_id", "method", "depth", "persona"]),
            "dedup_log_preview": previews.table(
                dropped, ["stage", "similarity", "persona", "duplicate_of"]),
            "languages": previews.table(
                hub.language_funnel(warehouse.session, batch),
                ["language", "in", "filtered", "exact", "minhash", "embedding", "kept",
                 "drop_rate"]),
        },
        check_results=[
            AssetCheckResult(check_name="hub_accounted", passed=not unaccounted,
                             severity=AssetCheckSeverity.ERROR,
                             metadata={"batches_not_adding_up": len(unaccounted),
                                       "first": str(unaccounted[:3])}),
            AssetCheckResult(check_name="hub_unique_ids",
                             passed=hub_rows["n"] == hub_rows["ids"],
                             severity=AssetCheckSeverity.ERROR,
                             metadata={"rows": hub_rows["n"], "distinct_ids": hub_rows["ids"]}),
            AssetCheckResult(check_name="hub_no_near_duplicates", passed=not pairs,
                             severity=AssetCheckSeverity.ERROR,
                             metadata={"sample": len(sample), "pairs_above_threshold":
                                       len(pairs), "first": str([
                                           (sample[i][0], sample[j][0], round(s, 3))
                                           for i, j, s in pairs[:3]])}),
            AssetCheckResult(check_name="hub_no_pii", passed=not leaks,
                             severity=AssetCheckSeverity.ERROR,
                             metadata={"audited": len(audited), "pii_leaks": len(leaks),
                                       "first": str(leaks[:3])}),
            AssetCheckResult(check_name="hub_no_embedding_near_duplicates",
                             passed=not emb["pairs"], severity=AssetCheckSeverity.WARN,
                             metadata={"sample": emb["checked"],
                                       "pairs_above_threshold": emb["pairs"]}),
        ],
    )
