"""The jobs a data engineer launches: ingest what is new, and train one target end to end."""

import dagster as dg

from pipeline.defs.partitions import target_partitions

ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=dg.AssetSelection.assets("raw_interactions"),
    description="Read what is new in the interaction source; quarantine what breaks the contract.",
)

train_target_job = dg.define_asset_job(
    "train_target_job",
    selection=dg.AssetSelection.assets("scored_examples").downstream(),
    partitions_def=target_partitions,
    description="Score, anonymize and gate one target's data, build its training files, then train or submit its model.",
)
