"""Evaluation items: read from the held-out file or a frozen set, bad lines named, capped by task share."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from pipeline.evaluation.items import EvalItem, EvalSetError, cap_items, evaluation_items, read_items


def _write(path, records):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")
    return path


def _record(i, task="page_generation", **extra):
    return {"id": f"e{i}", "task": task, "prompt": [{"role": "user", "content": f"prompt {i}"}], "reference": f"answer {i}", **extra}


def test_heldout_and_frozen_items_are_read_and_marked(tmp_path):
    held = _write(tmp_path / "items.jsonl", [_record(i) for i in range(3)])
    frozen = _write(tmp_path / "frozen.jsonl", [{"id": "f1", "task": "page_generation", "prompt": "a plain prompt", "reference": "x"}])
    manifest = {"evaluation_items": str(held)}
    both = evaluation_items(manifest, method="sft", eval_set=str(frozen))
    assert Counter(i.source for i in both) == {"heldout": 3, "frozen": 1}
    assert next(i for i in both if i.source == "frozen").prompt == ({"role": "user", "content": "a plain prompt"},)
    only = evaluation_items(manifest, method="sft", eval_set=str(frozen), eval_set_mode="instead")
    assert [i.id for i in only] == ["f1"]
    assert evaluation_items({"evaluation_items": None}, method="sft") == []


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        (json.dumps({"id": "a", "task": "t", "prompt": [], "reference": "r"}), "'prompt' must be"),
        (json.dumps({"id": "a", "task": "t", "prompt": [{"role": "assistant", "content": "x"}], "reference": "r"}), "with a user turn"),
        (json.dumps({"id": "a", "task": "t", "prompt": "p", "reference": "  "}), "'reference' must be a non-empty string"),
        (json.dumps({"task": "t", "prompt": "p", "reference": "r"}), "'id' must be"),
    ],
)
def test_a_bad_frozen_line_is_named_with_its_line_number(tmp_path, line, message):
    path = _write(tmp_path / "frozen.jsonl", [_record(1), line])
    with pytest.raises(EvalSetError, match=message) as info:
        read_items(path, source="frozen", needs_rejected=False)
    assert f"{path}:2" in str(info.value)


def test_pairs_need_the_passed_over_answer_and_ids_are_unique(tmp_path):
    with pytest.raises(EvalSetError, match="'rejected'"):
        read_items(_write(tmp_path / "a.jsonl", [_record(1)]), source="frozen", needs_rejected=True)
    with pytest.raises(EvalSetError, match="appears twice"):
        read_items(_write(tmp_path / "b.jsonl", [_record(1), _record(1)]), source="frozen", needs_rejected=False)
    with pytest.raises(EvalSetError, match="does not exist"):
        read_items(tmp_path / "missing.jsonl", source="frozen", needs_rejected=False)


def test_the_cap_keeps_task_shares_and_draws_the_same_items_for_a_seed():
    items = [EvalItem(id=f"a{i}", task="a", prompt=({"role": "user", "content": "p"},), reference="r") for i in range(60)]
    items += [EvalItem(id=f"b{i}", task="b", prompt=({"role": "user", "content": "p"},), reference="r") for i in range(30)]
    items += [EvalItem(id=f"c{i}", task="c", prompt=({"role": "user", "content": "p"},), reference="r") for i in range(10)]
    capped = cap_items(items, 20, seed=7)
    assert Counter(i.task for i in capped) == {"a": 12, "b": 6, "c": 2}
    assert [i.id for i in cap_items(list(reversed(items)), 20, seed=7)] == [i.id for i in capped]
    assert [i.id for i in cap_items(items, 20, seed=8)] != [i.id for i in capped]
    assert len(cap_items(items, None, seed=7)) == 100
