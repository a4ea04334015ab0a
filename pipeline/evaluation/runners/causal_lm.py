"""Generate answers and score preference pairs with a causal LM on our own hardware (base or fine-tuned).

Every model gets the same inputs and decoding: the item's prompt through the model's chat template
with the generation prompt, greedy decoding (no sampling, so no seed can move it), at most
`max_new_tokens` new tokens, batches of `batch_size` left-padded prompts. For DPO targets the
preference margin of an item is log p(kept answer | prompt) - log p(passed-over answer | prompt),
summed over the answer's tokens including the end-of-turn token: the quantity DPO trains. Heavy
imports (torch, transformers, peft) happen inside the functions.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pipeline.evaluation.items import EvalItem
from pipeline.evaluation.runners.outputs import ModelOutputs


def load(model: str, local_path: str | None) -> tuple[Any, Any]:
    """(model, tokenizer): a trained folder (LoRA adapter or merged) when `local_path`, else the base spec."""
    from pipeline.backends.huggingface import models as hf_models

    if local_path:
        if not Path(local_path).exists():
            raise FileNotFoundError(f"model folder {local_path} is gone: was FLYWHEEL_HOME moved or cleaned?")
        return hf_models.load_trained_model(local_path, device="cpu" if hf_models.default_device() == "cpu" else None)
    lm, tokenizer, _ = hf_models.load_model_and_tokenizer(model)
    return lm.to(hf_models.default_device()).eval(), tokenizer


def _prompt_text(tokenizer: Any, item: EvalItem) -> str:
    return tokenizer.apply_chat_template(list(item.prompt), add_generation_prompt=True, tokenize=False)


def generate(lm: Any, tokenizer: Any, items: list[EvalItem], *, role: str, model: str, backend: str = "huggingface",
             max_new_tokens: int = 256, batch_size: int = 8) -> ModelOutputs:
    """Greedy answers to every item's prompt, batched; per-item latency is the batch's time over its size."""
    import torch

    out = ModelOutputs(role=role, model=model, backend=backend, texts=[])
    padding_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        for start in range(0, len(items), batch_size):
            batch = items[start : start + batch_size]
            encoded = tokenizer([_prompt_text(tokenizer, i) for i in batch], return_tensors="pt", padding=True,
                                add_special_tokens=False).to(lm.device)
            began = time.perf_counter()
            with torch.no_grad():
                generated = lm.generate(**encoded, max_new_tokens=max_new_tokens, do_sample=False,
                                        pad_token_id=tokenizer.pad_token_id)
            elapsed = time.perf_counter() - began
            new = generated[:, encoded["input_ids"].shape[1]:]
            for row in tokenizer.batch_decode(new, skip_special_tokens=True):
                out.texts.append(row.strip())
                out.latencies_s.append(elapsed / len(batch))
                out.costs_usd.append(0.0)
                out.errors.append(None)
    finally:
        tokenizer.padding_side = padding_side
    return out


def answer_logprob(lm: Any, tokenizer: Any, prompts: list[str], answers: list[str], end: str) -> list[float]:
    """Sum of log p(answer tokens + end-of-turn | prompt) for each (prompt, answer), in one padded batch."""
    import torch

    ids, starts = [], []
    for prompt, answer in zip(prompts, answers, strict=True):
        head = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        tail = tokenizer(answer + end, add_special_tokens=False)["input_ids"]
        ids.append(head + tail)
        starts.append(len(head))
    width = max(len(i) for i in ids)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    input_ids = torch.tensor([i + [pad] * (width - len(i)) for i in ids], device=lm.device)
    mask = torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i in ids], device=lm.device)
    with torch.no_grad():
        logits = lm(input_ids=input_ids, attention_mask=mask).logits.float()
    logprobs = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    totals = []
    for row, (sequence, start) in enumerate(zip(ids, starts, strict=True)):
        totals.append(float(logprobs[row, start - 1 : len(sequence) - 1].sum()))
    return totals


def preference_margins(lm: Any, tokenizer: Any, items: list[EvalItem], *, role: str, model: str,
                       backend: str = "huggingface", batch_size: int = 8) -> ModelOutputs:
    """log p(kept) - log p(passed over) per item (a positive margin: the model prefers what people kept)."""
    end = _end_of_turn(tokenizer)
    out = ModelOutputs(role=role, model=model, backend=backend, margins=[])
    for start in range(0, len(items), batch_size):
        batch = items[start : start + batch_size]
        prompts = [_prompt_text(tokenizer, i) for i in batch]
        began = time.perf_counter()
        chosen = answer_logprob(lm, tokenizer, prompts, [i.reference for i in batch], end)
        rejected = answer_logprob(lm, tokenizer, prompts, [str(i.rejected) for i in batch], end)
        elapsed = time.perf_counter() - began
        for c, r in zip(chosen, rejected, strict=True):
            out.margins.append(c - r)
            out.latencies_s.append(elapsed / len(batch))
            out.costs_usd.append(0.0)
            out.errors.append(None)
    return out


def _end_of_turn(tokenizer: Any) -> str:
    """The text that closes an assistant turn in the chat template (`<|im_end|>` for ChatML), else EOS."""
    probe = tokenizer.apply_chat_template(
        [{"role": "user", "content": "x"}, {"role": "assistant", "content": "MARKER"}], tokenize=False
    )
    after = probe.split("MARKER", 1)[1] if "MARKER" in probe else ""
    return after.rstrip("\n") or (tokenizer.eos_token or "")
