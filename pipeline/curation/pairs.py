"""Preference pairs (DPO) and contrastive pairs (embeddings), where the data holds them.

* `edit`: the person's edit over the model's original response (one interaction holds both).
* `regenerated`: an accepted answer over a regenerated one for the same prompt in the same
  conversation (two interactions; found by key while streaming, joined afterwards).
* `saved_vs_skipped` (embedding targets): a saved (or snipped) item over a skipped one of the same
  user and query. The query is the interaction's last user message, the item its `response`.

Pairing inside a group is round-robin: with S chosen and R rejected items, `max(S, R)` pairs, each
item used at least once, so a large group neither explodes quadratically nor wastes its data.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

from pipeline.core.canonical import sha1
from pipeline.curation.dedup import normalize_text, prompt_parts

POSITIVE_ACTIONS = ("saved", "snipped")
NEGATIVE_ACTIONS = ("skipped",)
ACCEPTED_OUTCOMES = ("accepted", "accepted_with_edits")


def group_id(record: dict[str, Any]) -> str:
    """Keeps a conversation on one side of a train/validation split: sha1 of conversation (or example) id."""
    return sha1(record.get("conversation_id") or record["id"])


def messages_json(messages: list[dict[str, str]]) -> str:
    return json.dumps(messages, ensure_ascii=False)


def last_user_message(record: dict[str, Any]) -> str:
    for message in reversed(record["messages"]):
        if message["role"] == "user":
            return message["content"]
    return ""


def differs(chosen: str, rejected: str) -> bool:
    """A pair teaches something only when its sides differ beyond whitespace."""
    return " ".join(chosen.split()) != " ".join(rejected.split())


def pair_row(
    source: str, chosen_record: dict[str, Any], rejected_id: str, *, messages: str, chosen: str, rejected: str,
    score: float, system_prompt: str | None,
) -> dict[str, Any]:
    """One row of PAIR_COLUMNS; the ids and tenant come from the chosen side."""
    return {
        "pair_id": sha1(f"{source}\x1f{chosen_record['id']}\x1f{rejected_id}"),
        "org_id": chosen_record["org_id"],
        "user_id": chosen_record.get("user_id"),
        "conversation_id": chosen_record.get("conversation_id"),
        "group_id": group_id(chosen_record),
        "task": chosen_record["task"],
        "system_prompt": system_prompt,
        "messages": messages,
        "chosen": chosen,
        "rejected": rejected,
        "source": source,
        "score": float(score),
    }


def edit_pair(record: dict[str, Any], latest: dict[str, Any], score: float) -> dict[str, Any] | None:
    """The edited answer over the original response, when the person edited it."""
    edit = latest.get("edit")
    if not isinstance(edit, str) or not edit.strip() or not differs(edit, record["response"]):
        return None
    return pair_row("edit", record, record["id"], messages=messages_json(record["messages"]), chosen=edit,
                    rejected=record["response"], score=score, system_prompt=record.get("system_prompt"))


def regenerated_pair(accepted: dict[str, Any], completion: str, score: float,
                     regenerated: dict[str, Any]) -> dict[str, Any]:
    """The accepted answer (its training completion) over the response that was regenerated."""
    return pair_row("regenerated", accepted, regenerated["id"], messages=messages_json(accepted["messages"]),
                    chosen=completion, rejected=regenerated["response"], score=score,
                    system_prompt=accepted.get("system_prompt"))


def saved_skipped_pair(saved: dict[str, Any], score: float, skipped: dict[str, Any]) -> dict[str, Any]:
    """The saved item over the skipped one; the query is the only message."""
    query = [{"role": "user", "content": last_user_message(saved)}]
    return pair_row("saved_vs_skipped", saved, skipped["id"], messages=messages_json(query),
                    chosen=saved["response"], rejected=skipped["response"], score=score, system_prompt=None)


def round_robin(chosen: list[str], rejected: list[str]) -> Iterator[tuple[str, str]]:
    """`max(len(chosen), len(rejected))` pairs using every item at least once; none when a side is empty."""
    if not chosen or not rejected:
        return
    for i in range(max(len(chosen), len(rejected))):
        yield chosen[i % len(chosen)], rejected[i % len(rejected)]


class PairIndex:
    """Keys → ids of chosen and rejected candidates, filled while streaming (ids only, no texts)."""

    def __init__(self, source: str):
        self.source = source
        self.groups: dict[bytes, tuple[list[str], list[str]]] = {}

    def add(self, key: tuple, record_id: str, *, chosen: bool) -> None:
        """File the id under a 20-byte digest of `key` (tenant, conversation, ...: no texts kept)."""
        group = self.groups.setdefault(group_digest(key), ([], []))
        group[0 if chosen else 1].append(record_id)

    def plan(self) -> list[tuple[str, str]]:
        """(chosen id, rejected id) for every group that has both sides, in a stable order."""
        out: list[tuple[str, str]] = []
        for key in sorted(self.groups):
            chosen, rejected = self.groups[key]
            out.extend(round_robin(sorted(chosen), sorted(rejected)))
        return out


def group_digest(key: tuple) -> bytes:
    """The 20-byte digest a `PairIndex` files a key under."""
    return hashlib.sha1(repr(key).encode()).digest()


def group_hash(key: tuple) -> int:
    """A signed 64-bit hash of a pair group's key: what `scored_examples` keeps per row to find a group again."""
    return int.from_bytes(group_digest(key)[:8], "little", signed=True)


def regeneration_key(record: dict[str, Any]) -> tuple | None:
    """Same tenant, conversation, task and (normalised) prompt; None outside a conversation."""
    conversation = record.get("conversation_id")
    if not conversation:
        return None
    return (record["org_id"], conversation, record["task"], sha1(normalize_text(prompt_parts(record["messages"])[0])))


def saved_skipped_key(record: dict[str, Any]) -> tuple | None:
    """Same tenant, user (else conversation) and normalised query; None when neither id is known."""
    who = record.get("user_id") or record.get("conversation_id")
    if not who:
        return None
    return (record["org_id"], who, sha1(normalize_text(last_user_message(record))))
