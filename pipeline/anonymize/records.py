"""From rows and records to texts the engine redacts, and back.

One *group* is everything that belongs to one example (a scored row, a pair, an interaction
record): its texts are redacted together so one person keeps one placeholder across fields.

JSON is never handed to NER as text. A JSON field (messages, context, a `json` response or
completion) is parsed, only its string *values* are redacted (never keys, never syntax), and it
is serialised again, so valid JSON stays valid JSON. Values under id-like keys (`org_id`,
`user_id`, `account_id`, ...) are replaced by a hash instead. A field declared JSON that does not
parse is redacted as plain text and counted (`json_unparseable`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pipeline.anonymize.names import ADDRESS_KEYS, BUSINESS_KEYS, PERSON_KEYS, PHONE_KEYS
from pipeline.core.artifacts import EXAMPLE_COLUMNS, ID_COLUMNS, PAIR_COLUMNS

#: Columns of anonymized/examples.parquet: the scored columns without raw ids, plus `tenant_hash`.
#: `example_id` holds a hash of the interaction id.
ANONYMIZED_EXAMPLE_COLUMNS = [c for c in EXAMPLE_COLUMNS if c not in ID_COLUMNS] + ["tenant_hash"]
#: Columns of anonymized/pairs.parquet (`pair_id` hashed).
ANONYMIZED_PAIR_COLUMNS = [c for c in PAIR_COLUMNS if c not in ID_COLUMNS] + ["tenant_hash"]

#: Keys whose values in JSON (context, page JSON) are identifiers: hashed, not redacted as text.
ID_KEYS = frozenset(
    {
        "org_id",
        "user_id",
        "conversation_id",
        "account_id",
        "customer_id",
        "session_id",
        "owner_id",
        "tenant_id",
    }
)
#: Short lower-case identifiers ("hero", "page_generation") hold no personal data: not sent to NER.
_IDENTIFIER = re.compile(r"[a-z_\-]{1,40}")
#: A JSON value that is nothing but a name ("Tomasz Weber", "Dr. Ana Ruiz") or a business name.
_NAME_VALUE = re.compile(
    r"(?:(?:Dr|Mr|Mrs|Ms|Prof)\.?\s)?[A-ZÀ-Þ][\w'’-]+"
    r"(?:\s(?:[A-ZÀ-Þ][\w.'’-]*|van|von|der|den|de|da|das|dos|do|del|della|di|du|le|la|y|e|i)){0,5}"
)
_PHONE_VALUE = re.compile(r"[+(\d][\d \t().\-/]{5,24}\d(?:[ \t]*(?:x|ext\.?|#)[ \t]*\d{1,6})?", re.IGNORECASE)
_SENTENCE = re.compile(r"[.!?]\s+[A-Z]|\b(?:call|visit|find|come|write|email|reach)\b", re.IGNORECASE)
_TITLE_VALUE = re.compile(r"[A-Z0-9À-Þ][\w&.'’-]*(?:\s[&A-Z0-9À-Þ][\w&.'’-]*){0,5}")

#: A text to redact, or `(text, entity_type)` when its JSON key says the whole value is one entity
#: (`{"author": "Tomasz Weber"}`): NER has no context in a two-word string, the key is the context.
Segment = str | tuple[str, str]


def segment_text(segment: Segment) -> str:
    return segment if isinstance(segment, str) else segment[0]


def _hint(key: str | None, value: str) -> Segment:
    if (
        key in PERSON_KEYS
        and _NAME_VALUE.fullmatch(value.strip())
        and (key != "name" or " " in value.strip())
    ):
        return (value, "PERSON")
    if key in BUSINESS_KEYS and _TITLE_VALUE.fullmatch(value.strip()):
        return (value, "ORGANIZATION")
    if key in PHONE_KEYS and _PHONE_VALUE.fullmatch(value.strip()):
        return (value, "PHONE_NUMBER")
    if (
        key in ADDRESS_KEYS
        and any(ch.isdigit() for ch in value)
        and len(value.split()) <= 16
        and not _SENTENCE.search(value)
    ):
        return (value, "ADDRESS")
    return value


def tenant_hash(org_id: str) -> str:
    """The tenant's stable pseudonym in anonymized data (the opt-out gate recomputes it)."""
    return hashlib.sha256(f"flywheel-tenant\0{org_id}".encode()).hexdigest()[:16]


def id_hash(value: str) -> str:
    """A stable pseudonym for an interaction, user or conversation id."""
    return hashlib.sha256(f"flywheel-id\0{value}".encode()).hexdigest()[:16]


@dataclass
class Prepared:
    """The texts of one group, and how to put their redacted versions back."""

    segments: list[Segment] = field(default_factory=list)
    setters: list[Callable[[Iterable[str]], None]] = field(default_factory=list)
    notes: Counter = field(default_factory=Counter)

    def text(self, value: str | None, put: Callable[[str], None]) -> None:
        if value is None or value == "":
            return
        start = len(self.segments)
        self.segments.append(value)
        self.setters.append(lambda it, s=start: put(next(it)))

    def json_value(self, obj: Any, put: Callable[[Any], None], *, messages: bool = False) -> None:
        """Register every string value of `obj` (not keys); `put` receives the rebuilt object."""
        strings: list[Segment] = []
        shape = _collect(obj, strings, messages=messages)
        self.segments.extend(strings)
        count = len(strings)
        self.setters.append(lambda it: put(_fill(shape, [next(it) for _ in range(count)])))

    def json_text(self, value: str | None, put: Callable[[str], None], *, messages: bool = False) -> None:
        """A JSON document held as text: redact its values, write it back as JSON text."""
        if value is None or value == "":
            return
        try:
            obj = json.loads(value)
        except (TypeError, ValueError):
            self.notes["json_unparseable"] += 1
            self.text(value, put)
            return
        indent = 2 if "\n" in value else None
        self.json_value(
            obj, lambda o: put(json.dumps(o, ensure_ascii=False, indent=indent)), messages=messages
        )

    def auto(self, value: str | None, put: Callable[[str], None]) -> None:
        """A text that may be JSON (an edit of a page JSON): JSON when it parses as an object or list."""
        if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
            try:
                json.loads(value)
            except ValueError:
                pass
            else:
                self.json_text(value, put)
                return
        self.text(value, put)

    def apply(self, redacted: list[str]) -> None:
        if len(redacted) != len(self.segments):
            raise ValueError(f"expected {len(self.segments)} redacted texts, got {len(redacted)}")
        it = iter(redacted)
        for setter in self.setters:
            setter(it)


# A "shape" is the JSON value with each redactable string replaced by _Slot(index).
class _Slot(int):
    pass


def _collect(obj: Any, out: list[Segment], *, messages: bool = False, key: str | None = None) -> Any:
    if isinstance(obj, str):
        if key in ID_KEYS:
            return id_hash(obj)
        if len(obj) < 2 or _IDENTIFIER.fullmatch(obj) or (messages and key == "role"):
            return obj
        out.append(_hint(key, obj))
        return _Slot(len(out) - 1)
    if isinstance(obj, dict):
        return {k: _collect(v, out, messages=messages, key=k) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_collect(v, out, messages=messages, key=key) for v in obj]
    return obj


def _fill(shape: Any, values: list[str]) -> Any:
    if isinstance(shape, _Slot):
        return values[int(shape)]
    if isinstance(shape, dict):
        return {k: _fill(v, values) for k, v in shape.items()}
    if isinstance(shape, list):
        return [_fill(v, values) for v in shape]
    return shape


# ---------------------------------------------------------------- scored rows


def _setter(row: dict, column: str) -> Callable[[Any], None]:
    return lambda value: row.__setitem__(column, value)


def prepare_example(row: dict) -> Prepared:
    """Register the texts of a scored example row (`row` is updated in place by `apply`)."""
    prep = Prepared()
    prep.text(row.get("system_prompt"), _setter(row, "system_prompt"))
    prep.json_text(row.get("messages"), _setter(row, "messages"), messages=True)
    is_json = row.get("response_format") == "json"
    for column in ("response", "completion"):
        if is_json:
            prep.json_text(row.get(column), _setter(row, column))
        else:
            prep.text(row.get(column), _setter(row, column))
    prep.json_text(row.get("context"), _setter(row, "context"))
    return prep


def prepare_pair(row: dict) -> Prepared:
    """Register the texts of a preference / contrastive pair row."""
    prep = Prepared()
    prep.text(row.get("system_prompt"), _setter(row, "system_prompt"))
    prep.json_text(row.get("messages"), _setter(row, "messages"), messages=True)
    prep.auto(row.get("chosen"), _setter(row, "chosen"))
    prep.auto(row.get("rejected"), _setter(row, "rejected"))
    return prep


def strip_ids(row: dict, id_column: str) -> dict:
    """Replace the row's raw ids: id -> hash, org_id -> tenant_hash, user/conversation ids dropped."""
    out = {k: v for k, v in row.items() if k not in ID_COLUMNS}
    out[id_column] = id_hash(str(row[id_column])) if row.get(id_column) is not None else None
    out["tenant_hash"] = tenant_hash(str(row["org_id"]))
    return out


# ---------------------------------------------------------------- contract records (JSONL stream)


#: Record fields that hold ids, times or enums, never free text (ids are pseudonymized instead).
_NOT_TEXT = frozenset(
    {
        "type",
        "id",
        "interaction_id",
        "org_id",
        "user_id",
        "conversation_id",
        "occurred_at",
        "task",
        "model",
        "response_format",
        "kind",
        "training_opt_out",
        "plan",
    }
)


def prepare_record(record_type: str, record: dict) -> Prepared:
    """Register the texts of one contract record (interaction, feedback, organization).

    Every field that is not an id, time or enum is redacted, whatever its type: a record that
    breaks the contract (messages as a string, an unknown extra field) must not leak through.
    """
    prep = Prepared()
    is_json = record_type == "interaction" and record.get("response_format") == "json"
    for key, value in record.items():
        if key in _NOT_TEXT or value is None or isinstance(value, bool | int | float):
            continue
        put = _setter(record, key)
        if isinstance(value, dict | list):
            prep.json_value(value, put, messages=key == "messages")
        elif not isinstance(value, str):
            continue
        elif key == "response" and is_json:
            prep.json_text(value, put)
        elif record_type == "feedback" and key == "value":
            prep.auto(value, put)
        else:
            prep.text(value, put)
    return prep


def pseudonymize_record(record_type: str, record: dict) -> dict:
    """The record's ids as pseudonyms, same fields: ids stay joinable, raw values are gone."""
    out = dict(record)
    for key in ("id", "interaction_id", "user_id", "conversation_id"):
        if isinstance(out.get(key), str):
            out[key] = id_hash(out[key])
    if isinstance(out.get("org_id"), str):
        out["org_id"] = tenant_hash(out["org_id"])
    return out
