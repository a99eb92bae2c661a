"""The Celery app of cluster workers (dagster-celery's tasks, our broker from the environment).

    celery -A personahub_assets.celery_app worker -Q dagster   # CPU steps
    celery -A personahub_assets.celery_app worker -Q gpu       # model steps (GPU machines)

Unlike ``dagster-celery worker start``, which writes the broker URL into a file under
DAGSTER_HOME, this reads it (password included) from ``PERSONAHUB_CELERY_BROKER`` only.
"""

from __future__ import annotations

from dagster_celery.executor import CeleryExecutor
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

from personahub_assets.settings import BROKER_ENV, SETTINGS

_broker = SETTINGS.celery_broker
if not _broker:
    raise RuntimeError(f"set {BROKER_ENV} (e.g. redis://host:6379/0) for a Celery worker")

app = make_app(CeleryExecutor.for_cli(
    broker=_broker, backend=SETTINGS.celery_backend,
    # One step at a time per worker process: a step may hold a model in memory.
    config_source={"worker_prefetch_multiplier": 1},
).app_args())

execute_plan = create_task(app)
