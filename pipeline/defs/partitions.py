"""Assets from `scored_examples` on are partitioned by training target: Dagster dynamic partitions `training_targets`.

The set grows and shrinks with the tenants: a fixed target is one key (`page_builder`), each
qualifying tenant of a family is one key `<family>/<org_id>` (`avatar_chat/avatar_luna`).
`sync_target_partitions` (in `target_partitions.py`) keeps it in step: the
`target_partitions_sensor` calls it, and so does `flywheel demo` right after ingestion.
"""

import warnings

import dagster as dg

TARGET_PARTITIONS = "training_targets"

target_partitions = dg.DynamicPartitionsDefinition(name=TARGET_PARTITIONS)


def target_check(**kwargs):
    """`dg.asset_check(..., partitions_def=target_partitions)`: a check evaluated per training target.

    Partitioned asset checks are a preview feature in Dagster 1.13; the warning it raises at
    definition time is expected, so it is silenced here, in one place.
    """

    def wrap(fn):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", dg.PreviewWarning)
            return dg.asset_check(partitions_def=target_partitions, **kwargs)(fn)

    return wrap
