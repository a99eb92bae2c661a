"""The code location: every asset, check, job and resource of the pipeline."""

from dagster import Definitions, EnvVar

from personahub_assets.assets.dataset_export import dataset_export
from personahub_assets.assets.imported_personas import imported_personas
from personahub_assets.assets.instruction_responses import instruction_responses
from personahub_assets.assets.math_verification import math_verification
from personahub_assets.assets.persona_attributes import persona_attributes
from personahub_assets.assets.persona_hub import persona_hub
from personahub_assets.assets.relation_personas import relation_personas
from personahub_assets.assets.sample_quality import sample_quality
from personahub_assets.assets.synthetic_data import synthetic_data
from personahub_assets.assets.text_personas import text_personas
from personahub_assets.assets.web_documents import web_documents
from personahub_assets.automation import JOBS, SCHEDULES, SENSORS
from personahub_assets.cluster import executor_for
from personahub_assets.hub_jobs import HUB_JOBS
from personahub_assets.maintenance import warehouse_maintenance, warehouse_maintenance_schedule
from personahub_assets.resources.embeddings import EmbeddingsResource
from personahub_assets.resources.llm import LLMResource
from personahub_assets.resources.warehouse import WarehouseResource
from personahub_assets.settings import (
    EMBEDDINGS_API_KEY_ENV,
    JUDGE_API_KEY_ENV,
    LLM_API_KEY_ENV,
    SETTINGS,
    Settings,
)

ASSETS = [web_documents, text_personas, relation_personas, imported_personas, persona_hub,
          synthetic_data, math_verification, dataset_export,
          persona_attributes, instruction_responses, sample_quality]


def _key(settings: Settings, *names: str) -> EnvVar | str:
    """The first of the named key variables that is set, as an EnvVar: Dagster resolves it at
    run time and never shows or stores its value. "" when none is set."""
    name = settings.api_key_env(*names)
    return EnvVar(name) if name else ""


def judge_resource(settings: Settings) -> LLMResource:
    """The judge's own inference resource: each PERSONAHUB_JUDGE_* setting falls back to the
    generator's, so by default the judge is the generator's model, with the same (shared,
    in cluster mode) response cache."""
    return LLMResource(
        backend=settings.judge_backend or settings.llm_backend,
        model=settings.judge_model or ("" if settings.judge_backend else settings.llm_model),
        prompt_style=settings.judge_prompt_style or settings.prompt_style,
        cache_path=str(settings.cache_path),
        cache_catalog=settings.cache_catalog,
        base_url=settings.judge_base_url or settings.llm_base_url,
        api_key=_key(settings, JUDGE_API_KEY_ENV, LLM_API_KEY_ENV),
    )


def build_resources(settings: Settings) -> dict:
    """The warehouse, the inference (generator and judge) and the embedding resources for
    these settings."""
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
            api_key=_key(settings, LLM_API_KEY_ENV),
        ),
        "judge_llm": judge_resource(settings),
        "embeddings": EmbeddingsResource(
            encoder=settings.embeddings,
            base_url=settings.embeddings_base_url,
            model=settings.embeddings_model,
            model_dir=settings.embeddings_model_dir,
            languages=settings.embeddings_languages,
            api_key=_key(settings, EMBEDDINGS_API_KEY_ENV),
        ),
    }


defs = Definitions(assets=ASSETS, jobs=[*JOBS, *HUB_JOBS, warehouse_maintenance],
                   schedules=[*SCHEDULES, warehouse_maintenance_schedule], sensors=SENSORS,
                   resources=build_resources(SETTINGS), executor=executor_for(SETTINGS))
