"""The one rule set per training-file format: what the `training_file_format` gate checks and
what the trainers accept (the Hugging Face trainer reads its rows through `format_errors` too).

Chat rules follow the OpenAI cookbook's data-preparation notebook (error codes `data_type`,
`missing_messages_list`, `message_missing_key`, `message_unrecognized_key`, `unrecognized_role`,
`missing_content`, `example_missing_assistant_message`), plus OpenAI's DPO format and the shapes
TRL and sentence-transformers read.
"""

from __future__ import annotations

from typing import Any

CHAT_KEYS = ("role", "content", "name", "function_call", "weight")
CHAT_ROLES = ("system", "user", "assistant", "function")


def chat_format_errors(record: Any, *, allow_weight: bool = True) -> list[str]:
    """The cookbook's format errors of one chat example, one code per occurrence."""
    if not isinstance(record, dict):
        return ["data_type"]
    messages = record.get("messages")
    if not messages or not isinstance(messages, list):
        return ["missing_messages_list"]
    errors = _message_errors(messages)
    if not allow_weight and any(isinstance(m, dict) and "weight" in m for m in messages):
        errors.append("message_unrecognized_key")
    if not any(isinstance(m, dict) and m.get("role") == "assistant" for m in messages):
        errors.append("example_missing_assistant_message")
    if not any(isinstance(m, dict) and m.get("role") == "user" for m in messages):
        errors.append("example_missing_user_message")
    for m in messages:
        if isinstance(m, dict) and "weight" in m and (m.get("role") != "assistant" or m["weight"] not in (0, 1)):
            errors.append("invalid_weight")
    return errors


def _message_errors(messages: list[Any]) -> list[str]:
    errors = []
    for message in messages:
        if not isinstance(message, dict):
            errors.append("data_type")
            continue
        if "role" not in message or "content" not in message:
            errors.append("message_missing_key")
        if any(k not in CHAT_KEYS for k in message):
            errors.append("message_unrecognized_key")
        if message.get("role") not in CHAT_ROLES:
            errors.append("unrecognized_role")
        content, function_call = message.get("content"), message.get("function_call")
        if (not content and not function_call) or not isinstance(content, str):
            errors.append("missing_content")
    return errors


def _single_assistant(output: Any) -> bool:
    return (
        isinstance(output, list)
        and len(output) == 1
        and isinstance(output[0], dict)
        and output[0].get("role") == "assistant"
        and isinstance(output[0].get("content"), str)
        and bool(output[0]["content"].strip())
        and set(output[0]) <= {"role", "content"}
    )


def dpo_format_errors(record: Any) -> list[str]:
    """OpenAI's DPO rules: an input conversation ending on a user turn, one preferred and one
    non-preferred assistant message, different from each other."""
    if not isinstance(record, dict):
        return ["data_type"]
    errors = ["unrecognized_key" for k in record if k not in ("input", "preferred_output", "non_preferred_output")]
    source = record.get("input")
    messages = source.get("messages") if isinstance(source, dict) else None
    if not messages or not isinstance(messages, list):
        errors.append("missing_messages_list")
    else:
        errors += _message_errors(messages)
        if not any(isinstance(m, dict) and m.get("role") == "user" for m in messages):
            errors.append("example_missing_user_message")
        elif not isinstance(messages[-1], dict) or messages[-1].get("role") != "user":
            errors.append("input_not_ending_with_user")
        if any(isinstance(m, dict) and "weight" in m for m in messages):
            errors.append("message_unrecognized_key")
    preferred, rejected = record.get("preferred_output"), record.get("non_preferred_output")
    if not _single_assistant(preferred):
        errors.append("invalid_preferred_output")
    if not _single_assistant(rejected):
        errors.append("invalid_non_preferred_output")
    if _single_assistant(preferred) and _single_assistant(rejected) and preferred[0]["content"] == rejected[0]["content"]:
        errors.append("identical_outputs")
    return errors


def _prompt_errors(prompt: Any) -> list[str]:
    if not prompt or not isinstance(prompt, list):
        return ["missing_messages_list"]
    errors = [e for e in _message_errors(prompt)]
    if not any(isinstance(m, dict) and m.get("role") == "user" for m in prompt):
        errors.append("example_missing_user_message")
    return errors


def _strings(record: Any, keys: tuple[str, ...], *, may_be_empty: tuple[str, ...] = ()) -> list[str]:
    if not isinstance(record, dict):
        return ["data_type"]
    errors = [
        "missing_content"
        for k in keys
        if not isinstance(record.get(k), str) or (k not in may_be_empty and not record[k].strip())
    ]
    return errors + ["unrecognized_key" for k in record if k not in keys and k != "metadata"]


def format_errors(fmt: str, record: Any) -> list[str]:
    """The format errors of one record of `fmt`; empty when a trainer would take it."""
    if fmt == "openai_chat":
        return chat_format_errors(record)
    if fmt == "trl_messages":
        return chat_format_errors(record, allow_weight=False)
    if fmt == "openai_dpo":
        return dpo_format_errors(record)
    if not isinstance(record, dict):
        return ["data_type"]
    if fmt == "trl_prompt_completion":
        errors = _prompt_errors(record.get("prompt"))
        return errors + ([] if _single_assistant(record.get("completion")) else ["invalid_completion"])
    if fmt == "trl_preference":
        errors = _prompt_errors(record.get("prompt"))
        errors += [] if _single_assistant(record.get("chosen")) else ["invalid_chosen"]
        errors += [] if _single_assistant(record.get("rejected")) else ["invalid_rejected"]
        if not errors and record["chosen"][0]["content"] == record["rejected"][0]["content"]:
            errors.append("identical_outputs")
        return errors
    if fmt == "instruction":
        errors = _strings(record, ("instruction", "input", "output"), may_be_empty=("input",))
        return errors + ([] if isinstance(record.get("metadata"), dict) else ["missing_metadata"])
    if fmt == "embedding_triplets":
        errors = _strings(record, ("anchor", "positive", "negative"))
        if not errors and record["positive"] == record["negative"]:
            errors.append("identical_outputs")
        return errors
    raise ValueError(f"unknown training-file format {fmt!r}")
