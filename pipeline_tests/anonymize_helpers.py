"""Builders for anonymization tests: scored rows with planted PII, written where scored_examples writes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pipeline.core.artifacts import EXAMPLE_COLUMNS, PAIR_COLUMNS, scored_dir

#: One planted value per kind, in a sentence; the residual detector and the engine must both see it.
PLANTED = {
    "email": "Write to maria.lopez@bluebird-bakery.com for the quote.",
    "phone": "Call me on (415) 555-0132 after ten.",
    "phone_intl": "Our Berlin office is on +49 30 90182011 during the week.",
    "card": "The card on file is 4111 1111 1111 1111, update the receipt.",
    "ip": "Logins came from 203.0.113.57 this morning.",
    "ipv6": "The server answers on 2001:db8::8a2e:370:7334 only.",
    "ssn": "My SSN is 219-09-9999 for the payroll form.",
    "iban": "Wire it to DE89 3704 0044 0532 0130 00 please.",
}
ENGINE_ONLY = {
    "person": "Please ask Oluwaseun Adeyemi to review the page.",
    "business": "We run Copperleaf Bakery downtown.",
    "address": "Ship it to 1234 Elm Street, Apt 5, Austin, TX 78701 by Friday.",
}


def load_engine(tmp_path_factory):
    """The process's redaction engine, for a module-scoped `engine` fixture.

    spaCy loads once per test session: `get_engine` is cached per process.
    """
    from pipeline.anonymize.engine import get_engine

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FLYWHEEL_HOME", str(tmp_path_factory.mktemp("engine_home")))
        return get_engine()


def scored_example(
    i: int, *, org: str = "org_a", completion: str | None = None, **over: Any
) -> dict[str, Any]:
    row = {
        "example_id": f"int-{i}",
        "org_id": org,
        "user_id": f"user-{i}",
        "conversation_id": f"conv-{i}",
        "group_id": f"{i:040x}",
        "task": "page_generation",
        "occurred_at": "2026-03-01T10:00:00Z",
        "system_prompt": "You build landing pages.",
        "messages": json.dumps(
            [
                {
                    "role": "user",
                    "content": f"Build a page for my bakery, I'm Maria Lopez, call (415) 555-01{i % 100:02d}.",
                }
            ]
        ),
        "response_format": "text",
        "response": "Here is your page, Maria.",
        "completion": completion
        if completion is not None
        else f"Welcome to Bluebird Bakery! Reach Maria Lopez at maria{i}@gmail.com.",
        "completion_source": "response",
        "score": 7.0,
        "score_reasons": json.dumps(["thumbs_up", "accepted"]),
        "context": json.dumps({"industry": "bakery", "owner": "Maria Lopez", "user_id": f"user-{i}"}),
    }
    row.update(over)
    return row


def scored_pair(i: int, *, org: str = "org_a", **over: Any) -> dict[str, Any]:
    row = {
        "pair_id": f"pair-{i}",
        "org_id": org,
        "user_id": f"user-{i}",
        "conversation_id": f"conv-{i}",
        "group_id": f"{i:040x}",
        "task": "page_generation",
        "system_prompt": None,
        "messages": json.dumps([{"role": "user", "content": "Write a tagline"}]),
        "chosen": "Fresh bread by Maria Lopez, call +44 20 7946 0958.",
        "rejected": "Bread.",
        "source": "edit",
        "score": 6.0,
    }
    row.update(over)
    return row


def write_scored(target: str, examples: list[dict], pairs: list[dict] | None = None) -> None:
    """A scored folder (one part, every row kept) where scored_examples puts it."""
    from pipeline.curation.parts import write_plain

    write_plain(scored_dir(target), [{c: row.get(c) for c in EXAMPLE_COLUMNS} for row in examples],
                [{c: row.get(c) for c in PAIR_COLUMNS} for row in pairs or []])
