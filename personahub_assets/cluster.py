"""Cluster mode, chosen by configuration alone: how steps execute, and where model steps go.

| variable | default | meaning |
|---|---|---|
| PERSONAHUB_EXECUTOR | multiprocess | multiprocess (one machine), celery or k8s |
| PERSONAHUB_CELERY_BROKER | (none) | Celery broker URL, e.g. redis://host:6379/0 (celery) |
| PERSONAHUB_CELERY_BACKEND | the broker | Celery result backend URL (celery) |

Model steps carry three routings at once; each engine reads only its own: the Celery queue
``gpu`` (start GPU workers with ``-q gpu``), a ``dagster-k8s/config`` that asks Kubernetes for a
GPU, and the concurrency pool ``gpu`` (the instance limits how many run at once).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from personahub_assets.settings import BACKEND_ENV, BROKER_ENV, EXECUTOR_ENV, Settings

EXECUTORS = ("multiprocess", "celery", "k8s")

#: Dagster concurrency pool of the steps that call a model (``concurrency.pools`` limits it).
GPU_POOL = "gpu"
#: The pool of persona curation: runs of persona_hub are serialized by its one slot.
HUB_POOL = "persona_hub"
#: Every pool a step of the code location claims a slot in, and the limit it gets where it has
#: none yet (None: the instance's ``concurrency.pools.default_limit``).
POOL_LIMITS: dict[str, int | None] = {GPU_POOL: None, HUB_POOL: 1}
#: Celery queue of those steps; every other step goes to Dagster's default queue.
GPU_QUEUE = "gpu"
CELERY_QUEUE_TAG = "dagster-celery/queue"
K8S_CONFIG_TAG = "dagster-k8s/config"

#: What a model step's pod asks Kubernetes for: one GPU, on a node that carries GPUs.
GPU_POD_CONFIG: dict[str, Any] = {
    "container_config": {
        "resources": {
            "requests": {"cpu": "4", "memory": "32Gi", "nvidia.com/gpu": "1"},
            "limits": {"memory": "48Gi", "nvidia.com/gpu": "1"},
        },
    },
    "pod_spec_config": {
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists",
                         "effect": "NoSchedule"}],
        "node_selector": {"personahub/gpu": "true"},
    },
}

#: ``op_tags`` of every asset that calls a model.
MODEL_STEP_TAGS: dict[str, Any] = {CELERY_QUEUE_TAG: GPU_QUEUE, K8S_CONFIG_TAG: GPU_POD_CONFIG}


def executor_for(settings: Settings):
    """The executor the settings name (``PERSONAHUB_EXECUTOR``); None keeps Dagster's default
    (multiprocess on this machine). Dagster reads the broker URLs from the environment at run
    time (``{"env": ...}`` config), so they never enter the run's config."""
    kind = settings.executor
    if kind not in EXECUTORS:
        raise ValueError(f"{EXECUTOR_ENV}={kind!r}; choose one of {EXECUTORS}")
    if kind == "multiprocess":
        return None
    if kind == "celery":
        from dagster_celery import celery_executor

        if not settings.celery_broker:
            raise ValueError(f"{EXECUTOR_ENV}=celery needs {BROKER_ENV} (e.g. redis://host:6379/0)")
        backend = BACKEND_ENV if settings.celery_backend != settings.celery_broker else BROKER_ENV
        return celery_executor.configured(
            {"broker": {"env": BROKER_ENV}, "backend": {"env": backend}}, name="celery")
    from dagster_k8s import k8s_job_executor

    return k8s_job_executor


def ensure_pools(instance, limits: Mapping[str, int | None] = POOL_LIMITS) -> dict[str, int]:
    """Write a limit for each pool that has none yet, before runs start: ``limits`` gives it,
    or the instance's default where that is None. Returns the limits written.

    Dagster writes a pool's default limit lazily, when a step first claims a slot in it. Two
    runs that claim at once on a fresh Postgres instance race on that insert, and the loser's
    run fails with a unique-key violation on ``concurrency_limits``: on Postgres the failed
    insert aborts the transaction its fallback update runs in (so in Dagster 1.13.27; the
    upstream fix is dagster-io/dagster pull request 33890). Writing the limits from one
    process before any run starts removes the race. A limit already there (an operator's
    ``dagster instance concurrency set gpu N``) is left as it is. An instance without pool
    limits (no ``concurrency.pools.default_limit``, the local default) is not touched.
    """
    storage = instance.event_log_storage
    default = instance.global_op_concurrency_default_limit
    if default is None or not storage.supports_global_concurrency_limits:
        return {}
    known = {limit.name for limit in storage.get_pool_limits()}
    written = {}
    for pool, limit in limits.items():
        if pool in known:
            continue
        if limit is None:
            storage.initialize_concurrency_limit_to_default(pool)
        else:
            storage.set_concurrency_slots(pool, limit)
        written[pool] = default if limit is None else limit
    return written
