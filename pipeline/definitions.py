"""The one Dagster entry point: every asset, check, resource, sensor and schedule of Flywheel."""

from __future__ import annotations

import dagster as dg

from pipeline.core.resources import StoreResource
from pipeline.ingest.assets import raw_interactions

defs = dg.Definitions(
    assets=[raw_interactions],
    resources={"store": StoreResource()},
)
