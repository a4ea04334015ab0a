"""The one Dagster entry point: every asset, check, resource, sensor and schedule of Flywheel."""

from __future__ import annotations

import dagster as dg

from pipeline.core.resources import StoreResource
from pipeline.core.targets import load_targets
from pipeline.ingest.assets import raw_interactions

# Validate targets.yaml at load: a malformed file fails the code location with its line and field.
TARGETS = load_targets()

defs = dg.Definitions(
    assets=[raw_interactions],
    resources={"store": StoreResource()},
)
