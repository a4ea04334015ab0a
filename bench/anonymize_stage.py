"""Anonymization inside the pipeline stage: 1 vs 2 processes, and a second run that reuses redactions.

    .venv/bin/python bench/anonymize_stage.py                 # 20,000 interactions (about 10 minutes on 2 cores)
    .venv/bin/python bench/anonymize_stage.py --n 5000
    .venv/bin/python bench/anonymize_stage.py --n 30000 --partition page_builder   # one large partition

Builds a store the way `bench/data_path.py` does (seed → import → raw_interactions →
scored_examples, every target), then materializes `anonymized_dataset` for every target:

1. `workers: 1`, cache off: every example through the engine in the step's own process;
2. `workers: 2`, cache off: the same examples over two spawned processes;
3. `workers: 2`, cache on, twice: the first fills the per-target redaction cache, the second finds
   every example in it (what a run after new data does for the unchanged ones).

Rows/s is examples + pairs written per second of the stage's own work (reading, redacting and
writing the files, starting the worker processes included), summed over targets; wall is the whole
process (Python, Dagster and spaCy start-up included). Each partition starts its own workers (about
2 s each), so many small partitions hide the speed-up; `--partition` anonymizes only the ones named.
Goal (issue 13): at least 150 rows/s with 2 processes on 2 cores, in the stage.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from data_path import World  # noqa: E402

GOAL = 150.0


def stage_rate(result: dict) -> tuple[int, float]:
    """(rows, rows per second of stage work) over every target."""
    parts = result["partitions"].values()
    rows = sum(p.get("rows_out", 0) + p.get("pairs_out", 0) for p in parts)
    busy = sum(p.get("stage_seconds", 0.0) for p in parts)
    return rows, rows / busy if busy else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--partition", action="append", help="anonymize only this target partition (repeatable)")
    args = parser.parse_args()
    world = World(f"anon-{args.n}", workers=2)
    try:
        for stage in ("seed", "import", "raw_interactions", "sync_target_partitions", "scored_examples"):
            world.run(stage, args.n)
        runs = [
            ("1 process, no cache", {"workers": 1, "use_cache": False}),
            ("2 processes, no cache", {"workers": 2, "use_cache": False}),
            ("2 processes, cache filled", {"workers": 2, "use_cache": True}),
            ("2 processes, cache reused", {"workers": 2, "use_cache": True}),
        ]
        which = ", ".join(args.partition) if args.partition else "every target"
        print(f"\nanonymized_dataset over {args.n:,} interactions, {which}")
        rates = {}
        for label, config in runs:
            r = world.run("anonymized_dataset", op_config=config, partitions=args.partition)
            rows, rate = stage_rate(r)
            engine = sum(p.get("redacted_by_engine", 0) for p in r["partitions"].values())
            rates[label] = rate
            print(f"  {label:<27} {rows:>8,} rows  {rate:8.1f} rows/s in the stage  wall {r['seconds']:7.1f} s  "
                  f"CPU {r['cpu_seconds']:7.1f} s  peak RSS {r['peak_rss_mib']:6.0f} MiB  engine redacted {engine:,}")
        one, two = rates["1 process, no cache"], rates["2 processes, no cache"]
        if not one or not two:
            sys.exit("no rows were anonymized: is --n large enough for a target to pass its gates?")
        print(f"\n1 -> 2 processes: {two / one:.2f}x; 2 processes {two:.1f} rows/s (goal >= {GOAL:.0f}) "
              f"{'met' if two >= GOAL else 'NOT met'}; reuse {rates['2 processes, cache reused'] / two:.1f}x a fresh run")
    finally:
        world.remove()


if __name__ == "__main__":
    main()
