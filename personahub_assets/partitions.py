"""Batch and domain partitions.

A batch is a unit of added data (a source file, a slice of one, a group of small files, or a
persona set); its key is registered at run time, so the partitions say which data they hold.
"""

from dagster import (
    DynamicPartitionsDefinition,
    MultiPartitionsDefinition,
    StaticPartitionsDefinition,
)

from personahub_assets.prompts import DOMAINS

BATCHES = "batches"

batch_partitions = DynamicPartitionsDefinition(name=BATCHES)
domain_partitions = StaticPartitionsDefinition(list(DOMAINS))
domain_batch_partitions = MultiPartitionsDefinition(
    {"batch": batch_partitions, "domain": domain_partitions}
)
