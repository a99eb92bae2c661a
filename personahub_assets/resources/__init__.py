"""Dagster resources: the DuckDB warehouse and the inference resource."""
