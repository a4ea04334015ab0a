"""The one result type of every gate: passed, a description that says what failed, by how much and
what to do next, and metadata. Pure functions return it; `pipeline/defs/gate_results.py` turns it
into a Dagster asset-check result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class GateResult:
    passed: bool
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)
