"""Pure builders: one prepared example or pair -> one record in each training-file format.

A *prepared* record is what `prepare.py` makes of an anonymized row once it has passed the drop
rules: plain dicts with `system` (str or None), `messages` (the conversation up to the answer,
roles system/user/assistant only) and either `completion` (SFT) or `chosen`/`rejected` (pairs).

Formats (the names are the keys of a manifest's `files`):

========================  =================================================================
openai_chat               {"messages": [system?, ...conversation, assistant]}; earlier
                          assistant turns get `weight: 0` so only the answer is trained
openai_dpo                {"input": {"messages": [...]}, "preferred_output": [assistant],
                          "non_preferred_output": [assistant]}
trl_messages              {"messages": [...]}: TRL's conversational language-modeling type
trl_prompt_completion     {"prompt": [...], "completion": [assistant]}: conversational
trl_preference            {"prompt": [...], "chosen": [assistant], "rejected": [assistant]}
instruction               {"instruction", "input", "output", "metadata"}: the page-builder seed
embedding_triplets        {"anchor", "positive", "negative"}: sentence-transformers triplets
========================  =================================================================
"""

from __future__ import annotations

import json
from typing import Any

from pipeline.core.canonical import canonical_json

SFT_FORMATS = ("openai_chat", "trl_messages", "trl_prompt_completion", "instruction")
DPO_FORMATS = ("openai_dpo", "trl_preference")
EMBEDDING_FORMATS = ("embedding_triplets",)
FORMATS_BY_METHOD = {"sft": SFT_FORMATS, "dpo": DPO_FORMATS, "embedding": EMBEDDING_FORMATS}
ALL_FORMATS = SFT_FORMATS + DPO_FORMATS + EMBEDDING_FORMATS


def formats_for(method: str) -> tuple[str, ...]:
    """The formats a target of this method gets (the backend's own is one of them)."""
    try:
        return FORMATS_BY_METHOD[method]
    except KeyError:
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(FORMATS_BY_METHOD)}") from None


def _assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def prompt_messages(prepared: dict[str, Any]) -> list[dict[str, str]]:
    """System prompt (when there is one) followed by the conversation up to the answer."""
    head = [{"role": "system", "content": prepared["system"]}] if prepared.get("system") else []
    return head + [{"role": m["role"], "content": m["content"]} for m in prepared["messages"]]


def openai_chat(prepared: dict[str, Any]) -> dict[str, Any]:
    messages = prompt_messages(prepared)
    if any(m["role"] == "assistant" for m in messages):
        # earlier answers are context, not targets: train on the final answer only
        messages = [dict(m, weight=0) if m["role"] == "assistant" else m for m in messages]
        return {"messages": [*messages, dict(_assistant(prepared["completion"]), weight=1)]}
    return {"messages": [*messages, _assistant(prepared["completion"])]}


def trl_messages(prepared: dict[str, Any]) -> dict[str, Any]:
    return {"messages": [*prompt_messages(prepared), _assistant(prepared["completion"])]}


def trl_prompt_completion(prepared: dict[str, Any]) -> dict[str, Any]:
    return {"prompt": prompt_messages(prepared), "completion": [_assistant(prepared["completion"])]}


def instruction(prepared: dict[str, Any]) -> dict[str, Any]:
    """The seed's `{"instruction", "input", "output", "metadata"}` record.

    `instruction` is the last user turn; `input` is the context the model had (one `Key: value`
    line per context field, then earlier turns of the conversation); `output` the answer.
    """
    messages = prepared["messages"]
    last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
    lines = [f"{_label(k)}: {_text(v)}" for k, v in sorted((prepared.get("context") or {}).items())]
    earlier = messages[:last_user] + messages[last_user + 1 :]
    if earlier:
        lines.append("Conversation so far:")
        lines.extend(f"{m['role']}: {m['content']}" for m in earlier)
    return {
        "instruction": messages[last_user]["content"],
        "input": "\n".join(lines),
        "output": prepared["completion"],
        "metadata": {
            "example_type": prepared["task"],
            "quality_score": prepared.get("score"),
            "completion_source": prepared.get("completion_source"),
            "signals": prepared.get("score_reasons") or [],
        },
    }


def openai_dpo(prepared: dict[str, Any]) -> dict[str, Any]:
    return {
        "input": {"messages": prompt_messages(prepared)},
        "preferred_output": [_assistant(prepared["chosen"])],
        "non_preferred_output": [_assistant(prepared["rejected"])],
    }


def trl_preference(prepared: dict[str, Any]) -> dict[str, Any]:
    return {
        "prompt": prompt_messages(prepared),
        "chosen": [_assistant(prepared["chosen"])],
        "rejected": [_assistant(prepared["rejected"])],
    }


def embedding_triplet(prepared: dict[str, Any]) -> dict[str, Any]:
    """(anchor, positive, negative): the query, the item kept, the item passed over."""
    anchor = next(m["content"] for m in reversed(prepared["messages"]) if m["role"] == "user")
    return {"anchor": anchor, "positive": prepared["chosen"], "negative": prepared["rejected"]}


def evaluation_item(prepared: dict[str, Any]) -> dict[str, Any]:
    """A held-out row as evaluation reads it: id, task, group, the prompt, and the answer(s) people kept.

    `reference` is the accepted / labelled / edited answer (SFT, and `chosen` for DPO and
    embedding rows); `rejected` is the answer passed over (DPO, embedding), absent otherwise.
    """
    item: dict[str, Any] = {
        "id": prepared["id"],
        "task": prepared["task"],
        "group": prepared.get("group"),
        "prompt": prompt_messages(prepared),
    }
    if "completion" in prepared:
        item["reference"] = prepared["completion"]
    else:
        item["reference"] = prepared["chosen"]
        item["rejected"] = prepared["rejected"]
    return item


BUILDERS = {
    "openai_chat": openai_chat,
    "trl_messages": trl_messages,
    "trl_prompt_completion": trl_prompt_completion,
    "instruction": instruction,
    "openai_dpo": openai_dpo,
    "trl_preference": trl_preference,
    "embedding_triplets": embedding_triplet,
}


def build(fmt: str, prepared: dict[str, Any]) -> dict[str, Any]:
    return BUILDERS[fmt](prepared)


def dumps(record: dict[str, Any]) -> str:
    """One JSONL line: sorted keys, compact, UTF-8 kept (stable bytes for stable versions)."""
    return canonical_json(record)


def _label(key: str) -> str:
    return str(key).replace("_", " ").capitalize()


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)
