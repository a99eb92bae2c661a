"""Deployment settings read from the environment once, with defaults for the embedded demo.

| variable | default | meaning |
|---|---|---|
| PERSONAHUB_DATA_DIR | data | warehouse, cache and exports live here |
| PERSONAHUB_BATCH_RECORDS | 1000 | records per batch: larger files are sliced, small ones grouped |
| PERSONAHUB_MAX_DOCUMENTS | 0 | documents per batch given to Text-to-Persona (0 = all) |
| PERSONAHUB_HOPS | 1 | Persona-to-Persona hops (the paper uses up to six) |
| PERSONAHUB_MAX_PERSONAS | 0 | personas per synthesis partition (0 = all) |
| PERSONAHUB_MAX_RETRIES | 2 | automatic re-executions of a failed automated run |
| PERSONAHUB_LLM_BACKEND | llamacpp | llamacpp, openai or vllm |
| PERSONAHUB_LLM_MODEL | (packaged Gemma 3 270M) | GGUF path or model name |
| PERSONAHUB_PROMPT_STYLE | completion | completion (base models) or chat (instruct models) |
| PERSONAHUB_LLM_BASE_URL | (none) | base URL of an OpenAI-compatible server (openai backend) |
| PERSONAHUB_LLM_API_KEY | (none) | its API key, read through a Dagster EnvVar, never stored |
| PERSONAHUB_TEMPLATES_DIR | templates | domain template files: each adds a domain partition |
| PERSONAHUB_EMBEDDINGS | static | persona encoder for embedding dedup: static, minilm or openai |
| PERSONAHUB_EMBEDDINGS_BASE_URL | (none) | OpenAI-compatible server for encoder openai |
| PERSONAHUB_EMBEDDINGS_MODEL | (none) | its embedding model name |
| PERSONAHUB_EMBEDDINGS_API_KEY | (none) | its API key, only through a Dagster EnvVar |
| PERSONAHUB_WAREHOUSE_CATALOG | (none) | cluster: DuckLake catalog, libpq string (PGPASSWORD) |
| PERSONAHUB_WAREHOUSE_DATA_PATH | data/lake | cluster: the lake's Parquet (shared folder, s3://) |
| PERSONAHUB_LLM_CACHE_CATALOG | the catalog | cluster: Postgres of the shared response cache |
| PERSONAHUB_EMBEDDINGS_MODEL_DIR | (none) | local model folder (static or minilm encoder) |
| PERSONAHUB_EMBEDDINGS_LANGUAGES | (encoder's) | languages it knows, e.g. en,de; others: MinHash |
| PERSONAHUB_STATIC_MODEL_DIR | ~/.cache/personahub-assets/models/minilm-static | static model |
| PERSONAHUB_JUDGE_BACKEND | (the generator's) | backend of the judge model (resource judge_llm) |
| PERSONAHUB_JUDGE_MODEL | (the generator's) | the judge model: GGUF path or model name |
| PERSONAHUB_JUDGE_PROMPT_STYLE | (the generator's) | completion or chat |
| PERSONAHUB_JUDGE_BASE_URL | (the generator's) | OpenAI-compatible server of the judge |
| PERSONAHUB_JUDGE_API_KEY | (none) | its API key, only through a Dagster EnvVar |
| PERSONAHUB_DATASET_LICENSE | cc-by-nc-sa-4.0 | license written into each dataset card |
| PERSONAHUB_JUDGE_MAX_SAMPLES | 0 | valid samples the judge scores per partition (0 = all) |
| PERSONAHUB_ATTRIBUTES_METHOD | model | persona attributes: model (rules as fallback) or rules |
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    """Where data lives, how it is batched, the limits automated runs honour, and which model
    serves the pipeline."""

    data_dir: Path
    batch_records: int
    llm_backend: str
    llm_model: str
    prompt_style: str
    llm_base_url: str
    templates_dir: Path
    embeddings: str = "static"
    embeddings_base_url: str = ""
    embeddings_model: str = ""
    judge_backend: str = ""
    judge_model: str = ""
    judge_prompt_style: str = ""
    judge_base_url: str = ""
    dataset_license: str = "cc-by-nc-sa-4.0"
    attributes_method: str = "model"
    max_documents: int = 0
    hops: int = 1
    max_personas: int = 0
    max_retries: int = 2
    warehouse_catalog: str = ""
    warehouse_data_path: str = ""
    cache_catalog: str = ""
    judge_max_samples: int = 0

    @property
    def incoming_dir(self) -> Path:
        return self.data_dir / "incoming"

    @property
    def warehouse_path(self) -> Path:
        return self.data_dir / "warehouse.duckdb"

    @property
    def cache_path(self) -> Path:
        return self.data_dir / "llm_cache.duckdb"

    @property
    def exports_dir(self) -> Path:
        return self.data_dir / "exports"

    @classmethod
    def from_env(cls) -> Settings:
        data_dir = Path(os.environ.get("PERSONAHUB_DATA_DIR", "data"))
        ints = {name: _int_env(var, default, minimum) for name, var, default, minimum in (
            ("batch_records", "PERSONAHUB_BATCH_RECORDS", 1000, 1),
            ("max_documents", "PERSONAHUB_MAX_DOCUMENTS", 0, 0),
            ("hops", "PERSONAHUB_HOPS", 1, 0),
            ("max_personas", "PERSONAHUB_MAX_PERSONAS", 0, 0),
            ("max_retries", "PERSONAHUB_MAX_RETRIES", 2, 0),
            ("judge_max_samples", "PERSONAHUB_JUDGE_MAX_SAMPLES", 0, 0))}
        return cls(
            data_dir=data_dir,
            **ints,
            llm_backend=os.environ.get("PERSONAHUB_LLM_BACKEND", "llamacpp"),
            llm_model=os.environ.get("PERSONAHUB_LLM_MODEL", ""),
            prompt_style=os.environ.get("PERSONAHUB_PROMPT_STYLE", "completion"),
            llm_base_url=os.environ.get("PERSONAHUB_LLM_BASE_URL", ""),
            templates_dir=Path(os.environ.get("PERSONAHUB_TEMPLATES_DIR", "templates")),
            embeddings=os.environ.get("PERSONAHUB_EMBEDDINGS", "static"),
            embeddings_base_url=os.environ.get("PERSONAHUB_EMBEDDINGS_BASE_URL", ""),
            embeddings_model=os.environ.get("PERSONAHUB_EMBEDDINGS_MODEL", ""),
            warehouse_catalog=os.environ.get("PERSONAHUB_WAREHOUSE_CATALOG", ""),
            warehouse_data_path=os.environ.get("PERSONAHUB_WAREHOUSE_DATA_PATH",
                                               str(data_dir / "lake")),
            cache_catalog=os.environ.get("PERSONAHUB_LLM_CACHE_CATALOG",
                                         os.environ.get("PERSONAHUB_WAREHOUSE_CATALOG", "")),
            judge_backend=os.environ.get("PERSONAHUB_JUDGE_BACKEND", ""),
            judge_model=os.environ.get("PERSONAHUB_JUDGE_MODEL", ""),
            judge_prompt_style=os.environ.get("PERSONAHUB_JUDGE_PROMPT_STYLE", ""),
            judge_base_url=os.environ.get("PERSONAHUB_JUDGE_BASE_URL", ""),
            dataset_license=os.environ.get("PERSONAHUB_DATASET_LICENSE", "cc-by-nc-sa-4.0"),
            attributes_method=os.environ.get("PERSONAHUB_ATTRIBUTES_METHOD", "model"),
        )


def _int_env(name: str, default: int, minimum: int) -> int:
    raw = os.environ.get(name, "")
    try:
        value = int(raw) if raw else default
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


SETTINGS = Settings.from_env()
