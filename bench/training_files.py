"""Training-file build at scale, and token-counting throughput against the tokenizer library alone.

    .venv/bin/python bench/training_files.py [--rows 1000000] [--count-texts 200000] [--seed 7]

1. Writes a synthetic anonymized `examples.parquet` of `--rows` scored examples (3-turn
   conversations, varied prompts and page-JSON answers, ~1% rows that must be dropped) in batches,
   under a temporary FLYWHEEL_HOME.
2. Builds the training files (4 SFT formats x train/validation + manifest) for an OpenAI SFT target
   in a child process, and reports its wall time, CPU time (user+sys, which other load on the
   machine does not inflate) and peak RSS (`ru_maxrss` of the child), then builds again to show
   the same version and bytes.
3. Counts tokens of the same texts (the prompts and answers of the first `--count-texts` rows)
   with bpe-openai's tiktoken-compatible `Encoding.encode` (the baseline: `len(enc.encode(t))`)
   and with Flywheel's `TokenCounter`, once on distinct texts (no cache hits) and once on the texts
   as they occur (repeated system prompts hit the cache); prints texts/s and the ratios.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGETS = """
targets:
  bench_sft:
    tasks: [page_generation, section_edit, design_choice]
    method: sft
    backend: openai
    base_model: gpt-4.1-mini-2025-04-14
    min_examples: 10
    training_file: {budget_usd: 100000}
"""
INDUSTRIES = ["sailing school", "cafe", "vacation rental", "dentist", "yoga studio", "law firm", "bakery", "bike shop",
              "architecture office", "language school", "florist", "brewery", "escape room", "vet clinic"]
SECTIONS = ["hero", "features", "pricing", "testimonials", "faq", "contact", "team", "gallery", "cta", "footer"]
FEATURES = ["online booking", "price list", "team profiles", "customer reviews", "newsletter signup", "map",
            "gift cards", "opening hours", "photo gallery", "FAQ"]
SYSTEM = "You are the page builder. Answer with page JSON: version, metadata, sections of the 10 known types."


def _row(i: int, rng: random.Random) -> dict:
    conv = i // 3
    industry = rng.choice(INDUSTRIES)
    feats = rng.sample(FEATURES, 3)
    prompt = f"Create a landing page for a {industry} in city {conv % 5000}. Include {', '.join(feats)}. Variant {i}."
    messages = [{"role": "user", "content": prompt}]
    if i % 3:
        messages = [{"role": "user", "content": f"Make a page for a {industry} #{conv}"},
                    {"role": "assistant", "content": '{"version":"1.0","sections":[{"type":"hero"}]}'},
                    {"role": "user", "content": prompt}]
    page = {"version": "1.0", "metadata": {"title": f"{industry.title()} {conv}"},
            "sections": [{"type": s, "heading": f"{s.title()} for {industry}", "body": " ".join(feats)}
                         for s in rng.sample(SECTIONS, 4)]}
    completion = json.dumps(page)
    if i % 100 == 7:
        completion = "   "  # redacted to nothing: dropped as empty_content
    if i % 100 == 53:
        messages = [{"role": "assistant", "content": "Hello!"}]  # no user turn
    return {
        "example_id": hashlib.sha1(f"ex{i}".encode()).hexdigest(),
        "group_id": hashlib.sha1(f"conv{conv}".encode()).hexdigest(),
        "task": ["page_generation", "section_edit", "design_choice"][i % 3],
        "occurred_at": f"2026-{1 + i % 10:02d}-{1 + i % 28:02d}T10:00:00Z",
        "system_prompt": SYSTEM,
        "messages": json.dumps(messages),
        "response_format": "json",
        "response": completion,
        "completion": completion,
        "completion_source": "response",
        "score": float(5 + i % 6),
        "score_reasons": '["thumbs_up"]',
        "context": json.dumps({"industry": industry, "features": feats}),
        "tenant_hash": f"t{i % 17}",
    }


def write_parquet(path: Path, rows: int, seed: int, batch: int = 50_000) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(seed)
    writer = None
    for start in range(0, rows, batch):
        table = pa.Table.from_pylist([_row(i, rng) for i in range(start, min(rows, start + batch))])
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    writer.close()


CHILD = """
import json, sys, time
from pipeline.core.targets import get_target
from pipeline.training_files.build import build_training_files
t0 = time.perf_counter()
r = build_training_files(get_target("bench_sft"))
print(json.dumps({"seconds": time.perf_counter() - t0, "version": r.version, "counts": r.manifest["counts"],
                  "tokens": r.manifest["tokens"]["per_example"], "cost": r.manifest["cost"]}))
"""


def build_in_child(env: dict) -> tuple[dict, float, float, int]:
    """(child's report, wall seconds, CPU seconds user+sys, peak RSS KiB of the largest child so far)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return json.loads(out.stdout.strip().splitlines()[-1]), wall, cpu, after.ru_maxrss


def digest_files(home: Path, version: str) -> str:
    h = hashlib.sha256()
    for path in sorted((home / "bench_sft" / version).rglob("*.jsonl")):
        h.update(path.read_bytes())
    return h.hexdigest()


def count_bench(path: Path, n: int) -> None:
    import bpe_openai
    import pyarrow.parquet as pq

    from pipeline.training_files.prepare import parse_messages
    from pipeline.training_files.tokens import TokenCounter

    table = pq.read_table(path, columns=["system_prompt", "messages", "completion"]).slice(0, n)
    texts = []
    for system, messages, completion in zip(*(table.column(c).to_pylist() for c in table.column_names), strict=True):
        texts.append(system)
        texts.extend(m["content"] for m in parse_messages(messages) or [])
        texts.append(completion)
    distinct = list(dict.fromkeys(texts))
    enc = bpe_openai.get_encoding("o200k_base")

    def timed(fn, items):
        t0 = time.perf_counter()
        total = fn(items)
        return total, time.perf_counter() - t0

    base_total, base_s = timed(lambda items: sum(len(enc.encode(t, disallowed_special=())) for t in items), distinct)
    ours_total, ours_s = timed(lambda items: sum(TokenCounter("o200k_base").count_many(items)), distinct)
    assert ours_total == base_total, (ours_total, base_total)
    stream_base_total, stream_base_s = timed(lambda items: sum(len(enc.encode(t, disallowed_special=())) for t in items), texts)
    stream_total, stream_s = timed(lambda items: sum(TokenCounter("o200k_base").count_many(items)), texts)
    assert stream_total == stream_base_total
    print(f"\ntoken counting, o200k_base ({len(texts):,} texts as they occur, {len(distinct):,} distinct, {base_total:,} tokens in the distinct ones)")
    print(f"{'':38}{'texts/s':>12}{'tokens/s':>14}")
    print(f"{'bpe_openai Encoding.encode, distinct':38}{len(distinct) / base_s:>12,.0f}{base_total / base_s:>14,.0f}")
    print(f"{'TokenCounter, distinct (no cache hit)':38}{len(distinct) / ours_s:>12,.0f}{base_total / ours_s:>14,.0f}   x{base_s / ours_s:.2f}")
    print(f"{'bpe_openai Encoding.encode, stream':38}{len(texts) / stream_base_s:>12,.0f}{stream_total / stream_base_s:>14,.0f}")
    print(f"{'TokenCounter, stream (cache)':38}{len(texts) / stream_s:>12,.0f}{stream_total / stream_s:>14,.0f}   x{stream_base_s / stream_s:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--count-texts", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="flywheel-bench-tf-"))
    (home / "targets.yaml").write_text(TARGETS, encoding="utf-8")
    env = {**os.environ, "FLYWHEEL_HOME": str(home), "FLYWHEEL_TARGETS": str(home / "targets.yaml"), "PYTHONPATH": str(ROOT)}
    source = home / "bench_sft" / "anonymized" / "examples.parquet"
    source.parent.mkdir(parents=True)
    t0 = time.perf_counter()
    write_parquet(source, args.rows, args.seed)
    print(f"synthetic anonymized parquet: {args.rows:,} rows, {source.stat().st_size / 2**20:,.0f} MiB, written in {time.perf_counter() - t0:,.1f} s")

    first, wall, cpu, peak_kib = build_in_child(env)
    counts = first["counts"]
    print(f"\nbuild 1: {first['seconds']:,.1f} s in build_training_files ({wall:,.1f} s wall with interpreter start, "
          f"{cpu:,.1f} s CPU user+sys; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores), "
          f"peak RSS {peak_kib / 1024:,.0f} MiB")
    print(f"  rows in {counts['input_rows']:,} = written {counts['written']:,} (train {counts['train']:,}, validation {counts['validation']:,})"
          f" + dropped {sum(counts['dropped'].values()):,} { {k: v for k, v in counts['dropped'].items() if v} }")
    print(f"  {args.rows / first['seconds']:,.0f} rows/s wall, {args.rows / cpu:,.0f} rows per CPU second; tokens per example {first['tokens']}")
    print(f"  cost: {first['cost']['billed_tokens']:,} billed tokens, {first['cost']['n_epochs']} epochs, ${first['cost']['cost_usd']:,.2f}")
    files = sorted((home / "bench_sft" / first["version"]).rglob("*.jsonl"))
    print(f"  {len(files)} files, {sum(f.stat().st_size for f in files) / 2**20:,.0f} MiB")
    digest = digest_files(home, first["version"])

    second, _, cpu2, _ = build_in_child(env)
    same = second["version"] == first["version"] and digest_files(home, second["version"]) == digest
    print(f"build 2 (unchanged input): {second['seconds']:,.1f} s ({cpu2:,.1f} s CPU), same version and bytes: {same}")

    count_bench(source, args.count_texts)
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
