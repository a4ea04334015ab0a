"""What running one model over the evaluation items produced, whatever the backend."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ModelOutputs:
    """Per-item outputs of one model, in the order of the items it was given.

    Only the fields its kind produces are set: `texts` (generated answers), `margins`
    (log p(chosen) - log p(rejected)), or for rankings `scores` (queries x corpus cosine matrix)
    with `query_ids`, `corpus_ids`, `relevant` (query id -> kept corpus ids) and `query_tasks`. `latencies_s` holds one wall time per call (a batch's
    time split evenly over its items); `costs_usd` one cost per call (0.0 on our own hardware,
    None where the price is unknown).
    """

    role: str
    model: str
    backend: str
    texts: list[str] | None = None
    margins: list[float] | None = None
    scores: Any = None
    query_ids: list[str] | None = None
    corpus_ids: list[str] | None = None
    relevant: dict[str, set[str]] | None = None
    query_tasks: list[str] | None = None
    latencies_s: list[float] = field(default_factory=list)
    costs_usd: list[float | None] = field(default_factory=list)
    errors: list[str | None] = field(default_factory=list)

    def call_summary(self) -> dict[str, Any]:
        """Latency (mean, p95) and cost per call, for the side-by-side table."""
        lat = sorted(self.latencies_s)
        known = [c for c in self.costs_usd if c is not None]
        return {
            "calls": len(lat),
            "latency_mean_s": round(statistics.fmean(lat), 4) if lat else None,
            "latency_p95_s": round(lat[min(len(lat) - 1, int(0.95 * len(lat)))], 4) if lat else None,
            "cost_per_call_usd": round(statistics.fmean(known), 8) if known and len(known) == len(self.costs_usd) else None,
            "errors": sum(1 for e in self.errors if e),
        }
