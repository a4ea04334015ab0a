"""Tiny models the Hugging Face backend tests build: a 2-layer Llama and a tokenizer trained on the fly.

These machines cannot download weights, and the real training loop (TRL + PEFT) must still run in
the tests: a Llama with hidden size 32 trains a few steps in seconds on the CPU.
"""

from __future__ import annotations

import json
from pathlib import Path

#: ChatML without a default system prompt and without generation markers (most Hub models' shape)
CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

#: a template of no known family and without markers: assistant masking must fall back
PLAIN = (
    "{% for message in messages %}"
    "{{ '### ' + message['role'] + ': ' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '### assistant: ' }}{% endif %}"
)

CORPUS = [
    "Build a landing page for a bakery with a hero, pricing and a contact form.",
    '{"sections": ["hero", "features", "pricing", "testimonials", "faq", "contact"]}',
    "Roast my landing page: the hero image is a stock photo of a handshake.",
    "Bold of you to call that a hero image. Your headline whispers when it should shout.",
    "You are a helpful assistant that answers briefly and in JSON when asked.",
    "Luna likes astronomy, tea, and quiet mornings. Ask me about the stars tonight!",
    "system user assistant tool role content messages",
]


def sft_rows(n: int = 12) -> list[dict]:
    rows = []
    for i in range(n):
        rows.append(
            {
                "messages": [
                    {"role": "system", "content": "You build pages as JSON."},
                    {"role": "user", "content": f"Build a landing page number {i} for a bakery."},
                    {"role": "assistant", "content": '{"sections": ["hero", "pricing"]}'},
                    {"role": "user", "content": "Add a contact form."},
                    {"role": "assistant", "content": '{"sections": ["hero", "pricing", "contact"]}'},
                ]
            }
        )
    return rows


def dpo_rows(n: int = 12) -> list[dict]:
    return [
        {
            "prompt": [{"role": "user", "content": f"Roast landing page {i}."}],
            "chosen": [{"role": "assistant", "content": "Bold of you to call that a hero image."}],
            "rejected": [{"role": "assistant", "content": "It is fine."}],
        }
        for i in range(n)
    ]


def write_jsonl(path: Path, rows: list, extra_lines: list[str] = ()) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(r) for r in rows] + list(extra_lines)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def build_tiny_model(out_dir: Path, template: str = CHATML, seed: int = 0) -> Path:
    """A 2-layer Llama (hidden 32) and a byte-level BPE tokenizer trained on CORPUS, saved to `out_dir`."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>"]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator(CORPUS * 4, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|im_end|>",
        pad_token="<pad>",
        unk_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>"],
        model_max_length=512,
    )
    tokenizer.chat_template = template
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir
