"""One conversion from a pure gate's `GateResult` to a Dagster asset-check result (ERROR severity)."""

from __future__ import annotations

from typing import Any

import dagster as dg

from pipeline.core.gates import GateResult


def _metadata_value(value: Any) -> Any:
    if isinstance(value, bool):
        return dg.MetadataValue.bool(value)
    if isinstance(value, int | float | str) or isinstance(value, dg.MetadataValue):
        return value
    return dg.MetadataValue.json(value)


def check_result(gate: GateResult, **metadata: Any) -> dg.AssetCheckResult:
    """The check result of a gate; `metadata` (the version checked, say) is shown beside the gate's own."""
    values = {**metadata, **gate.metadata}
    return dg.AssetCheckResult(
        passed=gate.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=gate.description,
        metadata={key: _metadata_value(value) for key, value in values.items()},
    )
