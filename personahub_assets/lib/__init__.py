"""Pure logic of the pipeline: plain Python over plain data, no Dagster import."""
