"""How long the code location takes to load, against `import dagster` measured in the same run.

    .venv/bin/python bench/load_time.py            # 9 fresh interpreters each, interleaved
    .venv/bin/python bench/load_time.py --runs 5 --top 15

Each figure is the median wall time of fresh subprocesses (what `dagster dev`, the daemon and every
run worker pay): `python -c 'from pipeline.definitions import defs'` against the baseline
`python -c 'import dagster'`, which the location cannot avoid. The runs alternate, so load on a
shared machine falls on both alike. Goal (issue 13): the location loads in under 2 s.

Then one `python -X importtime` run of the location lists the costliest imports (their own time,
without what they import) that `import dagster` alone does not make: where to look when the figure grows (move a heavy import
into the step that needs it). Prints figures; asserts nothing.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL_S = 2.0
LOAD = "from pipeline.definitions import defs"
BASELINE = "import dagster"


def wall(code: str, env: dict) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def importtime(code: str, env: dict) -> dict[str, int]:
    """module -> its own import time in µs (without its imports), from one `python -X importtime` run."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", code], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True)
    modules = {}
    for line in out.stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2 and "[us]" not in line:
            head, _cumulative, name = line.split("|")
            modules[name.strip()] = int(head.removeprefix("import time:"))
    return modules


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="fresh interpreters per command (default 9)")
    parser.add_argument("--top", type=int, default=10, help="costliest imports to list (default 10)")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    wall("pass", env)  # warm the file cache once before timing anything
    loads, bases = [], []
    for _ in range(args.runs):
        bases.append(wall(BASELINE, env))
        loads.append(wall(LOAD, env))
    load, base = statistics.median(loads), statistics.median(bases)
    print(f"median of {args.runs} fresh interpreters (load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs)")
    print(f"  {BASELINE:<40} {base:6.2f} s   (min {min(bases):.2f}, max {max(bases):.2f})")
    print(f"  {LOAD:<40} {load:6.2f} s   (min {min(loads):.2f}, max {max(loads):.2f})")
    print(f"  ratio {load / base:.2f}x; the location's own share {load - base:.2f} s; "
          f"goal < {GOAL_S:.0f} s: {'met' if load < GOAL_S else 'NOT met'}")

    dagster_modules = importtime(BASELINE, env)
    location = importtime(LOAD, env)
    own = sorted(((us, name) for name, us in location.items() if name not in dagster_modules), reverse=True)
    print(f"\ncostliest imports beyond `{BASELINE}` (own time, one -X importtime run; {len(own)} modules, "
          f"{sum(us for us, _ in own) / 1e6:.2f} s in all; pipeline.definitions' own time includes the "
          "pipeline/defs/ modules, which Dagster loads with importlib, and building the Definitions):")
    for us, name in own[: args.top]:
        print(f"  {us / 1e6:6.3f} s  {name}")


if __name__ == "__main__":
    main()
