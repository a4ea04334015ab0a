"""The interaction contract (`shared/interaction-schema.md`) as code.

Two levels of checking:

* `parse_line` is what `flywheel import` needs to *store* a record: a JSON object with a known
  `type` and its key (`id`, `interaction_id` or `org_id`). Anything less is quarantined at import.
* `validate_interaction` / `validate_feedback` / `validate_organization` enforce the whole contract
  (types, timestamps, roles, feedback values, sizes). `raw_interactions` runs them on every record
  it reads, because products may also write to the source directly.

Every rejection is a `Rejection` with a stable `reason` code (for counting and the UI) and a
human `detail`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

RECORD_TYPES = ("interaction", "feedback", "organization")
VARIANTS = ("champion", "challenger")
ROLES = ("system", "user", "assistant", "tool")
RESPONSE_FORMATS = ("text", "json")
OUTCOMES = ("accepted", "accepted_with_edits", "rejected", "abandoned", "regenerated")
ACTIONS = ("saved", "skipped", "snipped")
FEEDBACK_KINDS = ("thumbs", "rating", "outcome", "edit", "action", "label")

#: Longest text field accepted, in characters. Longer texts are quarantined, not truncated:
#: a truncated answer would teach the model to stop mid-sentence.
MAX_TEXT_CHARS = 200_000
#: Longest import line in bytes; longer lines are quarantined without being parsed.
MAX_LINE_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Rejection:
    """Why a record was set aside: a stable code and a sentence for people."""

    reason: str
    detail: str


class ContractError(ValueError):
    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.rejection = Rejection(reason, detail)


def record_key(record_type: str, record: dict[str, Any]) -> str:
    """The key a record is stored and upserted under.

    Interactions and organizations have ids; feedback has none in the contract, so its key is the
    content itself (interaction, kind, time, value): sending the same event twice stores it once.
    """
    if record_type == "interaction":
        return str(record["id"])
    if record_type == "organization":
        return str(record["org_id"])
    ident = json.dumps(
        [record.get("interaction_id"), record.get("kind"), record.get("occurred_at"), record.get("value")],
        sort_keys=True,
        default=str,
    )
    return ident


KEY_FIELD = {"interaction": "id", "feedback": "interaction_id", "organization": "org_id"}


def parse_line(raw: bytes) -> tuple[str, dict[str, Any]] | Rejection:
    """Decode one JSONL line into (type, record), or say why it cannot be stored."""
    if len(raw) > MAX_LINE_BYTES:
        return Rejection("line_too_long", f"line is {len(raw):,} bytes; the limit is {MAX_LINE_BYTES:,}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejection("not_utf8", f"bytes are not UTF-8 at offset {exc.start}")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        return Rejection("not_json", f"not JSON: {exc.msg} at column {exc.colno}")
    if not isinstance(obj, dict):
        return Rejection("not_object", f"a record must be a JSON object, got {type(obj).__name__}")
    record_type = obj.pop("type", None)
    if record_type not in RECORD_TYPES:
        return Rejection(
            "unknown_type", f"field 'type' must be one of {', '.join(RECORD_TYPES)}; got {record_type!r}"
        )
    key = obj.get(KEY_FIELD[record_type])
    if not isinstance(key, str) or not key.strip():
        return Rejection("missing_field", f"{record_type} needs a non-empty string '{KEY_FIELD[record_type]}'")
    return record_type, obj


# ---------------------------------------------------------------- field helpers


def _require(record: dict, field: str) -> Any:
    if field not in record or record[field] is None:
        raise ContractError("missing_field", f"required field '{field}' is missing")
    return record[field]


def _string(record: dict, field: str, *, required: bool, allow_empty: bool = False) -> str | None:
    value = _require(record, field) if required else record.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ContractError("wrong_type", f"'{field}' must be a string, got {type(value).__name__}")
    if not allow_empty and required and not value.strip():
        raise ContractError("missing_field", f"required field '{field}' is empty")
    if len(value) > MAX_TEXT_CHARS:
        raise ContractError(
            "text_too_long", f"'{field}' has {len(value):,} characters; the limit is {MAX_TEXT_CHARS:,}"
        )
    return value


def parse_timestamp(value: Any, field: str = "occurred_at") -> str:
    """An RFC 3339 timestamp with an offset, normalised to UTC `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`."""
    if not isinstance(value, str):
        raise ContractError("wrong_type", f"'{field}' must be an RFC 3339 string, got {type(value).__name__}")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ContractError("bad_timestamp", f"'{field}' is not an RFC 3339 timestamp: {value[:40]!r}") from None
    if parsed.tzinfo is None:
        raise ContractError("bad_timestamp", f"'{field}' has no UTC offset: {value[:40]!r}")
    return parsed.astimezone(UTC).isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------- record validators


def validate_interaction(record: dict[str, Any]) -> dict[str, Any]:
    """Return the interaction in canonical form or raise `ContractError`."""
    out: dict[str, Any] = {
        "id": _string(record, "id", required=True),
        "occurred_at": parse_timestamp(_require(record, "occurred_at")),
        "org_id": _string(record, "org_id", required=True),
        "user_id": _string(record, "user_id", required=False),
        "conversation_id": _string(record, "conversation_id", required=False),
        "task": _string(record, "task", required=True),
        "model": _string(record, "model", required=False),
        "system_prompt": _string(record, "system_prompt", required=False),
    }
    messages = _require(record, "messages")
    if not isinstance(messages, list) or not messages:
        raise ContractError("wrong_type", "'messages' must be a non-empty list of {role, content}")
    clean = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise ContractError("wrong_type", f"messages[{i}] must be an object with role and content")
        role = message.get("role")
        if role not in ROLES:
            raise ContractError("unknown_role", f"messages[{i}].role must be one of {', '.join(ROLES)}; got {role!r}")
        content = message.get("content")
        if content is None:
            raise ContractError("missing_field", f"messages[{i}].content is missing")
        if not isinstance(content, str):
            raise ContractError("wrong_type", f"messages[{i}].content must be a string")
        if len(content) > MAX_TEXT_CHARS:
            raise ContractError(
                "text_too_long", f"messages[{i}].content has {len(content):,} characters; limit {MAX_TEXT_CHARS:,}"
            )
        clean.append({"role": role, "content": content})
    if not any(m["role"] == "user" for m in clean):
        raise ContractError("no_user_turn", "'messages' has no user turn")
    out["messages"] = clean
    out["response"] = _string(record, "response", required=True, allow_empty=True)
    fmt = record.get("response_format") or "text"
    if fmt not in RESPONSE_FORMATS:
        raise ContractError("wrong_type", f"'response_format' must be 'text' or 'json'; got {fmt!r}")
    out["response_format"] = fmt
    context = record.get("context")
    if context is not None and not isinstance(context, dict):
        raise ContractError("wrong_type", f"'context' must be an object, got {type(context).__name__}")
    out["context"] = context or {}
    rollout = record.get("rollout")
    if rollout is not None:
        out["rollout"] = _rollout(rollout)
    return out


def _rollout(value: Any) -> dict[str, str]:
    """The arm that served, as Flywheel's routing returned it: `{"id": "<rollout id>", "variant": ...}`."""
    if not isinstance(value, dict):
        raise ContractError("bad_rollout", f"'rollout' must be an object with id and variant, got {type(value).__name__}")
    rid, variant = value.get("id"), value.get("variant")
    if not isinstance(rid, str) or not rid.strip():
        raise ContractError("bad_rollout", "'rollout.id' must be the non-empty rollout id the routing returned")
    if variant not in VARIANTS:
        raise ContractError("bad_rollout", f"'rollout.variant' must be one of {', '.join(VARIANTS)}; got {variant!r}")
    unknown = set(value) - {"id", "variant"}
    if unknown:
        raise ContractError("bad_rollout", f"'rollout' has unknown field(s) {', '.join(sorted(unknown))}")
    return {"id": rid, "variant": variant}


def _feedback_value(kind: str, value: Any) -> Any:
    if kind == "thumbs":
        if isinstance(value, bool) or value not in (1, -1):
            raise ContractError("bad_feedback_value", f"thumbs value must be 1 or -1; got {value!r}")
        return int(value)
    if kind == "rating":
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ContractError("bad_feedback_value", f"rating must be a number; got {value!r}")
        if not 0 <= value <= 5:
            raise ContractError("bad_feedback_value", f"rating must be within 1..5 or 0..1; got {value!r}")
        return value
    if kind == "outcome":
        if value not in OUTCOMES:
            raise ContractError("bad_feedback_value", f"outcome must be one of {', '.join(OUTCOMES)}; got {value!r}")
        return value
    if kind == "action":
        if value not in ACTIONS:
            raise ContractError("bad_feedback_value", f"action must be one of {', '.join(ACTIONS)}; got {value!r}")
        return value
    # edit, label: the corrected output
    if not isinstance(value, str):
        raise ContractError("bad_feedback_value", f"{kind} value must be a string; got {type(value).__name__}")
    if len(value) > MAX_TEXT_CHARS:
        raise ContractError("text_too_long", f"{kind} value has {len(value):,} characters; limit {MAX_TEXT_CHARS:,}")
    return value


def normalize_rating(value: float) -> float:
    """A rating on 0..1. JSON integers are stars (1..5); fractions and floats ≤ 1 are already 0..1."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return (value - 1) / 4
    if value <= 1:
        return float(value)
    return (float(value) - 1) / 4


def validate_feedback(record: dict[str, Any]) -> dict[str, Any]:
    """Return the feedback event in canonical form or raise `ContractError`."""
    kind = _require(record, "kind")
    if kind not in FEEDBACK_KINDS:
        raise ContractError("unknown_feedback_kind", f"kind must be one of {', '.join(FEEDBACK_KINDS)}; got {kind!r}")
    if "value" not in record:
        raise ContractError("missing_field", "required field 'value' is missing")
    return {
        "interaction_id": _string(record, "interaction_id", required=True),
        "occurred_at": parse_timestamp(_require(record, "occurred_at")),
        "kind": kind,
        "value": _feedback_value(kind, record["value"]),
    }


def validate_organization(record: dict[str, Any]) -> dict[str, Any]:
    """Return the organization in canonical form or raise `ContractError`."""
    opt_out = record.get("training_opt_out", False)
    if opt_out is None:
        opt_out = False
    if not isinstance(opt_out, bool):
        raise ContractError("wrong_type", f"'training_opt_out' must be true or false; got {opt_out!r}")
    return {
        "org_id": _string(record, "org_id", required=True),
        "training_opt_out": opt_out,
        "plan": _string(record, "plan", required=False),
    }


VALIDATORS = {
    "interaction": validate_interaction,
    "feedback": validate_feedback,
    "organization": validate_organization,
}


def latest_feedback(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Collapse validated feedback into one value per kind: for one kind, the latest event wins.

    `action` is kept as the latest too; `edit` and `label` keep the latest text.
    """
    latest: dict[str, dict[str, Any]] = {}
    for event in events:
        current = latest.get(event["kind"])
        if current is None or event["occurred_at"] >= current["occurred_at"]:
            latest[event["kind"]] = event
    return {kind: event["value"] for kind, event in latest.items()}
