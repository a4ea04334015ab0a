"""Seed + import + one `raw_interactions` materialization at two sizes: wall time and peak RSS.

    .venv/bin/python bench/ingest_scale.py            # 100k and 1M interactions (about 10 minutes)
    .venv/bin/python bench/ingest_scale.py --sizes 20000 200000

Each step runs in its own process under `/usr/bin/time -v`, so peak RSS is the step's own. The
goal (issue 2): peak RSS under 1.5 GB and flat in the input size (largest vs smallest within 1.5x).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MATERIALIZE = """
import dagster as dg
from pipeline.core.resources import StoreResource
from pipeline.defs.raw_interactions import raw_interactions
with dg.instance_for_test() as instance:
    result = dg.materialize([raw_interactions], instance=instance, resources={"store": StoreResource()},
                            raise_on_error=False)
    (event,) = result.get_asset_materialization_events()
    meta = {k: v.value for k, v in event.materialization.metadata.items()}
    print("records_in", meta["records_in"], "accepted", meta["accepted"], "quarantined", meta["quarantined"],
          "excluded", meta["excluded_opt_out"])
"""


def timed(cmd: list[str], env: dict) -> tuple[float, float, str]:
    """Run under /usr/bin/time -v; returns (wall seconds, peak RSS MB, stdout)."""
    out = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, env=env, cwd=ROOT)
    if out.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{out.stderr[-3000:]}")
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", out.stderr).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", out.stderr).group(1)
    seconds = sum(float(part) * 60**i for i, part in enumerate(reversed(wall.split(":"))))
    return seconds, rss_kb / 1024, out.stdout.strip()


def run_size(n: int) -> dict[str, tuple[float, float]]:
    home = Path(tempfile.mkdtemp(prefix=f"flywheel-bench-{n}-"))
    env = {**os.environ, "FLYWHEEL_HOME": str(home), "DAGSTER_HOME": str(home)}
    env.pop("FLYWHEEL_SOURCE_URL", None)
    data = home / "seed.jsonl"
    try:
        results = {
            "seed": timed([str(BIN / "flywheel"), "seed", "--n", str(n), "--out", str(data)], env),
            "import": timed([str(BIN / "flywheel"), "import", str(data)], env),
            "raw_interactions": timed([sys.executable, "-c", MATERIALIZE], env),
        }
        size_mb = data.stat().st_size / 1e6
        print(f"\n{n:,} interactions ({size_mb:,.0f} MB of JSONL)")
        for step, (seconds, rss, stdout) in results.items():
            print(f"  {step:<17} {seconds:8.1f} s   peak RSS {rss:7.0f} MB   {stdout.splitlines()[-1] if stdout else ''}")
        return {step: (s, r) for step, (s, r, _) in results.items()}
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()
    runs = {n: run_size(n) for n in args.sizes}
    small, large = min(runs), max(runs)
    print(f"\npeak RSS, {large:,} vs {small:,} (goal: each < 1536 MB, ratio <= 1.5):")
    for step in runs[small]:
        rss_small, rss_large = runs[small][step][1], runs[large][step][1]
        print(f"  {step:<17} {rss_small:7.0f} MB -> {rss_large:7.0f} MB   ratio {rss_large / rss_small:4.2f}")
    print(f"wall time ratio (size ratio {large / small:.0f}x): "
          + ", ".join(f"{s} {runs[large][s][0] / runs[small][s][0]:.1f}x" for s in runs[small]))


if __name__ == "__main__":
    main()
