"""Pure per-row rules: an anonymized row becomes a prepared record, or a counted drop with a reason.

Drop reasons (stable codes, counted in the manifest; input rows = written + dropped):

* `malformed_messages`   `messages` is not a JSON list of {role, content} with known roles
* `empty_content`        a turn, the system prompt, the answer or a pair side is empty, e.g. after
                         anonymization redacted all of it
* `no_user_turn`         the conversation has no user turn (nothing to learn to answer)
* `identical_outputs`    a preference or contrastive pair whose two sides are the same text
* `too_many_tokens`      the example exceeds the target's `max_tokens_per_example`
* `duplicate`            the same example (same prompt and answer) was already kept
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any

from pipeline.training_files.tokens import TokenCounter

DROP_REASONS = (
    "malformed_messages",
    "empty_content",
    "no_user_turn",
    "identical_outputs",
    "too_many_tokens",
    "duplicate",
)

#: Roles a training conversation may carry; a `tool` turn of the log has no tool-call id, which
#: OpenAI rejects, so its output is kept as context in a user turn that says it is tool output.
TOOL_PREFIX = "Tool output:\n"
_ROLES = ("system", "user", "assistant", "tool")
_SPACE = re.compile(r"\s+")


def normalize_prompt(text: str) -> str:
    """The prompt key: case-folded, whitespace collapsed (so near-identical prompts group)."""
    return _SPACE.sub(" ", text).strip().casefold()


def prompt_key(messages: list[dict[str, str]]) -> str:
    """The normalised text of the last user turn: one prompt is never on both sides of a split."""
    for message in reversed(messages):
        if message["role"] == "user":
            return normalize_prompt(message["content"])
    return ""


def key_hash(text: str) -> int:
    """A 63-bit hash of a key (split and dedupe keep ints, not a million strings)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big") >> 1


def parse_messages(raw: Any) -> list[dict[str, str]] | None:
    """The conversation as [{role, content}] with tool turns folded into user turns; None if malformed."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            return None
    if not isinstance(raw, list):
        return None
    out = []
    for message in raw:
        if not isinstance(message, dict):
            return None
        role, content = message.get("role"), message.get("content")
        if role not in _ROLES or not (content is None or isinstance(content, str)):
            return None
        content = content or ""
        if role == "tool":
            role, content = "user", (TOOL_PREFIX + content if content.strip() else "")
        out.append({"role": role, "content": content})
    return out


def _json_value(raw: Any, default: Any) -> Any:
    if raw is None:
        return default
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw
    return raw


def _conversation(row: dict[str, Any]) -> tuple[str | None, list[dict[str, str]]] | str:
    messages = parse_messages(row.get("messages"))
    if messages is None:
        return "malformed_messages"
    system = row.get("system_prompt")
    if system is not None and not isinstance(system, str):
        return "malformed_messages"
    if system is not None and not system.strip():
        system = None
    if any(m["role"] == "system" for m in messages):
        system = None  # the conversation carries its own system turn
    if any(not m["content"].strip() for m in messages):
        return "empty_content"
    if not any(m["role"] == "user" for m in messages):
        return "no_user_turn"
    return system, messages


def prepare_example(row: dict[str, Any], counter: TokenCounter, max_tokens: int) -> dict[str, Any] | str:
    """An SFT example ready for the builders, or the drop reason."""
    conversation = _conversation(row)
    if isinstance(conversation, str):
        return conversation
    system, messages = conversation
    completion = row.get("completion")
    if not isinstance(completion, str) or not completion.strip():
        return "empty_content"
    chat = ([{"role": "system", "content": system}] if system else []) + messages
    tokens = counter.chat_tokens([*chat, {"role": "assistant", "content": completion}])
    if tokens > max_tokens:
        return "too_many_tokens"
    return _record(
        row,
        "example_id",
        system,
        messages,
        completion=completion,
        completion_source=row.get("completion_source"),
        score_reasons=_json_value(row.get("score_reasons"), []),
        context=_context(row.get("context")),
        tokens=tokens,
        assistant_tokens=counter.count(completion),
    )


def prepare_pair(row: dict[str, Any], counter: TokenCounter, max_tokens: int, method: str) -> dict[str, Any] | str:
    """A preference (dpo) or contrastive (embedding) pair ready for the builders, or the drop reason."""
    conversation = _conversation(row)
    if isinstance(conversation, str):
        return conversation
    system, messages = conversation
    chosen, rejected = row.get("chosen"), row.get("rejected")
    if not isinstance(chosen, str) or not isinstance(rejected, str) or not chosen.strip() or not rejected.strip():
        return "empty_content"
    if chosen.strip() == rejected.strip():
        return "identical_outputs"
    if method == "embedding":
        anchor = next(m["content"] for m in reversed(messages) if m["role"] == "user")
        tokens = sum(counter.count_many((anchor, chosen, rejected)))
        answer_tokens = counter.count(chosen)
    else:
        chat = ([{"role": "system", "content": system}] if system else []) + messages
        prompt = counter.chat_tokens(chat)
        answer_tokens = counter.count(chosen)
        # OpenAI counts the prompt once with each output: both completions are trained tokens
        tokens = prompt + answer_tokens + counter.count(rejected) + 2 * 3
    if tokens > max_tokens:
        return "too_many_tokens"
    return _record(
        row,
        "pair_id",
        system,
        messages,
        chosen=chosen,
        rejected=rejected,
        source=row.get("source"),
        tokens=tokens,
        assistant_tokens=answer_tokens,
    )


def _record(row: dict[str, Any], id_column: str, system: str | None, messages: list, **fields: Any) -> dict[str, Any]:
    """The fields every prepared record has (id, task, group, score, prompt), plus its own."""
    return {
        "id": str(row.get(id_column)),
        "task": str(row.get("task")),
        "group": str(row.get("group_id") or row.get(id_column)),
        "system": system,
        "messages": messages,
        "score": _score(row.get("score")),
        **fields,
    }


def content_key(prepared: dict[str, Any]) -> int:
    """Hash of what a model would learn from the record: duplicates share it."""
    turns = "\x1e".join(f"{m['role']}\x1f{m['content']}" for m in prepared["messages"])
    answers = "\x1e".join(prepared.get(k) or "" for k in ("completion", "chosen", "rejected"))
    return key_hash(f"{prepared.get('system') or ''}\x1d{turns}\x1d{answers}")


def _score(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) or math.isinf(number) else round(number, 4)


def _context(raw: Any) -> dict[str, Any]:
    value = _json_value(raw, {})
    return value if isinstance(value, dict) else {"context": value}
