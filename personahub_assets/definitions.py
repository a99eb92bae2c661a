"""The code location: every asset, check, job and resource of the pipeline."""

import os

from dagster import Definitions, EnvVar

from personahub_assets.assets.attributes import persona_attributes
from personahub_assets.assets.curation import persona_hub
from personahub_assets.assets.export import dataset_export
from personahub_assets.assets.imports import imported_personas
from personahub_assets.assets.ingestion import web_documents
from personahub_assets.assets.judge import sample_quality
from personahub_assets.assets.personas import relation_personas, text_personas
from personahub_assets.assets.responses import instruction_responses
from personahub_assets.assets.synthesis import synthetic_data
from personahub_assets.assets.verification import math_verification
from personahub_assets.automation import JOBS, SCHEDULES, SENSORS
from personahub_assets.cluster import executor_from_env
from personahub_assets.hub_jobs import HUB_JOBS
from personahub_assets.maintenance import warehouse_maintenance, warehouse_maintenance_schedule
from personahub_assets.resources.embeddings import EmbeddingsResource
from personahub_assets.resources.llm import LLMResource
from personahub_assets.resources.warehouse import WarehouseResource
from personahub_assets.settings import SETTINGS, Settings

ASSETS = [web_documents, text_personas, relation_personas, imported_personas, persona_hub,
          synthetic_data, math_verification, dataset_export,
          persona_attributes, instruction_responses, sample_quality]


API_KEY_ENV = "PERSONAHUB_LLM_API_KEY"
EMBEDDINGS_KEY_ENV = "PERSONAHUB_EMBEDDINGS_API_KEY"


def build_resources(settings: Settings) -> dict:
    """The warehouse, the inference and the embedding resources for these settings."""
    return {
        "warehouse": WarehouseResource(path=str(settings.warehouse_path),
                                       catalog=settings.warehouse_catalog,
                                       data_path=settings.warehouse_data_path),
        "llm": LLMResource(
            backend=settings.llm_backend,
            model=settings.llm_model,
            prompt_style=settings.prompt_style,
            cache_path=str(settings.cache_path),
            cache_catalog=settings.cache_catalog,
            base_url=settings.llm_base_url,
            # The key only ever travels as an EnvVar: Dagster resolves it at run time and
            # never shows or stores its value.
            api_key=EnvVar(API_KEY_ENV) if os.environ.get(API_KEY_ENV) else "",
        ),
        "embeddings": EmbeddingsResource(
            encoder=settings.embeddings,
            base_url=settings.embeddings_base_url,
            model=settings.embeddings_model,
            model_dir=os.environ.get("PERSONAHUB_EMBEDDINGS_MODEL_DIR", ""),
            languages=os.environ.get("PERSONAHUB_EMBEDDINGS_LANGUAGES", ""),
            api_key=EnvVar(EMBEDDINGS_KEY_ENV) if os.environ.get(EMBEDDINGS_KEY_ENV) else "",
        ),
    }


defs = Definitions(assets=ASSETS, jobs=[*JOBS, *HUB_JOBS, warehouse_maintenance],
                   schedules=[*SCHEDULES, warehouse_maintenance_schedule], sensors=SENSORS,
                   resources=build_resources(SETTINGS), executor=executor_from_env())
