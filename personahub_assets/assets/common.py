"""What every asset shares: the batch it runs on, the table metadata the catalog shows, and
the ``MaterializeResult`` an asset returns."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    MaterializeResult,
    TableColumn,
    TableSchema,
)

from personahub_assets.lib.common.tables import TABLES
from personahub_assets.lib.ingest.batching import BatchSpec
from personahub_assets.resources.warehouse import WarehouseResource

_TYPE_NAMES = {pa.string(): "string", pa.int32(): "int", pa.int64(): "bigint",
               pa.float64(): "double", pa.bool_(): "boolean"}


def table_schema(table: str) -> TableSchema:
    """The Dagster column schema of a warehouse table, from its one Arrow definition."""
    return TableSchema(columns=[TableColumn(f.name, _TYPE_NAMES.get(f.type, str(f.type)))
                                for f in TABLES[table]])


def table_metadata(table: str, row_count: int) -> dict[str, Any]:
    """Row count, column schema and table name, in the keys the Dagster catalog reads."""
    return {"dagster/row_count": row_count, "dagster/column_schema": table_schema(table),
            "dagster/table_name": table}


def batch_of(context: AssetExecutionContext, warehouse: WarehouseResource
             ) -> tuple[str, BatchSpec, int]:
    """(key, spec, sequence number) of the batch this partition holds."""
    key = context.partition_key
    spec, seq = warehouse.batch(key)
    return key, spec, seq


def materialize_result(stats: Mapping[str, Any] | Any, *, table: str | None = None,
                       row_count: int | None = None,
                       checks: Sequence[AssetCheckResult] = ()) -> MaterializeResult:
    """What an asset returns: the catalog's table metadata (``dagster/row_count``,
    ``dagster/column_schema``, ``dagster/table_name``) when it names its table, or the row
    count alone, then its stats (a mapping or a dataclass, in their order), and its checks."""
    if dataclasses.is_dataclass(stats) and not isinstance(stats, type):
        stats = {f.name: getattr(stats, f.name) for f in dataclasses.fields(stats)}
    if table is not None:
        metadata = table_metadata(table, row_count)
    else:
        metadata = {} if row_count is None else {"dagster/row_count": row_count}
    return MaterializeResult(metadata={**metadata, **stats}, check_results=list(checks))


def check_result(name: str, passed: bool, metadata: Mapping[str, Any], *, warn: bool = False,
                 asset_key: str | None = None) -> AssetCheckResult:
    """A check's result: an error when it fails, or a warning where ``warn``."""
    return AssetCheckResult(
        check_name=name, passed=passed, metadata=dict(metadata), asset_key=asset_key,
        severity=AssetCheckSeverity.WARN if warn else AssetCheckSeverity.ERROR)
