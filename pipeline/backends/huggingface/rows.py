"""Reading TRL training files with the same format rules as the `training_file_format` gate.

A row the gate would refuse is dropped here with the gate's own code (`format_rules` is the one
rule set), so a file that passed the gate never loses rows in the trainer; a file that did not
pass it is refused before training starts (see `pipeline.gates`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.training_files.format_rules import format_errors

#: the TRL formats each method trains on, in the order a record's keys are tried
METHOD_FORMATS = {"sft": ("trl_messages", "trl_prompt_completion"), "dpo": ("trl_preference",)}


@dataclass
class LoadedRows:
    rows: list[dict[str, Any]]
    read: int = 0
    dropped: Counter = field(default_factory=Counter)

    def counts(self) -> dict[str, Any]:
        return {"rows_read": self.read, "rows_valid": len(self.rows), "rows_dropped": dict(self.dropped)}


def record_format(method: str, record: Any) -> str:
    """Which TRL format a record is in: `messages` is a conversation, `prompt` + `completion` a split one."""
    if method not in METHOD_FORMATS:
        raise ValueError(f"the huggingface backend trains sft or dpo, not {method!r}")
    if method == "sft" and isinstance(record, dict) and "messages" not in record and "prompt" in record:
        return "trl_prompt_completion"
    return METHOD_FORMATS[method][0]


def to_row(fmt: str, record: dict[str, Any]) -> dict[str, Any]:
    """A record that passed its format's rules as the trainer's row (conversations keep role and content)."""
    def clean(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
        return [{"role": m["role"], "content": m["content"]} for m in messages]

    if fmt == "trl_messages":
        return {"messages": clean(record["messages"])}
    if fmt == "trl_prompt_completion":
        return {"messages": clean(record["prompt"]) + clean(record["completion"])}
    return {"prompt": clean(record["prompt"]), "chosen": clean(record["chosen"]), "rejected": clean(record["rejected"])}


def read_jsonl_rows(path: str | Path, method: str) -> LoadedRows:
    """Parse a TRL training file; each line that breaks its format's rules is dropped under the rule's code."""
    if method not in METHOD_FORMATS:
        raise ValueError(f"the huggingface backend trains sft or dpo, not {method!r}")
    loaded = LoadedRows(rows=[])
    with Path(path).open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            loaded.read += 1
            try:
                record = json.loads(line)
            except ValueError:
                loaded.dropped["invalid_json"] += 1
                continue
            fmt = record_format(method, record)
            errors = format_errors(fmt, record)
            if errors:
                loaded.dropped[errors[0]] += 1
            else:
                loaded.rows.append(to_row(fmt, record))
    return loaded


def sft_records(rows: Iterable[dict[str, Any]], loss_on: str) -> list[dict[str, Any]]:
    """Rows as TRL wants them: conversations (`assistant`) or prompt + final answer (`final_assistant`)."""
    if loss_on == "assistant":
        return [{"messages": r["messages"]} for r in rows]
    return [{"prompt": r["messages"][:-1], "completion": r["messages"][-1:]} for r in rows]
