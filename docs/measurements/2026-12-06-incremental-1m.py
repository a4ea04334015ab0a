"""A record of what was run, not a tool (its paths are that machine's). One-off (2026-12-06): on the 1M store built at a4bee7a through scored_examples, with the code of
/work/benchtree (91c3d30): scored_examples again (a full run: the curation code changed),
anonymized_dataset and training_file at 1M, then +10k (seed 8) through every stage, then the 10k alone."""
import json, sys, time
from pathlib import Path
TREE = "/work/benchtree"
sys.path.insert(0, TREE + "/bench")
import data_path as dp
dp.ROOT = Path(TREE)
home = Path(sys.argv[1]); out_path = Path(sys.argv[2])
out = {"started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "commit": "91c3d30", "store": str(home)}
def save(): out_path.write_text(json.dumps(out, indent=2))
def world_at(h):
    w = dp.World.__new__(dp.World)
    w.home, w.workers = h, 2
    w.env = {**dp.os.environ, "FLYWHEEL_HOME": str(h), "DAGSTER_HOME": str(h / "dagster"), "PYTHONPATH": TREE}
    w.env.pop("FLYWHEEL_SOURCE_URL", None)
    return w
def stage(w, name, n=10_000, seed=8):
    r = w.run(name, n, seed)
    print(f"  {name:<24} {r['items']:>9,} items {r['seconds']:7.1f} s  CPU {r['cpu_seconds']:7.1f} s  RSS {r['peak_rss_mib']:6.0f} MiB", flush=True)
    return r
big = world_at(home)
full = out.setdefault("full_1m", {})
print("1M: the stages after raw_interactions", flush=True)
for s in ("scored_examples", "anonymized_dataset", "training_file"):
    full[s] = stage(big, s, 1_000_000, 7); save()
print("+10k into the 1M store", flush=True)
inc = out.setdefault("incremental", {})
for s in dp.STAGES:
    inc[s] = stage(big, s); save()
print("the 10k alone", flush=True)
alone = out.setdefault("alone", {})
w = dp.World("alone", 2, keep=Path("/work/scratch"))
w.env["PYTHONPATH"] = TREE
for s in dp.STAGES:
    alone[s] = stage(w, s); save()
out["ratios"] = {s: round(inc[s]["seconds"] / alone[s]["seconds"], 2) for s in dp.STAGES if alone[s]["seconds"]}
out["ended"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
save()
print(json.dumps(out["ratios"]))
