"""Assets from `scored_examples` on are partitioned by training target."""

from __future__ import annotations

import warnings

import dagster as dg

from pipeline.core.targets import load_targets

target_partitions = dg.StaticPartitionsDefinition(sorted(load_targets()))


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
