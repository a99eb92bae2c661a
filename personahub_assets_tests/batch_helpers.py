"""Test helpers: register data as batches, in the warehouse and the Dagster instance."""

from __future__ import annotations

from pathlib import Path

from personahub_assets.automation import register_incoming, register_source
from personahub_assets.lib.ingest.batching import DOCUMENTS, BatchSpec, FilePart
from personahub_assets.partitions import BATCHES
from personahub_assets.resources.warehouse import WarehouseResource


def add_partitions(instance, keys: list[str]) -> list[str]:
    known = set(instance.get_dynamic_partitions(BATCHES))
    new = [k for k in keys if k not in known]
    if new:
        instance.add_dynamic_partitions(BATCHES, new)
    return keys


def register(warehouse: WarehouseResource, instance, source: str | Path,
             kind: str = DOCUMENTS, max_records: int | None = None) -> list[str]:
    """Register a file (sliced by ``max_records``) or a folder (as the incoming folder) as
    batches, and add their partitions; returns their keys in sequence order."""
    source = Path(source)
    if source.is_dir():
        registered = register_incoming(warehouse, source, max_records)
    else:
        registered = register_source(warehouse, str(source), kind, max_records)
    return add_partitions(instance, [b.key for b in registered])


def empty_batch(warehouse: WarehouseResource, instance, name: str = "hub",
                kind: str = "personas") -> str:
    """A registered batch that holds no file, for tests that write its rows directly."""
    spec = BatchSpec(kind, (FilePart(f"test:{name}", name),), 0)
    [batch] = warehouse.register_batches([spec])
    add_partitions(instance, [batch.key])
    return batch.key
