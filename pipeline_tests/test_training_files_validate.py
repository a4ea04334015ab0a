"""The cookbook's format checks, DPO rules, the cost estimate by hand, and each gate failing usefully."""

from __future__ import annotations

import json

import pytest

from pipeline.training_files import validate
from pipeline.training_files.format_rules import chat_format_errors, dpo_format_errors, format_errors
from pipeline.training_files.validate import (
    cost_gate,
    estimate_cost,
    estimate_epochs,
    estimate_remote_cost,
    format_gate,
    size_gate,
    uniqueness_gate,
)

GOOD = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}


@pytest.mark.parametrize(
    ("record", "code"),
    [
        (["not", "a", "dict"], "data_type"),
        ({"prompt": "x"}, "missing_messages_list"),
        ({"messages": []}, "missing_messages_list"),
        ({"messages": [{"role": "user"}, {"role": "assistant", "content": "a"}]}, "message_missing_key"),
        ({"messages": [{"role": "user", "content": "q", "mood": "x"}, {"role": "assistant", "content": "a"}]}, "message_unrecognized_key"),
        ({"messages": [{"role": "wizard", "content": "q"}, {"role": "assistant", "content": "a"}]}, "unrecognized_role"),
        ({"messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": "a"}]}, "missing_content"),
        ({"messages": [{"role": "user", "content": 3}, {"role": "assistant", "content": "a"}]}, "missing_content"),
        ({"messages": [{"role": "user", "content": "q"}]}, "example_missing_assistant_message"),
        ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "weight": 2}]}, "invalid_weight"),
    ],
)
def test_cookbook_format_errors(record, code):
    assert code in chat_format_errors(record)
    assert chat_format_errors(GOOD) == []


def _dpo(**change):
    record = {
        "input": {"messages": [{"role": "user", "content": "q"}]},
        "preferred_output": [{"role": "assistant", "content": "good"}],
        "non_preferred_output": [{"role": "assistant", "content": "bad"}],
    }
    record.update(change)
    return record


@pytest.mark.parametrize(
    ("record", "code"),
    [
        ("text", "data_type"),
        (_dpo(input={}), "missing_messages_list"),
        (_dpo(input={"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}), "input_not_ending_with_user"),
        (_dpo(input={"messages": [{"role": "system", "content": "s"}]}), "example_missing_user_message"),
        (_dpo(preferred_output=[{"role": "user", "content": "good"}]), "invalid_preferred_output"),
        (_dpo(non_preferred_output=[]), "invalid_non_preferred_output"),
        (_dpo(preferred_output=[{"role": "assistant", "content": "a"}, {"role": "assistant", "content": "b"}]), "invalid_preferred_output"),
        (_dpo(non_preferred_output=[{"role": "assistant", "content": "good"}]), "identical_outputs"),
        (_dpo(extra=1), "unrecognized_key"),
    ],
)
def test_dpo_rules(record, code):
    assert code in dpo_format_errors(record)
    assert dpo_format_errors(_dpo()) == []


@pytest.mark.parametrize(
    ("fmt", "record", "code"),
    [
        ("trl_prompt_completion", {"prompt": [{"role": "user", "content": "q"}], "completion": "a"}, "invalid_completion"),
        ("trl_preference", {"prompt": [{"role": "user", "content": "q"}], "chosen": [{"role": "assistant", "content": "a"}], "rejected": [{"role": "assistant", "content": "a"}]}, "identical_outputs"),
        ("instruction", {"instruction": "", "input": "", "output": "o", "metadata": {}}, "missing_content"),
        ("instruction", {"instruction": "i", "input": "", "output": "o"}, "missing_metadata"),
        ("embedding_triplets", {"anchor": "a", "positive": "p"}, "missing_content"),
        ("trl_messages", {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "weight": 1}]}, "message_unrecognized_key"),
    ],
)
def test_other_format_rules(fmt, record, code):
    assert code in format_errors(fmt, record)


@pytest.mark.parametrize(
    ("n_train", "n_epochs", "expected"),
    [
        (10, None, 10),  # 10 * 3 < 100 -> min(25, 100 // 10)
        (3, None, 25),  # 100 // 3 = 33 -> capped at 25
        (50, None, 3),  # 150 is between 100 and 25000
        (10_000, None, 2),  # 30000 > 25000 -> max(1, 25000 // 10000)
        (40_000, None, 1),  # 25000 // 40000 = 0 -> at least 1
        (10, 4, 4),  # the target's n_epochs wins
        (10, "auto", 10),  # "auto" means the heuristic
    ],
)
def test_epoch_heuristic(n_train, n_epochs, expected):
    assert estimate_epochs(n_train, n_epochs)[0] == expected


def test_cost_by_hand():
    # 20 examples of 1,000 tokens and one of 20,000 (billed at the 16,385 cap): 20*1000 + 16385 = 36,385 per epoch
    # 21 examples * 3 < 100 -> 100 // 21 = 4 epochs -> 145,540 tokens; gpt-4.1-mini at $5/1M -> $0.7277
    cost = estimate_cost(
        backend="openai", base_model="gpt-4.1-mini-2025-04-14", method="sft",
        train_tokens=[1000] * 20 + [20_000], max_tokens=16_385, budget_usd=1.0,
    )
    assert cost["billing_tokens_per_epoch"] == 36_385
    assert cost["n_epochs"] == 4
    assert cost["billed_tokens"] == 145_540
    assert cost["price_per_million_usd"] == 5.0
    assert cost["cost_usd"] == pytest.approx(0.7277)


# ---------------------------------------------------------------- gates on written files


def _write(path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")
    return str(path)


def _chat(i, prompt=None):
    return {"messages": [{"role": "user", "content": prompt or f"question {i}"}, {"role": "assistant", "content": f"answer {i}"}]}


def _manifest(tmp_path, train, validation=None, fmt="openai_chat", **extra):
    files = {fmt: {"train": _write(tmp_path / fmt / "train.jsonl", train),
                   "validation": _write(tmp_path / fmt / "validation.jsonl", validation) if validation else None}}
    manifest = {
        "dataset_version": "vtest", "backend_format": fmt, "files": files, "backend": "openai",
        "base_model": "gpt-4.1-mini-2025-04-14", "method": "sft",
        "tokens": {"encoding": "o200k_base"}, "counts": {"dropped": {"empty_content": 2, "duplicate": 0}},
    }
    manifest.update(extra)
    return manifest


def test_format_gate_names_codes_lines_and_next_step(tmp_path):
    bad = [_chat(0), {"messages": [{"role": "user", "content": "q"}]}, "{not json", _chat(3)]
    gate = format_gate(_manifest(tmp_path, bad))
    assert not gate.passed
    assert gate.metadata["bad_records"] == 2
    assert gate.metadata["errors"] == {"example_missing_assistant_message": 1, "invalid_json": 1}
    assert "2 of 4 records" in gate.description and "line 2" in gate.description
    assert "re-materialize training_file" in gate.description
    assert format_gate(_manifest(tmp_path / "ok", [_chat(i) for i in range(3)])).passed


def test_uniqueness_gate_counts_duplicates_and_overlap(tmp_path):
    train = [_chat(i) for i in range(5)] + [_chat(0)]
    validation = [_chat(9, prompt="Question 1  ")]  # the same prompt as train's example 1, normalised
    gate = uniqueness_gate(_manifest(tmp_path, train, validation))
    assert not gate.passed
    assert gate.metadata == {"format": "openai_chat", "duplicates": 1, "overlapping_prompts": 1}
    assert "1 duplicate records and 1 prompts in both train and validation" in gate.description
    assert uniqueness_gate(_manifest(tmp_path / "ok", train[:5], [_chat(7)])).passed


def test_size_gate_too_few_examples_says_what_to_do(tmp_path):
    gate = size_gate(_manifest(tmp_path, [_chat(i) for i in range(6)]), min_examples=50, max_tokens=16_385)
    assert not gate.passed
    assert "only 6 training examples; OpenAI rejects files with fewer than 10" in gate.description
    assert "6 examples kept, the target needs min_examples=50" in gate.description
    assert "empty_content 2" in gate.description
    assert "lower min_examples in targets.yaml" in gate.description
    assert size_gate(_manifest(tmp_path / "ok", [_chat(i) for i in range(12)]), min_examples=10, max_tokens=100).passed


def test_size_gate_over_token_limit(tmp_path):
    records = [_chat(i) for i in range(11)] + [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "long " * 200}]}]
    gate = size_gate(_manifest(tmp_path, records), min_examples=10, max_tokens=100)
    assert not gate.passed and gate.metadata["over_limit"] == 1
    assert "1 examples exceed 100 tokens" in gate.description


def _cost(**over):
    cost = {"n_train_examples": 100, "billing_tokens_per_epoch": 10_000_000, "n_epochs": 3, "n_epochs_source": "heuristic",
            "billed_tokens": 30_000_000, "price_per_million_usd": 5.0, "cost_usd": 150.0, "budget_usd": 50.0}
    cost.update(over)
    return {"cost": cost, "backend": "openai", "base_model": "gpt-x", "method": "sft"}


def test_cost_gate():
    gate = cost_gate(_cost())
    assert not gate.passed
    assert "$150.00, over the target's $50.00 budget by $100.00" in gate.description
    assert "budget_usd" in gate.description and "n_epochs" in gate.description
    assert cost_gate(_cost(cost_usd=10.0)).passed
    unknown = cost_gate(_cost(price_per_million_usd=None, cost_usd=None))
    assert not unknown.passed and "prices.yaml" in unknown.description


def _remote(flavor="a10g-large", timeout="4h", method="sft", budget=50.0, **steps):
    settings = {"max_steps": -1, "epochs": 1.0, "examples_per_step": 2, "max_length": 1024, **steps}
    cost = _cost(budget_usd=budget)["cost"]  # 100 examples, 10,000,000 tokens per epoch
    return estimate_remote_cost(cost, flavor=flavor, timeout=timeout, method=method, **settings)


def test_remote_cost_by_hand():
    from pipeline.core.pricing import jobs_flavor

    a10g = jobs_flavor("a10g-large", "sft")
    assert (a10g.usd_per_hour, a10g.startup_hours) == (1.5, 0.25)
    # 2 epochs of 10M tokens at the assumed 900 tokens/s: 20e6 / 900 / 3600 = 6.17 h, + 0.25 h start-up
    est = _remote(epochs=2.0, timeout="24h")
    assert est["trained_tokens"] == 20_000_000
    assert est["estimated_hours"] == pytest.approx(0.25 + 20e6 / 900 / 3600, abs=1e-3)
    assert est["billed_hours"] == est["estimated_hours"] and est["cost_usd"] == pytest.approx(6.4228 * 1.5, abs=0.01)
    assert est["max_cost_usd"] == 36.0  # the 24 h timeout bounds the spend
    # max_steps wins over epochs: 500 steps x 2 examples of the mean 100,000 tokens, cut to max_length 1,024
    assert _remote(max_steps=500, epochs=9.0)["trained_tokens"] == 500 * 2 * 1024
    # DPO also runs the reference model: 1.5 x the hours of training
    dpo = _remote(method="dpo", timeout=None)
    assert dpo["estimated_hours"] - 0.25 == pytest.approx(1.5 * (_remote(timeout=None)["estimated_hours"] - 0.25), abs=1e-2)


def test_remote_cost_gate_names_flavour_hours_and_price():
    # 3 epochs: 30M tokens / 900 tokens/s = 9.26 h + 0.25 h start-up = 9.51 h x $1.50 = $14.26
    over = cost_gate(_cost(), _remote(epochs=3.0, timeout="2d", budget=10.0))
    assert not over.passed
    assert "flavour a10g-large at $1.50/hour: about 9.51 hours" in over.description
    assert "30,000,000 trained tokens from 3 epochs" in over.description
    assert "= $14.26: over the target's $10.00 budget by $4.26" in over.description
    assert "budget_usd" in over.description and "remote_flavor" in over.description
    assert over.metadata["flavor"] == "a10g-large" and over.metadata["usd_per_hour"] == 1.5
    within = cost_gate(_cost(), _remote(budget=50.0, timeout="1d"))
    assert within.passed and "within the $50.00 budget" in within.description
    # the manifest's own price (here $150 of OpenAI tokens) is not what a remote run is billed
    assert within.metadata["cost_usd"] < 150


def test_remote_cost_gate_fails_past_the_timeout_and_on_an_unknown_flavour():
    stopped = cost_gate(_cost(), _remote(epochs=3.0, timeout="4h", budget=1000.0))
    assert not stopped.passed and stopped.metadata["billed_hours"] == 4.0
    assert "stopped by the 4 h timeout after 4.00 billed hours = $6.00" in stopped.description
    assert "stopped before it ends" in stopped.description and "remote_timeout" in stopped.description
    unknown = cost_gate(_cost(), _remote(flavor="quantum-xl"))
    assert not unknown.passed and "'quantum-xl'" in unknown.description and "prices.yaml" in unknown.description


@pytest.mark.parametrize("value, hours", [("4h", 4.0), ("90m", 1.5), ("1d", 24.0), ("1800s", 0.5), (7200, 2.0),
                                          (None, None), ("", None)])
def test_jobs_timeout_in_hours(value, hours):
    from pipeline.core.pricing import duration_hours

    assert duration_hours(value) == hours


def test_record_tokens_agree_with_the_builder_counts():
    from pipeline.training_files import formats
    from pipeline.training_files.prepare import prepare_example, prepare_pair
    from pipeline.training_files.tokens import TokenCounter
    from pipeline_tests.training_files_helpers import example, pair

    counter = TokenCounter("o200k_base")
    prepared = prepare_example(example(3), counter, 16_385)
    assert validate.record_tokens("openai_chat", formats.openai_chat(prepared), counter) == prepared["tokens"]
    prepared = prepare_pair(pair(3), counter, 16_385, "dpo")
    assert validate.record_tokens("openai_dpo", formats.openai_dpo(prepared), counter) == prepared["tokens"]
