"""Shapes of every training-file format, and the per-row drop rules."""

from __future__ import annotations

import json

import pytest

from pipeline.training_files import formats
from pipeline.training_files.format_rules import format_errors
from pipeline.training_files.prepare import TOOL_PREFIX, prepare_example, prepare_pair
from pipeline.training_files.tokens import TokenCounter, encoding_for_model
from pipeline_tests.training_files_helpers import example, pair

COUNTER = TokenCounter("o200k_base")


def _sft(**kw):
    prepared = prepare_example(example(1, **kw), COUNTER, 16_385)
    assert isinstance(prepared, dict), prepared
    return prepared


def _pair(method="dpo", **kw):
    prepared = prepare_pair(pair(1, **kw), COUNTER, 16_385, method)
    assert isinstance(prepared, dict), prepared
    return prepared


def test_openai_chat_has_system_conversation_and_answer():
    record = formats.openai_chat(_sft(prompt="Make a page", completion='{"sections": []}'))
    assert record == {
        "messages": [
            {"role": "system", "content": "You build landing pages as JSON."},
            {"role": "user", "content": "Make a page"},
            {"role": "assistant", "content": '{"sections": []}'},
        ]
    }
    assert format_errors("openai_chat", record) == []


def test_openai_chat_weights_train_only_the_final_answer():
    messages = [
        {"role": "user", "content": "Make a page"},
        {"role": "assistant", "content": "draft"},
        {"role": "user", "content": "Add pricing"},
    ]
    record = formats.openai_chat(_sft(messages=messages, completion="final"))
    weights = [(m["role"], m.get("weight")) for m in record["messages"]]
    assert weights == [("system", None), ("user", None), ("assistant", 0), ("user", None), ("assistant", 1)]
    assert format_errors("openai_chat", record) == []
    # TRL's messages type has no weights
    assert all("weight" not in m for m in formats.trl_messages(_sft(messages=messages))["messages"])


def test_trl_formats_are_conversational():
    prepared = _sft(prompt="Q", completion="A")
    assert formats.trl_messages(prepared)["messages"][-1] == {"role": "assistant", "content": "A"}
    pc = formats.trl_prompt_completion(prepared)
    assert [m["role"] for m in pc["prompt"]] == ["system", "user"]
    assert pc["completion"] == [{"role": "assistant", "content": "A"}]
    for fmt in ("trl_messages", "trl_prompt_completion"):
        assert format_errors(fmt, formats.build(fmt, prepared)) == []


def test_instruction_format_follows_the_seed():
    messages = [
        {"role": "user", "content": "Make a cafe page"},
        {"role": "assistant", "content": "Here it is"},
        {"role": "user", "content": "Create a landing page for a sailing school"},
    ]
    record = formats.instruction(_sft(messages=messages, completion='{"version":"1.0"}'))
    assert set(record) == {"instruction", "input", "output", "metadata"}
    assert record["instruction"] == "Create a landing page for a sailing school"
    assert record["input"].splitlines()[:2] == ["Industry: maritime", "Location: Baltic Sea"]
    assert "user: Make a cafe page" in record["input"]
    assert record["output"] == '{"version":"1.0"}'
    assert record["metadata"] == {
        "example_type": "page_generation",
        "quality_score": 6.0,
        "completion_source": "response",
        "signals": ["thumbs_up"],
    }


def test_openai_dpo_and_trl_preference():
    prepared = _pair(prompt="Roast my shoes", chosen="Good", rejected="Bad")
    dpo = formats.openai_dpo(prepared)
    assert dpo == {
        "input": {"messages": [
            {"role": "system", "content": "You write in the brand's voice."},
            {"role": "user", "content": "Roast my shoes"},
        ]},
        "preferred_output": [{"role": "assistant", "content": "Good"}],
        "non_preferred_output": [{"role": "assistant", "content": "Bad"}],
    }
    pref = formats.trl_preference(prepared)
    assert pref["prompt"] == dpo["input"]["messages"]
    assert pref["chosen"] == dpo["preferred_output"] and pref["rejected"] == dpo["non_preferred_output"]
    assert format_errors("openai_dpo", dpo) == [] and format_errors("trl_preference", pref) == []


def test_embedding_triplet():
    prepared = _pair("embedding", task="signal_extraction", prompt="AI pricing", chosen="kept chunk", rejected="skipped chunk")
    assert formats.embedding_triplet(prepared) == {"anchor": "AI pricing", "positive": "kept chunk", "negative": "skipped chunk"}


def test_formats_follow_method_and_backend_format_is_among_them():
    from pipeline.core.artifacts import BACKEND_FORMAT

    for (backend, method), fmt in BACKEND_FORMAT.items():
        assert fmt in formats.formats_for(method), (backend, method)
    with pytest.raises(ValueError, match="unknown method"):
        formats.formats_for("rlhf")


def test_dumps_is_stable():
    assert formats.dumps({"b": 1, "a": "é"}) == '{"a":"é","b":1}'


def test_tool_turns_become_user_context():
    messages = [{"role": "user", "content": "Book it"}, {"role": "tool", "content": "slot 3pm free"}]
    prepared = _sft(messages=messages)
    assert prepared["messages"][1] == {"role": "user", "content": TOOL_PREFIX + "slot 3pm free"}
    assert format_errors("openai_chat", formats.openai_chat(prepared)) == []


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"completion": "  "}, "empty_content"),
        ({"messages": [{"role": "user", "content": " "}]}, "empty_content"),
        ({"messages": [{"role": "assistant", "content": "hello"}]}, "no_user_turn"),
        ({"messages": "not json"}, "malformed_messages"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "malformed_messages"),
        ({"completion": "word " * 20_000}, "too_many_tokens"),
    ],
)
def test_bad_examples_are_dropped_with_a_reason(change, reason):
    row = example(1)
    row.update({k: json.dumps(v) if k == "messages" and not isinstance(v, str) else v for k, v in change.items()})
    assert prepare_example(row, COUNTER, 16_385) == reason


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"chosen": ""}, "empty_content"),
        ({"rejected": None}, "empty_content"),
        ({"chosen": "same", "rejected": "same "}, "identical_outputs"),
        ({"messages": json.dumps([{"role": "assistant", "content": "x"}])}, "no_user_turn"),
    ],
)
def test_bad_pairs_are_dropped_with_a_reason(change, reason):
    row = pair(1)
    row.update(change)
    assert prepare_pair(row, COUNTER, 16_385, "dpo") == reason


def test_encoding_per_model_family():
    assert encoding_for_model("gpt-4.1-mini-2025-04-14").encoding == "o200k_base"
    assert encoding_for_model("gpt-4o-mini-2024-07-18").exact
    assert encoding_for_model("gpt-3.5-turbo-0125").encoding == "cl100k_base"
    assert encoding_for_model("ft:gpt-3.5-turbo-0125:acme::abc").encoding == "cl100k_base"
    fallback = encoding_for_model("HuggingFaceTB/SmolLM2-135M-Instruct")
    assert fallback.encoding == "o200k_base" and not fallback.exact


def test_chat_tokens_count_like_the_cookbook():
    import bpe_openai

    enc = bpe_openai.get_encoding("cl100k_base")
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there, how are you?"}]
    expected = 3 + sum(3 + len(enc.encode(m["role"])) + len(enc.encode(m["content"])) for m in messages)
    assert TokenCounter("cl100k_base").chat_tokens(messages) == expected
    assert TokenCounter("cl100k_base").count_many(["", "hello world"]) == [0, 2]


def test_files_load_with_the_datasets_library(tmp_path):
    from datasets import load_dataset

    path = tmp_path / "train.jsonl"
    prepared = _sft()
    path.write_text(
        "\n".join(formats.dumps(formats.build("trl_prompt_completion", prepared)) for _ in range(3)) + "\n",
        encoding="utf-8",
    )
    ds = load_dataset("json", data_files=str(path), split="train", cache_dir=str(tmp_path / "cache"))
    assert ds.num_rows == 3 and ds[0]["completion"][0]["role"] == "assistant"
