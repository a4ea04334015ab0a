"""Building a dataset version from an anonymized parquet: counts, drops, versions, bytes."""

from __future__ import annotations

import json
import random

import pytest

from pipeline.core.artifacts import read_manifest
from pipeline.training_files.build import TrainingFileInputError, build_training_files
from pipeline.training_files.prepare import key_hash, normalize_prompt
from pipeline.training_files.validate import format_gate, prompt_of, size_gate, uniqueness_gate
from pipeline_tests.training_files_helpers import (
    example,
    make_target,
    pair,
    read_jsonl,
    write_examples,
    write_pairs,
)


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("FLYWHEEL_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _bytes(manifest):
    out = {}
    for fmt, splits in manifest["files"].items():
        for split, path in splits.items():
            if path:
                with open(path, "rb") as handle:
                    out[f"{fmt}/{split}"] = handle.read()
    return out


def _rows(n=120):
    rows = [example(i, task="page_generation" if i % 3 else "section_edit", group=f"conv{i // 2}") for i in range(n)]
    rows += [
        example(1000, completion="   "),  # redacted to nothing
        example(1001, messages=[{"role": "user", "content": ""}]),
        example(1002, messages=[{"role": "assistant", "content": "Hi, how can I help?"}]),  # no user turn
        example(1003, completion="token " * 17_000),  # over 16,385 tokens
        example(1004, prompt="Create a landing page for business number 4.", completion=json.dumps({"sections": [{"type": "hero", "n": 4}]})),
        example(1005, messages="[{broken"),
    ]
    return rows


def test_sft_build_counts_add_up_and_drops_have_reasons():
    target = make_target("sft_openai")
    write_examples(target.name, _rows())
    result = build_training_files(target)
    counts = result.manifest["counts"]
    assert counts["input_rows"] == 126
    assert counts["dropped"] == {
        "duplicate": 1, "empty_content": 2, "identical_outputs": 0,
        "malformed_messages": 1, "no_user_turn": 1, "too_many_tokens": 1,
    }
    assert counts["written"] == 120 == counts["train"] + counts["validation"]
    assert counts["input_rows"] == counts["written"] + sum(counts["dropped"].values())
    dropped = read_jsonl(result.manifest["dropped_file"])
    # of two identical examples the one with the larger id hash goes, whatever the row order
    twin = max(["ex000004", "ex001004"], key=key_hash)
    assert {d["id"]: d["reason"] for d in dropped} == {
        "ex001000": "empty_content", "ex001001": "empty_content", "ex001002": "no_user_turn",
        "ex001003": "too_many_tokens", twin: "duplicate", "ex001005": "malformed_messages",
    }
    assert set(counts["by_task"]) == {"page_generation", "section_edit"}
    assert result.manifest["backend_format"] == "openai_chat"
    assert set(result.manifest["files"]) == {"openai_chat", "trl_messages", "trl_prompt_completion", "instruction"}
    for fmt, splits in result.manifest["files"].items():
        assert len(read_jsonl(splits["train"])) == counts["train"], fmt
        assert len(read_jsonl(splits["validation"])) == counts["validation"], fmt
    assert read_manifest(target.name, result.version) == result.manifest
    assert format_gate(result.manifest).passed
    assert uniqueness_gate(result.manifest).passed
    assert size_gate(result.manifest, min_examples=10, max_tokens=16_385).passed
    assert result.manifest["source"]["occurred_at"] == {"min": "2026-10-01T12:00:00Z", "max": "2026-10-28T12:00:00Z"}


def test_conversations_never_straddle_the_split():
    target = make_target("sft_openai")
    write_examples(target.name, _rows(300))
    manifest = build_training_files(target).manifest
    by_split = {}
    for split in ("train", "validation"):
        records = read_jsonl(manifest["files"]["instruction"][split])
        by_split[split] = {r["instruction"] for r in records}
    assert by_split["validation"] and not by_split["train"] & by_split["validation"]


def _conversation_rows(kind: str, conversations: int = 60, turns: int = 4) -> tuple[list[dict], dict[str, str]]:
    """Rows of multi-turn conversations whose turns all ask different prompts; prompt -> conversation."""
    rows, conversation_of = [], {}
    for c in range(conversations):
        for t in range(turns):
            i = c * turns + t
            prompt = f"Conversation {c}, turn {t}: a question of its own about topic {i * 7919 % 1000}."
            conversation_of[normalize_prompt(prompt)] = f"conv{c}"
            if kind == "examples":
                rows.append(example(i, prompt=prompt, group=f"conv{c}"))
            else:
                rows.append(pair(i, task="signal_extraction" if kind == "embedding" else "roast", prompt=prompt,
                                 group_id=f"conv{c}"))
    return rows, conversation_of


@pytest.mark.parametrize("target_name, kind", [("sft_openai", "examples"), ("dpo_openai", "pairs"), ("embed", "embedding")])
def test_a_conversation_with_different_prompts_stays_on_one_side(target_name, kind):
    """No prompt repeats, so only the grouping by conversation (group_id) keeps the turns together."""
    target = make_target(target_name)
    rows, conversation_of = _conversation_rows(kind)
    (write_examples if kind == "examples" else write_pairs)(target.name, rows)
    manifest = build_training_files(target).manifest
    fmt = manifest["backend_format"]
    sides: dict[str, set[str]] = {}
    for split in ("train", "validation"):
        for record in read_jsonl(manifest["files"][fmt][split]):
            sides.setdefault(conversation_of[prompt_of(fmt, record)], set()).add(split)
    assert len(sides) == 60 and manifest["counts"]["validation"] > 0
    straddling = sorted(c for c, s in sides.items() if len(s) > 1)
    assert not straddling, f"conversations in both train and validation: {straddling[:5]}"
    assert sum(1 for s in sides.values() if s == {"validation"}) >= 3  # whole conversations went to validation


def test_same_input_same_version_and_bytes_in_any_row_order(home):
    target = make_target("sft_openai")
    rows = _rows()
    write_examples(target.name, rows)
    first = build_training_files(target)
    first_bytes = _bytes(first.manifest)
    manifest_bytes = first.manifest_path.read_bytes()

    shuffled = rows[:]
    random.Random(5).shuffle(shuffled)
    write_examples(target.name, shuffled)
    second = build_training_files(target)
    assert second.version == first.version
    assert _bytes(second.manifest) == first_bytes
    assert second.manifest_path.read_bytes() == manifest_bytes  # created_at kept from the first write

    rows[0] = example(0, completion="a changed answer", group="conv0")
    write_examples(target.name, rows)
    assert build_training_files(target).version != first.version


def test_version_follows_formatting_config_not_budget():
    target = make_target("sft_openai")
    write_examples(target.name, _rows())
    base = build_training_files(target).version
    cheaper = target.model_copy(update={"training_file": target.training_file.model_copy(update={"budget_usd": 1.0})})
    assert build_training_files(cheaper).version == base
    reseeded = target.model_copy(update={"training_file": target.training_file.model_copy(update={"seed": 7})})
    assert build_training_files(reseeded).version != base


def test_dpo_build():
    target = make_target("dpo_openai")
    rows = [pair(i) for i in range(40)] + [pair(100, chosen="same", rejected="same"), pair(101, rejected="")]
    write_pairs(target.name, rows)
    manifest = build_training_files(target).manifest
    assert manifest["backend_format"] == "openai_dpo"
    assert set(manifest["files"]) == {"openai_dpo", "trl_preference"}
    assert manifest["counts"]["written"] == 40
    assert manifest["counts"]["dropped"]["identical_outputs"] == 1
    assert manifest["counts"]["dropped"]["empty_content"] == 1
    record = read_jsonl(manifest["files"]["openai_dpo"]["train"])[0]
    assert set(record) == {"input", "preferred_output", "non_preferred_output"}
    assert manifest["cost"]["price_per_million_usd"] == 3.0
    assert format_gate(manifest).passed


def test_embedding_build():
    target = make_target("embed")
    rows = [pair(i, task="signal_extraction", prompt=f"topic {i}", chosen=f"saved chunk {i}", rejected=f"skipped chunk {i}", source="saved_vs_skipped") for i in range(30)]
    write_pairs(target.name, rows)
    manifest = build_training_files(target).manifest
    assert manifest["backend_format"] == "embedding_triplets"
    first = read_jsonl(manifest["files"]["embedding_triplets"]["train"])[0]
    assert set(first) == {"anchor", "positive", "negative"}
    assert manifest["tokens"]["exact"] is False  # not an OpenAI model: o200k is an estimate
    assert manifest["cost"]["cost_usd"] == 0.0


def test_missing_input_says_what_to_do():
    with pytest.raises(TrainingFileInputError, match="materialize anonymized_dataset for target 'sft_openai' first"):
        build_training_files(make_target("sft_openai"))


def test_missing_columns_are_named():
    import pandas as pd

    from pipeline.core.artifacts import anonymized_dir

    pd.DataFrame({"example_id": ["a"], "task": ["x"]}).to_parquet(anonymized_dir("sft_openai") / "examples.parquet")
    with pytest.raises(TrainingFileInputError, match="lacks the columns messages, completion"):
        build_training_files(make_target("sft_openai"))


def test_no_validation_rows_leaves_no_validation_file():
    target = make_target("sft_openai")
    target = target.model_copy(update={"training_file": target.training_file.model_copy(update={"validation_share": 0.0})})
    write_examples(target.name, _rows(20))
    manifest = build_training_files(target).manifest
    assert manifest["counts"]["validation"] == 0
    assert all(splits["validation"] is None for splits in manifest["files"].values())
    assert manifest["evaluation_items"] is None


@pytest.mark.parametrize("target_name, kind", [("sft_openai", "examples"), ("dpo_openai", "pairs"), ("embed", "embedding")])
def test_evaluation_items_are_exactly_the_validation_rows(target_name, kind):
    """evaluated_model scores models on these: the held-out rows, never a training row, with the answer kept."""
    target = make_target(target_name)
    rows, _ = _conversation_rows(kind)
    (write_examples if kind == "examples" else write_pairs)(target.name, rows)
    manifest = build_training_files(target).manifest
    fmt = manifest["backend_format"]
    items = read_jsonl(manifest["evaluation_items"])
    prompts = {split: {prompt_of(fmt, r) for r in read_jsonl(manifest["files"][fmt][split])} for split in ("train", "validation")}
    item_prompts = {next(m["content"] for m in reversed(i["prompt"]) if m["role"] == "user") for i in items}
    assert len(items) == manifest["counts"]["validation"] > 0
    assert {normalize_prompt(p) for p in item_prompts} == {normalize_prompt(p) for p in prompts["validation"]}
    assert not {normalize_prompt(p) for p in item_prompts} & {normalize_prompt(p) for p in prompts["train"]}
    assert all(i["reference"] and i["task"] for i in items)
    assert all(("rejected" in i) == (kind != "examples") for i in items)
