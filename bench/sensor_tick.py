"""One tick of each sensor that reads the interaction store, at 10k, 100k and 1M stored interactions.

    .venv/bin/python bench/sensor_tick.py                          # 10k, 100k, 1M (the 1M store takes minutes)
    .venv/bin/python bench/sensor_tick.py --sizes 10000,100000     # a quick run
    .venv/bin/python bench/sensor_tick.py --store-dir /tmp/ticks   # keep the stores, reuse them next time

The sensors are the two that query interactions: `retrain_on_new_examples` (pipeline/defs/retraining.py)
and `target_partitions_sensor` (pipeline/defs/target_partitions.py); the others read the model
registry, the serving history and Dagster's event log, which do not grow with the log. Each tick is
the sensor's own function with `dg.build_sensor_context` on a real (temporary, SQLite) Dagster
instance and the project's targets.yaml. The store is filled as bench/curation_bench.py fills it
(`flywheel seed`'s generator, validated, written by the writer `raw_interactions` uses), plus the
seed's organizations through the importer.

Per size, in this order: the partition sensor's first tick (it requests `sync_target_partitions_job`,
whose work is done and timed right after, apart from the tick: it adds the target partitions), the
retraining sensor's first tick (no cursor: every row is new, and it counts the first
`FLYWHEEL_RETRAIN_TICK_SPAN` positions per target) and the ticks it takes to count the rest (the
slowest is shown), an idle tick of each (nothing new), then `--new` interactions arrive above the
watermark and each ticks again. No run is launched, so a target that reaches its threshold fires
again at each span of the catch-up. The steady ticks (idle and new rows) are the ones a running
deployment pays every few minutes; goal (issue 13): each under 1 s at 1M. Prints figures; asserts
nothing.
"""

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from curation_bench import build_store  # noqa: E402  (bench/ is on sys.path: this file runs as a script)

GOAL_S = 1.0
CATCH_UP = "retraining: slowest catch-up tick"
#: (label, sensor): the order they tick in; each starts from the cursor its sensor's previous tick left
SCENARIOS = (
    ("partitions: first tick", "partitions"),
    ("retraining: first tick", "retraining"),
    (CATCH_UP, "retraining"),
    ("partitions: idle tick", "partitions"),
    ("retraining: idle tick", "retraining"),
    ("partitions: tick after new rows", "partitions"),
    ("retraining: tick after new rows", "retraining"),
)
#: the ticks a running deployment pays every few minutes: what the goal is about
STEADY = [label for label, _ in SCENARIOS if "idle" in label or "new rows" in label]
MAX_CATCH_UP_TICKS = 100


def fill(url: str, n: int, seed: int) -> float:
    """A store of `n` accepted interactions and the seed's organizations; returns the seconds it took."""
    from pipeline.core.store import Store
    from pipeline.ingest.importer import import_lines
    from pipeline.synth.generate import iter_generated

    started = time.perf_counter()
    store = Store(url)
    import_lines(store, [g.line.encode() for g in iter_generated(0, seed)], "organizations")  # only the orgs
    store.dispose()
    build_store(url, n, seed)
    return time.perf_counter() - started


def describe(result) -> str:
    if result.run_requests:
        return f"{len(result.run_requests)} run request(s): " + ", ".join(r.partition_key or r.run_key or "" for r in result.run_requests)
    text = result.skip_reason.skip_message if result.skip_reason else ""
    return text if len(text) <= 110 else text[:107] + "..."


def run_size(n: int, seed: int, new: int, store_dir: Path) -> dict[str, float]:
    import dagster as dg
    import sqlalchemy as sa

    from pipeline.core import store as st
    from pipeline.core.resources import StoreResource
    from pipeline.defs.retraining import retrain_on_new_examples
    from pipeline.defs.target_partitions import sync_target_partitions, target_partitions_sensor

    path = store_dir / f"store_{n}_seed{seed}.db"
    url = f"sqlite:///{path}"
    if path.exists():
        print(f"\n{n:,} interactions: reusing {path}", flush=True)
    else:
        print(f"\n{n:,} interactions: filling {path} ...", flush=True)
        print(f"  filled in {fill(url, n, seed):.0f} s", flush=True)
    store = st.Store(url)
    watermark = store.accepted_through()
    sensors = {"partitions": target_partitions_sensor, "retraining": retrain_on_new_examples}
    seconds: dict[str, float] = {}
    cursors: dict[str, str | None] = {"partitions": None, "retraining": None}
    resources = {"store": StoreResource(url=url)}

    sync_runs: list[float] = []

    def tick(name: str) -> tuple[float, object]:
        ctx = dg.build_sensor_context(instance=instance, cursor=cursors[name], resources=resources)
        t0 = time.perf_counter()
        result = sensors[name](ctx)
        seconds = time.perf_counter() - t0
        cursors[name] = result.cursor
        if name == "partitions" and result.run_requests:  # the work of the run it requested, as the daemon would
            t1 = time.perf_counter()
            sync_target_partitions(instance, store)
            sync_runs.append(time.perf_counter() - t1)
        return seconds, result

    def caught_up() -> bool:
        tallies = json.loads(cursors["retraining"] or "{}").get("tallies", {})
        return all(t["through_seq"] >= store.accepted_through() for t in tallies.values())

    try:
        with dg.instance_for_test() as instance:
            for label, name in SCENARIOS:
                if label == "partitions: tick after new rows":
                    build_store(url, new, seed + 1, first_seq=watermark + 1)
                    print(f"  + {new:,} new interactions above accepted_seq {watermark:,}", flush=True)
                if label == CATCH_UP:  # the capped first tick left the rest to the next ticks
                    times = []
                    while not caught_up() and len(times) < MAX_CATCH_UP_TICKS:
                        times.append(tick(name)[0])
                    seconds[label] = max(times, default=0.0)
                    print(f"  {label:<34} {seconds[label]:8.3f} s   {len(times)} more tick(s), "
                          f"{sum(times):.1f} s in all, to count everything", flush=True)
                    continue
                runs_before = len(sync_runs)
                seconds[label], result = tick(name)
                extra = f"; its sync_target_partitions_job run: {sync_runs[-1]:.1f} s" if len(sync_runs) > runs_before else ""
                print(f"  {label:<34} {seconds[label]:8.3f} s   {describe(result)}{extra}", flush=True)
    finally:
        with store.engine.begin() as conn:  # back to the store as filled, so --store-dir can reuse it
            conn.execute(sa.delete(st.accepted).where(st.accepted.c.accepted_seq > watermark))
        store.dispose()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="stored interactions, comma-separated")
    parser.add_argument("--new", type=int, default=1_000, help="interactions that arrive between ticks (default 1000)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--store-dir", default=None, help="keep the filled stores here and reuse them (default: a "
                                                          "temporary folder, removed at the end)")
    args = parser.parse_args()
    logging.disable(logging.INFO)  # the ticks' own per-target lines
    sizes = sorted(int(s.replace("_", "")) for s in args.sizes.split(","))
    tmp = Path(tempfile.mkdtemp(prefix="flywheel-sensor-tick-"))
    store_dir = Path(args.store_dir) if args.store_dir else tmp
    store_dir.mkdir(parents=True, exist_ok=True)
    os.environ["FLYWHEEL_HOME"] = str(tmp / "home")
    os.environ.pop("FLYWHEEL_SOURCE_URL", None)
    try:
        runs = {n: run_size(n, args.seed, args.new, store_dir) for n in sizes}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\ntick wall time (s), load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs:")
    print(f"  {'':<34}" + "".join(f"{n:>12,}" for n in sizes) + (f"   {sizes[-1]:,} / {sizes[0]:,}" if len(sizes) > 1 else ""))
    for label, _ in SCENARIOS:
        small, large = runs[sizes[0]][label], runs[sizes[-1]][label]
        ratio = (f"   {large / small:8.1f}x" if small else "          -") if len(sizes) > 1 else ""
        print(f"  {label:<34}" + "".join(f"{runs[n][label]:12.3f}" for n in sizes) + ratio)
    worst = max(STEADY, key=lambda label: runs[sizes[-1]][label])
    slowest = runs[sizes[-1]][worst]
    print(f"slowest steady tick at {sizes[-1]:,}: {worst}, {slowest:.3f} s; goal < {GOAL_S:g} s: "
          f"{'met' if slowest < GOAL_S else 'NOT met'}")


if __name__ == "__main__":
    main()
