"""scored_examples at scale: one target of N synthetic interactions, curated end to end.

    .venv/bin/python bench/curation_bench.py [--n 200000] [--seed 7] [--sample 5000]

Builds a store with N accepted interactions from `flywheel seed`'s generator (all five products,
so every signal, edit, regeneration and templated near duplicate is in it) and one target that
takes every task. Then, each in a fresh process so peak RSS is its own:

* baseline: only reading the target's interactions (`Store.iter_accepted`, JSON decoded);
* curation: `curate_target` (score, dedup, pairs, both files written), at N and at N/10;

and near-duplicate signatures + LSH on the same `--sample` prompts: ours (batch one-permutation
MinHash, this project) against datasketch's `MinHash` + `MinHashLSH` (64 permutations, threshold
0.8), the ratio measured in this run. Prints figures and ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TASKS = ("page_generation", "section_edit", "design_choice", "tool_invocation", "signal_extraction", "ux_review",
         "roast", "chat")
TARGETS_YAML = f"""targets:
  everything:
    tasks: [{", ".join(TASKS)}]
    backend: huggingface
    base_model: m
"""

CHILD = r"""
import json, resource, sys, time
from pipeline.core.store import Store
from pipeline.core.targets import get_target
mode, url = sys.argv[1], sys.argv[2]
store, target = Store(url), get_target("everything")
t0 = time.perf_counter()
if mode == "read":
    n = sum(len(batch) for batch in store.iter_accepted(target.tasks, target.tenants, target.exclude_tenants))
    out = {"read": n}
else:
    from pipeline.curation.curate import curate_target
    out = curate_target(store, target).as_dict()
out["wall_s"] = time.perf_counter() - t0
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def build_store(url: str, n: int, seed: int, first_seq: int = 1) -> tuple[int, float]:
    """N synthetic interactions, validated with their feedback, into fw_accepted_interactions.

    `accepted_seq` numbers them from `first_seq` (bench/sensor_tick.py adds new rows above a store's watermark).
    """
    from pipeline.core.contract import validate_feedback, validate_interaction
    from pipeline.core.store import Store, accepted_row
    from pipeline.synth.generate import iter_generated

    store = Store(url)
    started = time.perf_counter()
    pending: dict[str, dict] = {}
    total = 0

    def flush() -> None:
        nonlocal total
        records = [pending.pop(i) for i in list(pending)]
        for r in records:
            r["feedback"].sort(key=lambda e: (e["occurred_at"], e["kind"]))
        with store.engine.begin() as conn:  # the writer raw_interactions uses
            store.upsert_accepted(conn, [accepted_row(r, first_seq + total + i) for i, r in enumerate(records)])
        total += len(records)

    for generated in iter_generated(n, seed=seed, bad_share=0.0):
        record = dict(generated.record)
        kind = record.pop("type", None)
        if kind == "interaction":
            if len(pending) >= 5_000:
                flush()
            interaction = validate_interaction(record)
            interaction["feedback"] = []
            pending[interaction["id"]] = interaction
        elif kind == "feedback" and record.get("interaction_id") in pending:
            pending[record["interaction_id"]]["feedback"].append(validate_feedback(record))
    flush()
    store.dispose()
    return total, time.perf_counter() - started


def run_child(mode: str, url: str, env: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, mode, url], capture_output=True, text=True, env=env,
                         cwd=ROOT, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def dedup_comparison(url: str, sample: int) -> dict:
    """Signatures + LSH: ours on every prompt of the store, and ours vs datasketch on the same sample."""
    import numpy as np
    from datasketch import MinHash, MinHashLSH

    from pipeline.core.store import Store
    from pipeline.curation import dedup

    store = Store(url)
    said, context, tasks = [], [], []
    for batch in store.iter_accepted(TASKS):
        for r in batch:
            a, b = dedup.prompt_parts(r["messages"], r.get("context"))
            said.append(dedup.near_text(dedup.normalize_text(a)))
            context.append(dedup.near_text(dedup.normalize_text(b)))
            tasks.append(r["task"])
    store.dispose()

    def ours(k: int) -> tuple[float, int]:
        t0 = time.perf_counter()
        sigs = np.concatenate([dedup.prompt_signatures(said[i : i + 5_000], context[i : i + 5_000])
                               for i in range(0, k, 5_000)])
        keys = [dedup.exact_key(t, a, b) for t, a, b in zip(tasks[:k], said[:k], context[:k], strict=True)]
        out = dedup.collapse(keys, sigs, np.array([dedup.namespace(t) for t in tasks[:k]], dtype=np.uint64),
                             list(range(k)), 0.8)
        return time.perf_counter() - t0, out.exact + out.near

    full_s, full_dups = ours(len(said))
    k = min(sample, len(said))
    sample_s, sample_dups = ours(k)
    t0 = time.perf_counter()
    lsh = MinHashLSH(threshold=0.8, num_perm=64)
    baseline_dups = 0
    for i in range(k):
        text = f"{tasks[i]}\n{said[i]}\n{context[i]}"
        padded = "\0" * (dedup.SHINGLE_CHARS - 1) + text
        m = MinHash(num_perm=64, seed=1)
        m.update_batch([padded[j : j + dedup.SHINGLE_CHARS].encode() for j in range(len(text))])
        if lsh.query(m):
            baseline_dups += 1
        else:
            lsh.insert(str(i), m)
    base_s = time.perf_counter() - t0
    return {"all": len(said), "all_s": full_s, "all_dups": full_dups, "sample": k, "ours_s": sample_s,
            "ours_dups": sample_dups, "datasketch_s": base_s, "datasketch_dups": baseline_dups}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--sample", type=int, default=5_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="curation_bench_") as tmp:
        home = Path(tmp)
        (home / "targets.yaml").write_text(TARGETS_YAML)
        env = {**os.environ, "FLYWHEEL_HOME": str(home), "FLYWHEEL_TARGETS": str(home / "targets.yaml"),
               "PYTHONPATH": str(ROOT)}
        os.environ.update(env)
        results = {}
        for n in (args.n // 10, args.n):
            url = f"sqlite:///{home / f'store_{n}.db'}"
            stored, build_s = build_store(url, n, args.seed)
            print(f"built store: {stored:,} accepted interactions in {build_s:.1f} s", flush=True)
            read = run_child("read", url, env)
            curated = run_child("curate", url, env)
            results[n] = (read, curated)
            print(f"\nN = {stored:,} interactions, one target")
            print(f"  baseline read only : {read['wall_s']:7.1f} s  {stored / read['wall_s']:9,.0f} /s   "
                  f"peak RSS {read['peak_rss_mb']:6.0f} MB")
            print(f"  scored_examples    : {curated['wall_s']:7.1f} s  {stored / curated['wall_s']:9,.0f} /s   "
                  f"peak RSS {curated['peak_rss_mb']:6.0f} MB   phases {curated['seconds']}")
            print(f"  ratio curate/read  : {curated['wall_s'] / read['wall_s']:.2f}× time, "
                  f"{curated['peak_rss_mb'] / read['peak_rss_mb']:.2f}× peak RSS")
            print(f"  kept {curated['kept']:,}, dropped {curated['dropped']}, duplicates {curated['duplicates']}, "
                  f"pairs {curated['pairs']}")
        small, large = results[args.n // 10][1], results[args.n][1]
        print(f"\npeak RSS N vs N/10: {large['peak_rss_mb']:.0f} MB vs {small['peak_rss_mb']:.0f} MB "
              f"({large['peak_rss_mb'] / small['peak_rss_mb']:.2f}×)")
        cmp = dedup_comparison(f"sqlite:///{home / f'store_{args.n}.db'}", args.sample)
        print("\nnear-duplicate detection (signatures + LSH + greedy collapse, threshold 0.8):")
        print(f"  ours on all {cmp['all']:,} prompts: {cmp['all_s']:.1f} s ({cmp['all'] / cmp['all_s']:,.0f} prompts/s), "
              f"{cmp['all_dups']:,} duplicates")
        print(f"  on the first {cmp['sample']:,}: ours {cmp['ours_s']:.2f} s ({cmp['sample'] / cmp['ours_s']:,.0f}/s, "
              f"{cmp['ours_dups']:,} duplicates) vs datasketch MinHash+MinHashLSH, 64 perm, one text "
              f"{cmp['datasketch_s']:.2f} s ({cmp['sample'] / cmp['datasketch_s']:,.0f}/s, "
              f"{cmp['datasketch_dups']:,} duplicates)")
        print(f"  speed-up over datasketch: {cmp['datasketch_s'] / cmp['ours_s']:.1f}×")

if __name__ == "__main__":
    main()
