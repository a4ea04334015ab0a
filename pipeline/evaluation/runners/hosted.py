"""Answer evaluation items with a hosted chat model (OpenAI or a compatible API), bounded and retried.

Calls go through the backend resource's client (`OpenAIBackend.client()`), so the base URL, key
and the SDK's retries (408/409/429/5xx with backoff, `max_retries`) are the ones training uses.
At most `concurrency` calls are in flight. Decoding is the same for every model: temperature 0,
a fixed `seed`, at most `max_new_tokens` tokens. A call that still fails after the retries is
recorded as an error for that item (its answer empty, so it scores as wrong), never dropped; the
evaluation reports the error count. Cost per call comes from the `inference` prices table.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pipeline.core.pricing import inference_cost_usd
from pipeline.evaluation.items import EvalItem
from pipeline.evaluation.runners.outputs import ModelOutputs


def _describe(exc: Exception) -> str:
    status = getattr(exc, "status_code", None)
    return f"HTTP {status}: {exc}" if status else f"{type(exc).__name__}: {exc}"


def chat(client: Any, items: list[EvalItem], *, role: str, model: str, backend: str = "openai",
         max_new_tokens: int = 256, concurrency: int = 4, seed: int = 42) -> ModelOutputs:
    """One chat completion per item; answers in item order."""

    def call(item: EvalItem) -> tuple[str, float, float | None, str | None]:
        began = time.perf_counter()
        try:
            response = client.chat.completions.create(
                model=model, messages=list(item.prompt), temperature=0, seed=seed, max_completion_tokens=max_new_tokens,
            )
        except Exception as exc:  # noqa: BLE001 - after the SDK's retries: recorded per item, not raised
            return "", time.perf_counter() - began, None, _describe(exc)
        elapsed = time.perf_counter() - began
        usage = getattr(response, "usage", None)
        cost = inference_cost_usd(backend, model, usage.prompt_tokens, usage.completion_tokens) if usage else None
        text = (response.choices[0].message.content or "").strip() if response.choices else ""
        return text, elapsed, cost, None

    out = ModelOutputs(role=role, model=model, backend=backend, texts=[])
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        for text, elapsed, cost, error in pool.map(call, items):
            out.texts.append(text)
            out.latencies_s.append(elapsed)
            out.costs_usd.append(cost)
            out.errors.append(error)
    return out
