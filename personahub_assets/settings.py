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
| PERSONAHUB_EXECUTOR | multiprocess | multiprocess (one machine), celery or k8s |
| PERSONAHUB_CELERY_BROKER | (none) | Celery broker URL, e.g. redis://host:6379/0 (celery) |
| PERSONAHUB_CELERY_BACKEND | the broker | Celery result backend URL (celery) |
| PERSONAHUB_FAULT_INJECT | (none) | tests only: a named fault point kills its process |

This module is the only one that reads or writes the process environment (one exception, in
``lib/ingest/cleaning.py``, sets a library's thread count in a fresh worker process before the
library is imported). API keys are never read here: only whether they are set, so that the
resources can name them as Dagster ``EnvVar``s, which Dagster resolves at run time.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

LLM_API_KEY_ENV = "PERSONAHUB_LLM_API_KEY"
EMBEDDINGS_API_KEY_ENV = "PERSONAHUB_EMBEDDINGS_API_KEY"
JUDGE_API_KEY_ENV = "PERSONAHUB_JUDGE_API_KEY"
EXECUTOR_ENV = "PERSONAHUB_EXECUTOR"
BROKER_ENV = "PERSONAHUB_CELERY_BROKER"
BACKEND_ENV = "PERSONAHUB_CELERY_BACKEND"
FAULT_ENV = "PERSONAHUB_FAULT_INJECT"
STATIC_MODEL_ENV = "PERSONAHUB_STATIC_MODEL_DIR"


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
    embeddings_model_dir: str = ""
    embeddings_languages: str = ""
    executor: str = "multiprocess"
    celery_broker: str = ""
    celery_backend: str = ""
    #: The environment variables holding API keys that are set (their names, never values).
    api_keys_set: frozenset[str] = frozenset()
    #: Settings given explicitly in the environment (field names), as opposed to defaults.
    explicit: frozenset[str] = field(default=frozenset(), compare=False)

    def with_overrides(self, **changes) -> Settings:
        """These settings with some fields changed (the demo's limits, a test's folders)."""
        return dataclasses.replace(self, **changes)

    def api_key_env(self, *names: str) -> str:
        """The first of the named key variables that is set, or "" when none is."""
        return next((n for n in names if n in self.api_keys_set), "")

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
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``env`` (the process environment by default)."""
        env = os.environ if env is None else env
        data_dir = Path(env.get("PERSONAHUB_DATA_DIR", "data"))
        ints = {name: _int_env(env, var, default, minimum)
                for name, var, default, minimum in (
            ("batch_records", "PERSONAHUB_BATCH_RECORDS", 1000, 1),
            ("max_documents", "PERSONAHUB_MAX_DOCUMENTS", 0, 0),
            ("hops", "PERSONAHUB_HOPS", 1, 0),
            ("max_personas", "PERSONAHUB_MAX_PERSONAS", 0, 0),
            ("max_retries", "PERSONAHUB_MAX_RETRIES", 2, 0),
            ("judge_max_samples", "PERSONAHUB_JUDGE_MAX_SAMPLES", 0, 0))}
        explicit = frozenset(name for name, var in _FIELD_ENV.items() if env.get(var))
        broker = env.get(BROKER_ENV, "")
        return cls(
            data_dir=data_dir,
            **ints,
            explicit=explicit,
            api_keys_set=frozenset(k for k in (LLM_API_KEY_ENV, EMBEDDINGS_API_KEY_ENV,
                                               JUDGE_API_KEY_ENV) if env.get(k)),
            embeddings_model_dir=env.get("PERSONAHUB_EMBEDDINGS_MODEL_DIR", ""),
            embeddings_languages=env.get("PERSONAHUB_EMBEDDINGS_LANGUAGES", ""),
            executor=env.get(EXECUTOR_ENV, "multiprocess") or "multiprocess",
            celery_broker=broker,
            celery_backend=env.get(BACKEND_ENV, "") or broker,
            llm_backend=env.get("PERSONAHUB_LLM_BACKEND", "llamacpp"),
            llm_model=env.get("PERSONAHUB_LLM_MODEL", ""),
            prompt_style=env.get("PERSONAHUB_PROMPT_STYLE", "completion"),
            llm_base_url=env.get("PERSONAHUB_LLM_BASE_URL", ""),
            templates_dir=Path(env.get("PERSONAHUB_TEMPLATES_DIR", "templates")),
            embeddings=env.get("PERSONAHUB_EMBEDDINGS", "static"),
            embeddings_base_url=env.get("PERSONAHUB_EMBEDDINGS_BASE_URL", ""),
            embeddings_model=env.get("PERSONAHUB_EMBEDDINGS_MODEL", ""),
            warehouse_catalog=env.get("PERSONAHUB_WAREHOUSE_CATALOG", ""),
            warehouse_data_path=env.get("PERSONAHUB_WAREHOUSE_DATA_PATH",
                                               str(data_dir / "lake")),
            cache_catalog=env.get("PERSONAHUB_LLM_CACHE_CATALOG",
                                         env.get("PERSONAHUB_WAREHOUSE_CATALOG", "")),
            judge_backend=env.get("PERSONAHUB_JUDGE_BACKEND", ""),
            judge_model=env.get("PERSONAHUB_JUDGE_MODEL", ""),
            judge_prompt_style=env.get("PERSONAHUB_JUDGE_PROMPT_STYLE", ""),
            judge_base_url=env.get("PERSONAHUB_JUDGE_BASE_URL", ""),
            dataset_license=env.get("PERSONAHUB_DATASET_LICENSE", "cc-by-nc-sa-4.0"),
            attributes_method=env.get("PERSONAHUB_ATTRIBUTES_METHOD", "model"),
        )


#: The environment variable of each setting that can be given explicitly.
_FIELD_ENV = {"max_documents": "PERSONAHUB_MAX_DOCUMENTS", "hops": "PERSONAHUB_HOPS",
              "max_personas": "PERSONAHUB_MAX_PERSONAS",
              "judge_max_samples": "PERSONAHUB_JUDGE_MAX_SAMPLES",
              "attributes_method": "PERSONAHUB_ATTRIBUTES_METHOD"}


def _int_env(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = env.get(name, "")
    try:
        value = int(raw) if raw else default
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def fault_point_armed(name: str) -> bool:
    """Whether the environment asks for a fault at ``name`` (read at each call: the
    reliability tests arm it in a child process)."""
    return os.environ.get(FAULT_ENV) == name


def static_model_dir() -> Path:
    """Where the distilled static persona encoder lives: ``PERSONAHUB_STATIC_MODEL_DIR``, or a
    folder in the user's cache (``XDG_CACHE_HOME``, else ``~/.cache``)."""
    override = os.environ.get(STATIC_MODEL_ENV)
    if override:
        return Path(override)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "personahub-assets" / "models" / "minilm-static"


def use_offline_hub() -> None:
    """Make Hugging Face libraries use only local files (the distillation command)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


SETTINGS = Settings.from_env()
