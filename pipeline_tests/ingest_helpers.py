"""Builders of contract records for ingestion tests."""

from __future__ import annotations

import json


def interaction(id="i1", org="org_a", task="chat", **over) -> dict:
    record = {
        "type": "interaction",
        "id": id,
        "occurred_at": "2026-03-01T10:00:00Z",
        "org_id": org,
        "user_id": "u1",
        "conversation_id": "c1",
        "task": task,
        "messages": [{"role": "user", "content": "Write a hero section for a bakery"}],
        "response": "Fresh bread every morning.",
        "response_format": "text",
    }
    record.update(over)
    return {k: v for k, v in record.items() if v is not ...}


def feedback(interaction_id="i1", kind="thumbs", value=1, at="2026-03-01T10:05:00Z", **over) -> dict:
    record = {"type": "feedback", "interaction_id": interaction_id, "occurred_at": at, "kind": kind, "value": value}
    record.update(over)
    return {k: v for k, v in record.items() if v is not ...}


def organization(org="org_a", opt_out=False, **over) -> dict:
    record = {"type": "organization", "org_id": org, "training_opt_out": opt_out, "plan": "pro"}
    record.update(over)
    return record


def jsonl(*records) -> bytes:
    return b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in records)
