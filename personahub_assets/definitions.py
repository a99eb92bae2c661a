"""The code location: every asset, check, job and resource of the pipeline."""

from dagster import Definitions

from personahub_assets.assets.curation import persona_hub
from personahub_assets.assets.export import dataset_export
from personahub_assets.assets.ingestion import web_documents
from personahub_assets.assets.personas import relation_personas, text_personas
from personahub_assets.assets.synthesis import synthetic_data
from personahub_assets.automation import JOBS
from personahub_assets.resources.llm import LLMResource
from personahub_assets.resources.warehouse import WarehouseResource
from personahub_assets.settings import SETTINGS, Settings

ASSETS = [web_documents, text_personas, relation_personas, persona_hub, synthetic_data,
          dataset_export]


def build_resources(settings: Settings) -> dict:
    """The warehouse and the inference resource for these settings."""
    return {
        "warehouse": WarehouseResource(path=str(settings.warehouse_path)),
        "llm": LLMResource(
            backend=settings.llm_backend,
            model=settings.llm_model,
            prompt_style=settings.prompt_style,
            cache_path=str(settings.cache_path),
        ),
    }


defs = Definitions(assets=ASSETS, jobs=JOBS, resources=build_resources(SETTINGS))
