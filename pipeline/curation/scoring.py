"""The 0..10 quality score of one interaction, and the completion it teaches.

Pure functions: a validated interaction record (with its `feedback` events) and the target's
`ScoringConfig` in, a `Scored` out. Every signal that moved the score is named in `reasons`
(`"thumbs_up +3"`, `"heavy_edit -1 (edit changed 42%)"`), so the UI can say why an example was
kept or dropped.

The training target (`completion`) is, in this order: a reviewer's `label` (ground truth, the
score raised to at least `label_floor`); else the person's `edit` when the outcome was
`accepted_with_edits`; else the model's `response`. JSON validity is judged on that completion,
since it is what the model will learn to produce.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz.distance import Indel

from pipeline.core.contract import latest_feedback, normalize_rating
from pipeline.core.targets import ScoringConfig
from pipeline.curation.implicit import Inferred

SCORE_MIN = 0.0
SCORE_MAX = 10.0

#: When two examples tie on score, the better training target wins: label, then edit, then response.
SOURCE_RANK = {"label": 0, "edit": 1, "response": 2}


@dataclass(frozen=True)
class Scored:
    """The score of one interaction, why, and what it teaches."""

    score: float
    reasons: list[str] = field(default_factory=list)
    completion: str = ""
    completion_source: str = "response"  # label | edit | response
    #: share of the response the edit changed (0..1); None without an edit
    edit_share: float | None = None


def edit_share(response: str, edit: str) -> float:
    """How much of the response the edit changed: the normalised Indel distance, 0 (same) .. 1."""
    if response == edit:
        return 0.0
    return float(Indel.normalized_distance(response, edit))


def parses_as_json(text: str) -> bool:
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


def choose_completion(record: dict[str, Any], latest: dict[str, Any] | None = None) -> tuple[str, str]:
    """(completion, source): the reviewer's label, else the edit of an edited acceptance, else the response."""
    latest = latest_feedback(record.get("feedback") or []) if latest is None else latest
    label = latest.get("label")
    if isinstance(label, str) and label.strip():
        return label, "label"
    edit = latest.get("edit")
    if latest.get("outcome") == "accepted_with_edits" and isinstance(edit, str) and edit.strip():
        return edit, "edit"
    return record["response"], "response"


def score_interaction(
    record: dict[str, Any], weights: ScoringConfig, *, conversation_continued: bool = False,
    latest: dict[str, Any] | None = None, inferred: Inferred | None = None,
) -> Scored:
    """Score one validated interaction 0..10 with the target's weights.

    `conversation_continued` says whether a later turn exists in the same conversation (the
    caller knows the whole log; this function sees one record). `latest` is the record's
    `latest_feedback`, when the caller has it already. `inferred` is the outcome
    `implicit.infer_conversation` inferred for it: weighed as that outcome, named
    `"abandoned (inferred) -2"`, only when the record has no explicit outcome.
    """
    latest = latest_feedback(record.get("feedback") or []) if latest is None else latest
    completion, source = choose_completion(record, latest)
    points = weights.base
    reasons: list[str] = []

    def add(name: str, value: float, detail: str = "") -> None:
        nonlocal points
        points += value
        reasons.append(f"{name} {_signed(value)}" + (f" ({detail})" if detail else ""))

    if weights.base:
        reasons.append(f"base {_signed(weights.base)}")
    if record.get("response_format") == "json":
        if parses_as_json(completion):
            add("json_valid", weights.json_valid)
        else:
            add("json_invalid", weights.json_invalid)
    thumbs = latest.get("thumbs")
    if thumbs == 1:
        add("thumbs_up", weights.thumbs_up)
    elif thumbs == -1:
        add("thumbs_down", weights.thumbs_down)
    outcome = latest.get("outcome")
    if outcome is not None:
        add(outcome, getattr(weights, outcome))
    elif inferred is not None:
        add(f"{inferred.outcome} (inferred)", getattr(weights, inferred.outcome))
    share = None
    edit = latest.get("edit")
    if isinstance(edit, str):
        share = edit_share(record["response"], edit)
        light = share <= weights.light_edit_max_share
        add("light_edit" if light else "heavy_edit", weights.light_edit if light else weights.heavy_edit,
            f"edit changed {share:.0%}")
    rating = latest.get("rating")
    if rating is not None:
        normalised = normalize_rating(rating)
        add("rating", round((normalised - 0.5) * 2 * weights.rating, 4), f"{rating!r} → {normalised:.2f}")
    action = latest.get("action")
    if action is not None:
        add(action, getattr(weights, action))
    if conversation_continued:
        add("conversation_continued", weights.conversation_continued)
    if source == "label" and points < weights.label_floor:
        reasons.append(f"label_floor {weights.label_floor:g} (was {points:g})")
        points = weights.label_floor
    score = min(SCORE_MAX, max(SCORE_MIN, points))
    if score != points:
        reasons.append(f"clamped to {score:g} (was {points:g})")
    return Scored(round(score, 4), reasons, completion, source, share)


def exportable(
    record: dict[str, Any], weights: ScoringConfig, *, conversation_continued: bool = False,
    inferred: Inferred | None = None,
) -> Scored | None:
    """The record's score when `scored_examples` would export it (a non-empty completion at or above the
    target's export threshold), else None. Malformed records raise, as in `score_interaction`."""
    scored = score_interaction(record, weights, conversation_continued=conversation_continued, inferred=inferred)
    if not scored.completion.strip() or scored.score < weights.export_threshold:
        return None
    return scored


def _signed(value: float) -> str:
    return f"{value:+g}"
