"""`training_file` after new data: the build and its gates over N + M rows, against the M rows alone.

    .venv/bin/python bench/training_file_incremental.py                      # N 20,000, M 1,000 (about a minute)
    .venv/bin/python bench/training_file_incremental.py --n 200000 --m 5000  # a few minutes on 2 cores
    .venv/bin/python bench/training_file_incremental.py --json               # one JSON object on stdout

1. *base*: a synthetic anonymized `examples.parquet` of N rows (`bench/training_files.py`'s rows:
   3-turn conversations, page-JSON answers, ~2% rows that must be dropped) for an OpenAI SFT
   target, built and checked under a temporary FLYWHEEL_HOME: `build_training_files`, then the
   gates of the blocking checks (format, duplicates/overlap, tokens/size, cost) with the target's
   memo folder, as `pipeline/defs/training_file_checks.py` calls them.
2. *incremental*: M new rows appended to the same input, built and checked again in the same home.
3. *alone*: the same M rows alone in a fresh home, built and checked.

Each run is a child process (like a Dagster run); its figures are its own: seconds of the build and
of each gate, CPU seconds, peak RSS, rows taken from the memo and rows prepared. The goal (issue
13): incremental <= 1.2x alone. `--verify` also builds N + M rows in a fresh home without a memo
and checks the incremental run gave the same version and bytes. Run from another checkout (copy
this file into its `bench/`) to measure that code: gates and builds without the memo parameters
are called without them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

TARGET = "bench_sft"
GOAL = 1.2

#: one build + the gates in a fresh process; prints one JSON line
CHILD = r"""
import inspect, json, resource, sys, time
from pipeline.core.targets import get_target
from pipeline.training_files import validate
from pipeline.training_files.build import build_training_files
use_memo = sys.argv[1] == "memo"
target = get_target("bench_sft")
def call(fn, *args, **kwargs):
    accepted = inspect.signature(fn).parameters
    return fn(*args, **{k: v for k, v in kwargs.items() if k in accepted})
memo_dir = None
if use_memo:
    try:
        from pipeline.training_files.memo import memo_dir as folder
        memo_dir = folder(target.name)
    except ImportError:  # a checkout from before the memo
        pass
cpu0, t0 = time.process_time(), time.perf_counter()
result = call(build_training_files, target, memo=use_memo)
seconds = {"build": time.perf_counter() - t0}
manifest, passed = result.manifest, {}
gates = {
    "format": lambda: call(validate.format_gate, manifest, memo_dir=memo_dir),
    "uniqueness": lambda: call(validate.uniqueness_gate, manifest, memo_dir=memo_dir),
    "size": lambda: call(validate.size_gate, manifest, min_examples=target.min_examples,
                         max_tokens=target.training_file.max_tokens_per_example, memo_dir=memo_dir),
    "cost": lambda: validate.cost_gate(manifest),
}
for name, gate in gates.items():
    t = time.perf_counter()
    passed[name] = gate().passed
    seconds[name] = time.perf_counter() - t
seconds["total"] = time.perf_counter() - t0
def peak_rss_kib():
    # VmHWM is this process's own peak; ru_maxrss would include the parent's peak at fork time
    try:
        with open("/proc/self/status") as status:
            return next(int(l.split()[1]) for l in status if l.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": {k: round(v, 3) for k, v in seconds.items()}, "cpu_seconds": round(time.process_time() - cpu0, 2),
                  "peak_rss_mib": round(peak_rss_kib() / 1024, 1),
                  "version": result.version, "input_rows": manifest["counts"]["input_rows"],
                  "written": manifest["counts"]["written"], "passed": passed,
                  "rows_from_memo": getattr(result, "reused_rows", 0),
                  "rows_prepared": getattr(result, "prepared_rows", manifest["counts"]["input_rows"])}))
"""


class Home:
    """A temporary FLYWHEEL_HOME with the bench target and its anonymized input."""

    def __init__(self, label: str):
        from training_files import TARGETS

        self.path = Path(tempfile.mkdtemp(prefix=f"flywheel-bench-tfi-{label}-"))
        (self.path / "targets.yaml").write_text(TARGETS, encoding="utf-8")
        self.env = {**os.environ, "FLYWHEEL_HOME": str(self.path), "FLYWHEEL_TARGETS": str(self.path / "targets.yaml"),
                    "PYTHONPATH": str(ROOT)}
        self.source = self.path / TARGET / "anonymized" / "examples.parquet"
        self.source.parent.mkdir(parents=True)

    def write(self, start: int, stop: int, seed: int) -> None:
        """Rows start..stop-1 of the seeded sequence (the same rows whatever `start` is)."""
        write_rows(self.source, start, stop, seed)

    def run(self, memo: bool = True) -> dict:
        out = subprocess.run([sys.executable, "-c", CHILD, "memo" if memo else "none"], env=self.env, cwd=ROOT,
                             capture_output=True, text=True)
        if out.returncode:
            sys.exit(f"build failed:\n{out.stderr[-3000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])

    def digest(self, version: str) -> str:
        h = hashlib.sha256()
        for path in sorted((self.path / TARGET / version).rglob("*.jsonl")):
            h.update(path.relative_to(self.path).as_posix().encode() + b"\0" + path.read_bytes())
        return h.hexdigest()

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def write_rows(path: Path, start: int, stop: int, seed: int, batch: int = 50_000) -> None:
    """`bench/training_files.py`'s rows start..stop-1 (its generator, advanced past the rows before)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from training_files import _row

    rng = random.Random(seed)
    for i in range(start):
        _row(i, rng)
    writer = None
    for begin in range(start, stop, batch):
        table = pa.Table.from_pylist([_row(i, rng) for i in range(begin, min(stop, begin + batch))])
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    if writer is not None:
        writer.close()


def line(name: str, r: dict) -> str:
    s = r["seconds"]
    gates = " ".join(f"{g} {s[g]:.2f}" for g in ("format", "uniqueness", "size"))
    return (f"  {name:<12} {r['input_rows']:>9,} rows  total {s['total']:7.2f} s  build {s['build']:7.2f} s  "
            f"gates: {gates}  CPU {r['cpu_seconds']:7.1f} s  peak RSS {r['peak_rss_mib']:6.0f} MiB  "
            f"from memo {r['rows_from_memo']:,}, prepared {r['rows_prepared']:,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20_000, help="rows of the first run")
    parser.add_argument("--m", type=int, default=1_000, help="new rows of the incremental run")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--verify", action="store_true",
                        help="also build N + M rows in a fresh home without a memo and compare version and bytes")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout, nothing else, no progress bar")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar, even on a terminal")
    args = parser.parse_args()

    from pipeline.core.progress import progress

    report: dict = {"n": args.n, "m": args.m, "seed": args.seed, "cpus": os.cpu_count(),
                    "load_average_at_start": [round(x, 2) for x in os.getloadavg()], "runs": {}}
    say = (lambda text: None) if args.json else (lambda text: print(text, flush=True))
    steps = [("base", "first run over N rows"), ("incremental", "+M rows, same home"), ("alone", "M rows, fresh home")]
    if args.verify:
        steps.append(("fresh", "N + M rows, fresh home, no memo"))
    homes = {"base": Home("inc"), "alone": Home("alone")}
    homes["incremental"] = homes["base"]
    if args.verify:
        homes["fresh"] = Home("fresh")
    say(f"training_file: {args.n:,} rows, then +{args.m:,} new; against the {args.m:,} alone "
        f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    try:
        with progress(total=len(steps), desc="training_file incremental", unit="run",
                      enabled=False if args.json or args.no_progress else None) as bar:
            for name, what in steps:
                bar.describe(f"{name}: {what}")
                home = homes[name]
                if name == "base":
                    home.write(0, args.n, args.seed)
                elif name == "incremental":
                    home.write(0, args.n + args.m, args.seed)
                elif name == "alone":
                    home.write(args.n, args.n + args.m, args.seed)
                else:
                    home.write(0, args.n + args.m, args.seed)
                r = home.run(memo=name != "fresh")
                report["runs"][name] = r
                if bar.active:
                    bar.write(line(name, r))
                else:
                    say(line(name, r))
                bar.update(1)
        runs = report["runs"]
        ratio = runs["incremental"]["seconds"]["total"] / runs["alone"]["seconds"]["total"]
        report["incremental_vs_alone"] = round(ratio, 2)
        report["build_incremental_vs_alone"] = round(
            runs["incremental"]["seconds"]["build"] / runs["alone"]["seconds"]["build"], 2)
        report["all_passed"] = all(all(r["passed"].values()) for r in runs.values())
        if args.verify:
            report["same_as_fresh"] = (runs["fresh"]["version"] == runs["incremental"]["version"]
                                       and homes["fresh"].digest(runs["fresh"]["version"])
                                       == homes["incremental"].digest(runs["incremental"]["version"]))
        if args.json:
            print(json.dumps(report, indent=2))
        else:
            print(f"\nincremental vs alone: {ratio:.2f}x (build only {report['build_incremental_vs_alone']:.2f}x; "
                  f"goal <= {GOAL}x) {'met' if ratio <= GOAL else 'NOT met'}; every gate passed: {report['all_passed']}")
            if args.verify:
                print(f"incremental run == fresh build over the same rows (version and bytes): {report['same_as_fresh']}")
    finally:
        for home in {id(h): h for h in homes.values()}.values():
            home.remove()


if __name__ == "__main__":
    main()
