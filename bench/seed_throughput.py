"""How fast `flywheel seed` streams, and whether its memory stays flat in n.

    .venv/bin/python bench/seed_throughput.py --n 1000000

Each figure comes from a fresh child process, so peak RSS is that run's alone:
* floor: the interpreter with `pipeline.synth` imported, generating nothing;
* baseline: n/10 interactions (at least 1,000);
* full: n interactions.
Output goes to /dev/null unless `--out` names a file. Records per CPU-second is the figure to
quote on a shared machine; wall-clock records/s is printed beside it. The ratios at the end compare
the full run with the baseline measured in the same run: RSS should stay ~1.0x, throughput similar.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHILD = """
import json, os, sys, time
from pipeline.synth.generate import write_jsonl
n, seed, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
start, cpu = time.perf_counter(), time.process_time()
counts = write_jsonl(out, n, seed) if n else {"records": 0}
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
print(json.dumps({"records": counts["records"], "seconds": seconds, "cpu_seconds": cpu}))
"""


def run(n: int, seed: int, out: str) -> dict:
    """Generate in a child process; return records, seconds, records/s and the child's peak RSS."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(n), str(seed), out], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    stdout = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"generation of n={n} failed with exit code {child.returncode}")
    result = json.loads(stdout)
    result["n"] = n
    result["peak_rss_mb"] = usage.ru_maxrss / 1024  # Linux reports KiB
    result["records_per_s"] = result["records"] / result["seconds"] if result["seconds"] else 0.0
    result["records_per_cpu_s"] = result["records"] / result["cpu_seconds"] if result["cpu_seconds"] else 0.0
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000, help="interactions in the full run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=os.devnull, help="where the full run writes (default /dev/null)")
    args = parser.parse_args()
    floor = run(0, args.seed, os.devnull)
    base = run(max(1_000, args.n // 10), args.seed, os.devnull)
    full = run(args.n, args.seed, args.out)
    print(
        f"{'run':<9}{'interactions':>13}{'records':>12}{'seconds':>9}{'records/s':>11}{'rec/CPU-s':>11}{'peak RSS MB':>13}"
    )
    for name, r in (("floor", floor), ("baseline", base), ("full", full)):
        print(
            f"{name:<9}{r['n']:>13,}{r['records']:>12,}{r['seconds']:>9.2f}{r['records_per_s']:>11,.0f}"
            f"{r['records_per_cpu_s']:>11,.0f}{r['peak_rss_mb']:>13.1f}"
        )
    print(
        f"peak RSS full / baseline: {full['peak_rss_mb'] / base['peak_rss_mb']:.2f}x "
        f"(full - interpreter floor: {full['peak_rss_mb'] - floor['peak_rss_mb']:.1f} MB)"
    )
    print(
        f"records per CPU-second full / baseline: {full['records_per_cpu_s'] / base['records_per_cpu_s']:.2f}x "
        "(one core; wall-clock records/s also shows other load on the machine)"
    )


if __name__ == "__main__":
    main()
