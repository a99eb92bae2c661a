"""Jobs: one per stage, so each can be launched, scheduled and backfilled on its own."""

from dagster import AssetSelection, define_asset_job

ingest_job = define_asset_job(
    "ingest_job",
    selection=AssetSelection.assets("web_documents", "text_personas", "relation_personas"),
    description="Ingest a shard of documents and create its personas.",
)
curation_job = define_asset_job(
    "curation_job", selection=AssetSelection.assets("persona_hub"),
    description="Deduplicate every shard's personas into the persona hub.",
)
synthesis_job = define_asset_job(
    "synthesis_job", selection=AssetSelection.assets("synthetic_data"),
    description="Write synthetic samples for one domain x shard partition.",
)
verification_job = define_asset_job(
    "verification_job", selection=AssetSelection.assets("math_verification"),
    description="Verify the math problems of one shard by majority vote of k solvers.",
)
export_job = define_asset_job(
    "export_job", selection=AssetSelection.assets("dataset_export"),
    description="Export the valid samples of one domain.",
)

JOBS = [ingest_job, curation_job, synthesis_job, verification_job, export_job]
