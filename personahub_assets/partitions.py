"""Shard and domain partitions."""

from dagster import MultiPartitionsDefinition, StaticPartitionsDefinition

from personahub_assets.prompts import DOMAINS
from personahub_assets.settings import SETTINGS

shard_partitions = StaticPartitionsDefinition([str(i) for i in range(SETTINGS.num_shards)])
domain_partitions = StaticPartitionsDefinition(list(DOMAINS))
domain_shard_partitions = MultiPartitionsDefinition(
    {"domain": domain_partitions, "shard": shard_partitions}
)
