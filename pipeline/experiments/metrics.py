"""The online metrics: one value per interaction, from what people did with the answer.

Each metric is 0/1 per interaction (`latency_ms` is a number), or None where it does not apply
(an invalid-JSON rate for a text answer, a latency nobody logged). An experiment averages them per
user first (users are what is randomised), then compares the variants' per-user averages.

| metric              | 1 when                                                     | better |
|---------------------|------------------------------------------------------------|--------|
| `accepted_rate`     | the outcome is `accepted` (saved as-is)                    | higher |
| `approval_rate`     | the outcome is `accepted` or `accepted_with_edits`         | higher |
| `save_rate`         | the item's action is `saved`                               | higher |
| `thumbs_up_rate`    | the latest thumbs is up                                    | higher |
| `thumbs_down_rate`  | the latest thumbs is down                                  | lower  |
| `regenerate_rate`   | the outcome is `regenerated`, explicit or inferred         | lower  |
| `abandon_rate`      | the outcome is `abandoned`, explicit or inferred           | lower  |
| `invalid_json_rate` | a `json` answer does not parse (None for `text` answers)   | lower  |
| `latency_ms`        | the number in `context.latency_ms`, when the product logs it | lower |

The outcome is the explicit one when the product sent it, else the one inferred from the log
(`pipeline.curation.implicit`): an explicit outcome always wins.
"""

from __future__ import annotations

import math
from typing import Any

from pipeline.curation.scoring import parses_as_json

METRICS: tuple[str, ...] = (
    "accepted_rate", "approval_rate", "save_rate", "thumbs_up_rate",
    "thumbs_down_rate", "regenerate_rate", "abandon_rate", "invalid_json_rate", "latency_ms",
)
HIGHER_IS_BETTER = frozenset({"accepted_rate", "approval_rate", "save_rate", "thumbs_up_rate"})


def interaction_values(record: dict[str, Any], latest: dict[str, Any], outcome: str | None) -> dict[str, float | None]:
    """Every metric's value for one interaction; `outcome` is the effective (explicit, else inferred) outcome."""
    thumbs = latest.get("thumbs")
    latency = (record.get("context") or {}).get("latency_ms")
    latency_ok = isinstance(latency, int | float) and not isinstance(latency, bool) and math.isfinite(latency) and latency >= 0
    return {
        "accepted_rate": float(outcome == "accepted"),
        "approval_rate": float(outcome in ("accepted", "accepted_with_edits")),
        "save_rate": float(latest.get("action") == "saved"),
        "thumbs_up_rate": float(thumbs == 1),
        "thumbs_down_rate": float(thumbs == -1),
        "regenerate_rate": float(outcome == "regenerated"),
        "abandon_rate": float(outcome == "abandoned"),
        "invalid_json_rate": (float(not parses_as_json(record.get("response") or ""))
                              if record.get("response_format") == "json" else None),
        "latency_ms": float(latency) if latency_ok else None,
    }
