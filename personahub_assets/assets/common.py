"""What every asset shares: the batch it runs on and the table metadata the catalog shows."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from dagster import AssetExecutionContext, TableColumn, TableSchema

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
