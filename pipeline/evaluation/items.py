"""The items a target's models are judged on: its held-out split, a frozen set, or both.

The held-out items are the validation rows of the candidate's dataset version, written by
`training_file` as `evaluation/items.jsonl` (id, task, prompt, the answer people kept, and the
one they passed over for pairs); no trainer reads that file. The split keeps conversations and
prompts on one side and is seeded by a hash of each component's key, so an item stays held out
from one dataset version to the next and the champion (trained on an earlier version) has not
seen it either.

A target may also name a frozen evaluation set (`gates.eval_set`, a JSONL file of the same
records a team curates), used instead of the held-out items (`eval_set_mode: instead`) or beside
them (`beside`, the default). Items are capped per target (`gates.max_eval_items`) by a seeded sample that keeps
each task's share, so evaluation work is bounded and the same items are drawn every time.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class EvalSetError(ValueError):
    """A frozen evaluation set that cannot be used as is; the message names the file, line and field."""


@dataclass(frozen=True)
class EvalItem:
    """One held-out item: the prompt every model gets, and what people kept (and passed over)."""

    id: str
    task: str
    prompt: tuple[dict[str, str], ...]
    reference: str
    rejected: str | None = None
    source: str = "heldout"  # heldout | frozen
    group: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def query(self) -> str:
        """The last user turn: the query of an embedding item."""
        return next(m["content"] for m in reversed(self.prompt) if m["role"] == "user")


def _item(record: Any, *, source: str, where: str, needs_rejected: bool) -> EvalItem:
    if not isinstance(record, dict):
        raise EvalSetError(f"{where}: not a JSON object")
    prompt = record.get("prompt")
    if isinstance(prompt, str):
        prompt = [{"role": "user", "content": prompt}]
    if (
        not isinstance(prompt, list)
        or not prompt
        or not all(isinstance(m, dict) and isinstance(m.get("content"), str) and m.get("role") in {"system", "user", "assistant"} for m in prompt)
        or not any(m["role"] == "user" for m in prompt)
    ):
        raise EvalSetError(f"{where}: 'prompt' must be a string or a list of {{role, content}} messages with a user turn")
    for key in ("id", "task", "reference"):
        if not isinstance(record.get(key), str) or not record[key].strip():
            raise EvalSetError(f"{where}: {key!r} must be a non-empty string")
    rejected = record.get("rejected")
    if needs_rejected and (not isinstance(rejected, str) or not rejected.strip()):
        raise EvalSetError(f"{where}: 'rejected' (the answer people passed over) is required for this target's method")
    known = {"id", "task", "prompt", "reference", "rejected", "group"}
    return EvalItem(
        id=record["id"], task=record["task"], prompt=tuple({"role": m["role"], "content": m["content"]} for m in prompt),
        reference=record["reference"], rejected=rejected if isinstance(rejected, str) else None, source=source,
        group=record.get("group"), extra={k: v for k, v in record.items() if k not in known},
    )


def read_items(path: str | Path, *, source: str, needs_rejected: bool) -> list[EvalItem]:
    """Every item of a JSONL file; a bad line raises EvalSetError with its line number (never skipped silently)."""
    path = Path(path)
    if not path.exists():
        raise EvalSetError(f"evaluation set {path} does not exist (fix the target's gates.eval_set in targets.yaml)")
    items, seen = [], set()
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise EvalSetError(f"{where}: not JSON ({exc.msg})") from None
            item = _item(record, source=source, where=where, needs_rejected=needs_rejected)
            if item.id in seen:
                raise EvalSetError(f"{where}: id {item.id!r} appears twice")
            seen.add(item.id)
            items.append(item)
    return items


def cap_items(items: list[EvalItem], cap: int | None, seed: int) -> list[EvalItem]:
    """At most `cap` items: a seeded sample that keeps each task's share (largest remainders), in id order."""
    if cap is None or len(items) <= cap:
        return sorted(items, key=lambda i: (i.source, i.id))
    by_task: dict[str, list[EvalItem]] = defaultdict(list)
    for item in sorted(items, key=lambda i: (i.source, i.id)):
        by_task[item.task].append(item)
    quotas = {task: cap * len(group) / len(items) for task, group in by_task.items()}
    counts = {task: int(q) for task, q in quotas.items()}
    for task in sorted(quotas, key=lambda t: (counts[t] - quotas[t], t))[: cap - sum(counts.values())]:
        counts[task] += 1
    rng = random.Random(seed)
    chosen = [item for task in sorted(by_task) for item in rng.sample(by_task[task], counts[task])]
    return sorted(chosen, key=lambda i: (i.source, i.id))


def evaluation_items(
    manifest: dict[str, Any],
    *,
    method: str,
    eval_set: str | None = None,
    eval_set_mode: str = "beside",
    cap: int | None = None,
    seed: int = 42,
) -> list[EvalItem]:
    """The items for a target's evaluation: held-out items of `manifest`'s version and/or the frozen set, capped."""
    needs_rejected = method in ("dpo", "embedding")
    items: list[EvalItem] = []
    if not (eval_set and eval_set_mode == "instead"):
        path = manifest.get("evaluation_items")
        if path:
            items += read_items(path, source="heldout", needs_rejected=needs_rejected)
    if eval_set:
        items += read_items(eval_set, source="frozen", needs_rejected=needs_rejected)
    return cap_items(items, cap, seed)
