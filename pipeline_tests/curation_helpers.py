"""Builders for curation tests: validated interactions with feedback, stored as `raw_interactions` stores them."""

from __future__ import annotations

from typing import Any

import pyarrow.parquet as pq

from pipeline.core import store as st
from pipeline.core.contract import validate_feedback, validate_interaction
from pipeline.core.targets import Target


def record(
    id: str, *, org: str = "org_a", task: str = "page_generation", prompt: str = "Build a landing page for a bakery",
    response: str = "Fresh bread every morning.", response_format: str = "text", user: str | None = "u1",
    conversation: str | None = None, at: str = "2026-03-01T10:00:00Z", messages: list | None = None,
    feedback: list[tuple[str, Any]] | tuple = (), system_prompt: str | None = None, context: dict | None = None,
) -> dict[str, Any]:
    """A validated interaction with validated feedback events `(kind, value)` (or `(kind, value, at)`)."""
    raw = {
        "id": id, "occurred_at": at, "org_id": org, "user_id": user, "conversation_id": conversation,
        "task": task, "messages": messages or [{"role": "user", "content": prompt}], "response": response,
        "response_format": response_format, "system_prompt": system_prompt, "context": context,
    }
    out = validate_interaction(raw)
    events = []
    for i, event in enumerate(feedback):
        kind, value = event[0], event[1]
        when = event[2] if len(event) > 2 else f"2026-03-01T11:{i:02d}:00Z"
        events.append(validate_feedback({"interaction_id": id, "kind": kind, "value": value, "occurred_at": when}))
    out["feedback"] = sorted(events, key=lambda e: (e["occurred_at"], e["kind"]))
    return out


def insert_accepted(store: st.Store, records: list[dict[str, Any]], first_seq: int = 1) -> None:
    """Write records into `fw_accepted_interactions` with the writer `raw_interactions` uses."""
    with store.engine.begin() as conn:
        store.upsert_accepted(conn, [st.accepted_row(r, first_seq + i) for i, r in enumerate(records)])


def target(name: str = "t", **over: Any) -> Target:
    body: dict[str, Any] = {"tasks": ("page_generation",), "backend": "huggingface", "base_model": "m"}
    body.update(over)
    return Target(name=name, **body)


def read_rows(path) -> list[dict[str, Any]]:
    return pq.read_table(path).to_pylist()


def kept_rows(folder) -> list[dict[str, Any]]:
    """The kept examples of a scored folder (every part, under its masks)."""
    from pipeline.curation.parts import read_examples

    return read_examples(folder).to_pylist()


def pair_rows(folder) -> list[dict[str, Any]]:
    """The pairs written in a scored folder."""
    from pipeline.curation.parts import read_pairs

    return read_pairs(folder).to_pylist()
