"""A record of what was run on 2026-12-04, not a tool (its paths are that machine's): the
1M store left by a `bench/data_path.py` run stopped during anonymized_dataset, /work/benchtree a
checkout of 2539b26 (what that store was scored with), /work/main this repository at e90609b.

One-off: the incremental run of sync_target_partitions (this tree's tenant-count states) and
scored_examples (commit 2539b26, what the 1M store was scored with) over +10k, against the 10k alone."""
import json
import sys
from pathlib import Path

sys.path.insert(0, "/work/benchtree/bench")
import data_path as dp

MAIN, TREE = "/work/main", "/work/benchtree"
home = Path(sys.argv[1])
out = {}

def world_at(home):
    w = dp.World.__new__(dp.World)
    w.home, w.workers = home, 2
    w.env = {**dp.os.environ, "FLYWHEEL_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
    return w

def stage(w, name, code, n=10_000, seed=8):
    w.env["PYTHONPATH"] = code
    dp.ROOT = Path(code)  # the stage's cwd: `python -c` puts it first on sys.path
    r = w.run(name, n, seed)
    print(f"  {name:<24} {r['items']:>9,} items {r['seconds']:7.1f} s  CPU {r['cpu_seconds']:7.1f} s  RSS {r['peak_rss_mib']:6.0f} MiB", flush=True)
    return r

big = world_at(home)
print("1M store: sync with tenant-count states (their first run: full)")
out["sync_first"] = stage(big, "sync_target_partitions", MAIN)
print(json.dumps(out["sync_first"]))
print("+10k into the 1M store")
inc = out.setdefault("incremental", {})
for s in ("seed", "import", "raw_interactions"):
    inc[s] = stage(big, s, TREE)
inc["sync_target_partitions"] = stage(big, "sync_target_partitions", MAIN)
inc["scored_examples"] = stage(big, "scored_examples", TREE)
print("the 10k alone")
alone = out.setdefault("alone", {})
w = dp.World("alone", 2)
for s in ("seed", "import", "raw_interactions"):
    alone[s] = stage(w, s, TREE)
alone["sync_target_partitions"] = stage(w, "sync_target_partitions", MAIN)
alone["scored_examples"] = stage(w, "scored_examples", TREE)
for s in ("sync_target_partitions", "scored_examples"):
    print(f"{s}: incremental {inc[s]['seconds']} s vs alone {alone[s]['seconds']} s = {inc[s]['seconds'] / alone[s]['seconds']:.2f}x")
Path("/work/benchout/inc.json").write_text(json.dumps(out, indent=2))
