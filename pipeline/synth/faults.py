"""Records that break the contract the way real logs do, for the quarantine to catch.

Each fault is made from the interaction just generated, so it looks like its neighbours. Broken
interactions get ids of their own (`ix_<seed>_bad_<n>`): reusing a good id would overwrite the good
record on import. Faults draw from their own random stream, so the good records are the same
whatever `bad_share` is. Every broken feedback event lands on a second of its own: the store keys
feedback by its content, and two identical events would be stored once.
"""

from __future__ import annotations

import calendar
import random
import time
from typing import Any

from pipeline.synth.world import rfc3339

#: fault -> the `reason` the contract validators give it (`None`: valid alone, caught by the join)
EXPECTED_REASON: dict[str, str | None] = {
    "unknown_interaction": None,
    "bad_timestamp": "bad_timestamp",
    "unknown_feedback_kind": "unknown_feedback_kind",
    "missing_field": "missing_field",
    "wrong_type": "wrong_type",
    "unknown_role": "unknown_role",
}
FAULTS = tuple(EXPECTED_REASON)

#: strftime formats of timestamps `datetime.fromisoformat` cannot read or that carry no offset
BAD_TIMESTAMPS = (
    "yesterday %H:%M:%S",
    "%Y-13-%dT%H:%M:%SZ",
    "%d/%m/%Y %H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%d.%m.%Y %H:%M:%S",
)
UNKNOWN_KINDS = (("emoji", "🔥"), ("share", "twitter"), ("love", 1), ("report", "spam"), ("Thumbs", 1))
WRONG_TYPES = (
    ("messages", "hello, can you build my page?"),
    ("response", 42),
    ("context", "landing page"),
    ("occurred_at", 1_790_000_000),
    ("user_id", 1234),
    ("task", ["chat"]),
)
MISSING = ("task", "response", "messages", "org_id", "occurred_at")
UNKNOWN_ROLES = ("bot", "human", "model", "User", "customer")


class FaultMaker:
    """Makes contract-breaking records from good interactions, deterministically in `seed`."""

    def __init__(self, seed: int):
        self.seed = seed
        self.rng = random.Random(f"flywheel-faults-{seed}")
        self._made = 0

    def _broken_interaction(self, good: dict[str, Any]) -> dict[str, Any]:
        self._made += 1
        return {**good, "id": f"ix_{self.seed}_bad_{self._made:06d}"}

    def _when(self, good: dict[str, Any]) -> float:
        """A second after `good` that no other fault uses."""
        return calendar.timegm(time.strptime(good["occurred_at"], "%Y-%m-%dT%H:%M:%SZ")) + self._made

    def _feedback(self, good: dict[str, Any], **fields: Any) -> dict[str, Any]:
        self._made += 1
        record = {
            "type": "feedback",
            "interaction_id": good["id"],
            "occurred_at": rfc3339(self._when(good)),
            "kind": "thumbs",
            "value": 1,
        }
        record.update(fields)
        return record

    def make(self, good: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """A `(fault, record)` pair derived from the good interaction `good`."""
        rng = self.rng
        fault = rng.choice(FAULTS)
        if fault == "unknown_interaction":  # the interaction was never logged, or was deleted
            record = self._feedback(good)
            record["interaction_id"] = f"ix_{self.seed}_gone_{self._made:06d}"
            return fault, record
        if fault == "bad_timestamp":
            stamp = time.strftime(rng.choice(BAD_TIMESTAMPS), time.gmtime(self._when(good) + 1))
            if rng.random() < 0.5:
                return fault, self._feedback(good, occurred_at=stamp, value=rng.choice((1, -1)))
            return fault, {**self._broken_interaction(good), "occurred_at": stamp}
        if fault == "unknown_feedback_kind":
            kind, value = rng.choice(UNKNOWN_KINDS)
            return fault, self._feedback(good, kind=kind, value=value)
        if fault == "missing_field":
            if rng.random() < 0.3:
                record = self._feedback(good, kind="rating", value=4)
                del record["value"]
                return fault, record
            record = self._broken_interaction(good)
            del record[rng.choice(MISSING)]
            return fault, record
        if fault == "wrong_type":
            field, value = rng.choice(WRONG_TYPES)
            return fault, {**self._broken_interaction(good), field: value}
        record = self._broken_interaction(good)
        messages = [dict(m) for m in good["messages"]]
        messages[rng.randrange(len(messages))]["role"] = rng.choice(UNKNOWN_ROLES)
        record["messages"] = messages
        return fault, record
