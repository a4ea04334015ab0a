"""Assets from `scored_examples` on are partitioned by training target."""

from __future__ import annotations

import dagster as dg

from pipeline.core.targets import load_targets

target_partitions = dg.StaticPartitionsDefinition(sorted(load_targets()))
