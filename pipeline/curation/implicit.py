"""Outcomes inferred from the log, kept apart from explicit feedback (an explicit `outcome` always wins).

A product does not always send an `outcome`. Two are inferred from the conversation itself:

* **regenerated**: the next interaction of the same conversation (by `occurred_at`), within
  `regenerate_within_s`, asks a near-duplicate of this one's last user message (both normalised
  with `dedup.normalize_text`, `rapidfuzz.fuzz.ratio / 100 >= regenerate_similarity`).
* **abandoned**: the person left without a word: no feedback of any kind (no outcome, and no
  action, thumbs, rating, edit or label either: each is already a verdict, and a turn someone
  thumbed up and then closed was not abandoned), no later turn in the conversation within
  `abandon_after_s`, and the log's clock `as_of` is at least `occurred_at + abandon_after_s`
  (a younger turn is undecided: nothing is inferred).

Regenerated takes precedence over abandoned. Pure functions: validated interaction records in,
`id -> Inferred` out; the store pass lives in `curate.store_inferred`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from rapidfuzz import fuzz

from pipeline.core.contract import latest_feedback
from pipeline.curation.dedup import normalize_text

INFERRED_OUTCOMES = ("abandoned", "regenerated")


@dataclass(frozen=True)
class ImplicitWindows:
    """How long a silence means abandoned, and how soon and how alike a repeated prompt means regenerated."""

    abandon_after_s: float = 900.0  # 15 minutes
    regenerate_within_s: float = 900.0
    regenerate_similarity: float = 0.9  # rapidfuzz ratio (0..1) of the normalised last user turns

    @classmethod
    def from_scoring(cls, scoring: Any) -> ImplicitWindows:
        """The windows of a target's `ScoringConfig` (minutes there, seconds here)."""
        return cls(
            abandon_after_s=float(scoring.abandon_after_minutes) * 60.0,
            regenerate_within_s=float(scoring.regenerate_within_minutes) * 60.0,
            regenerate_similarity=float(scoring.regenerate_similarity),
        )


class Inferred(NamedTuple):
    outcome: str  # "abandoned" | "regenerated"
    reason: str


def parse_time(value: str) -> datetime:
    """An RFC 3339 timestamp as the contract canonicalises it (`...Z`), as an aware datetime."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def last_user_message(record: dict[str, Any]) -> str:
    """The normalised content of the record's last user message ('' without one)."""
    for message in reversed(record.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user" and isinstance(message.get("content"), str):
            return normalize_text(message["content"])
    return ""


def _duration(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def infer_conversation(turns: list[dict], windows: ImplicitWindows, as_of: str) -> dict[str, Inferred]:
    """id -> Inferred for the turns of ONE (org_id, conversation_id) that get an inferred outcome.

    `turns` are validated interaction records with their `feedback`, in any order; a turn with an
    explicit outcome gets nothing (it wins).
    """
    clock = parse_time(as_of)
    timed = sorted(((parse_time(t["occurred_at"]), t["id"], t) for t in turns), key=lambda x: (x[0], x[1]))
    out: dict[str, Inferred] = {}
    prompts: dict[int, str] = {}

    def prompt(i: int) -> str:
        if i not in prompts:
            prompts[i] = last_user_message(timed[i][2])
        return prompts[i]

    for i, (at, rid, record) in enumerate(timed):
        latest = latest_feedback(record.get("feedback") or [])
        if latest.get("outcome") is not None:
            continue
        gap = (timed[i + 1][0] - at).total_seconds() if i + 1 < len(timed) else None
        if gap is not None and gap <= windows.regenerate_within_s and prompt(i):
            similarity = fuzz.ratio(prompt(i), prompt(i + 1)) / 100.0
            if similarity >= windows.regenerate_similarity:
                out[rid] = Inferred(
                    "regenerated", f"next turn {round(gap, 1):g} s later asks the same (similarity {similarity:.2f})")
                continue
        if latest:  # thumbs, rating, edit, action or label: the person gave a verdict
            continue
        if gap is not None and gap <= windows.abandon_after_s:
            continue
        if (clock - at).total_seconds() < windows.abandon_after_s:
            continue  # younger than the window: undecided
        window = _duration(windows.abandon_after_s)
        out[rid] = Inferred(
            "abandoned",
            f"no outcome and no later turn within {window}" if gap is None
            else f"no outcome and the next turn {_duration(round(gap))} later, past the {window} window",
        )
    return out


def infer_outcomes(records: Iterable[dict], windows: ImplicitWindows, as_of: str) -> dict[str, Inferred]:
    """`infer_conversation` per (org_id, conversation_id); records without a conversation get nothing."""
    conversations: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for record in records:
        conversation = record.get("conversation_id")
        if conversation:
            conversations[(record["org_id"], conversation)].append(record)
    out: dict[str, Inferred] = {}
    for turns in conversations.values():
        out.update(infer_conversation(turns, windows, as_of))
    return out


def effective_outcome(latest: dict, inferred: Inferred | None) -> tuple[str | None, str | None]:
    """(outcome, "explicit" | "inferred" | None): `latest` is `contract.latest_feedback(...)`; explicit wins."""
    outcome = latest.get("outcome")
    if outcome is not None:
        return outcome, "explicit"
    if inferred is not None:
        return inferred.outcome, "inferred"
    return None, None
