"""The jobs a data engineer launches: ingest what is new, and train one target end to end."""

import dagster as dg

from pipeline.defs.partitions import target_partitions

ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=dg.AssetSelection.assets("raw_interactions"),
    description="Read what is new in the interaction source; quarantine what breaks the contract.",
)

#: what follows a trained model runs by declarative automation (`evaluate_and_promote`), not in this job
FOLLOWS_TRAINING = dg.AssetSelection.assets("evaluated_model").downstream()

train_target_job = dg.define_asset_job(
    "train_target_job",
    selection=dg.AssetSelection.assets("scored_examples").downstream() - FOLLOWS_TRAINING,
    partitions_def=target_partitions,
    description="Score, anonymize and gate one target's data, build its training files, then train or submit its "
                "model; evaluation and promotion follow by automation.",
)

record_fine_tune_job_run = dg.define_asset_job(
    "record_fine_tune_job_run",
    selection=dg.AssetSelection.assets("fine_tune_job"),
    partitions_def=target_partitions,
    description="Re-attach to a target's finished hosted job and judge fine_tune_job_succeeded on it (the job-status "
                "sensor launches it; it never submits a job again).",
)

evaluate_and_promote_job = dg.define_asset_job(
    "evaluate_and_promote_job",
    selection=FOLLOWS_TRAINING,
    partitions_def=target_partitions,
    description="Judge a target's newest trained model and promote it if every gate passes (what automation does "
                "after a job; launch it by hand to judge again).",
)
