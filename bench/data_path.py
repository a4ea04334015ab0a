"""The whole data path at three sizes, then an incremental run: wall time, items/s and peak RSS per stage.

    .venv/bin/python bench/data_path.py                       # 10k, 100k, 1M (+10k new); hours on 2 cores
    .venv/bin/python bench/data_path.py --sizes 2000 20000 --new 2000 --out /tmp/dp   # a quick look

Stages, each in its own process under `/usr/bin/time -v` (so peak RSS is that stage's own), on one
persistent SQLite Dagster instance and store per size, as `flywheel demo` runs them; the asset
stages run over every target partition that `sync_target_partitions_job` (what
`target_partitions_sensor` requests after new data; its items are the partitions) produced:

    seed → import → raw_interactions → sync_target_partitions → scored_examples → anonymized_dataset
         → training_file

Then `--new` interactions (another seed, so new ids) arrive in the largest size's store and every
stage runs again (*incremental*); the baseline is the same stages over those new interactions
alone in a fresh store, measured in the same run. Goals (issue 13): peak RSS at the largest size
within 1.5x of the middle size per stage; incremental <= 1.2x the baseline per stage.

Figures go to stdout and, with `--out DIR`, to `DIR/data_path.json`; with `--docs docs/benchmarks.md`
the same run writes that page and its plot (`bench/data_path_report.py`, which also works from the JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
STAGES = ("seed", "import", "raw_interactions", "sync_target_partitions", "scored_examples", "anonymized_dataset",
          "training_file")
ASSET_STAGES = STAGES[2:]

#: one asset over every target partition, in this process (what the parent times); prints one JSON line
STAGE_SCRIPT = r"""
import json, sys, time, warnings
import dagster as dg
warnings.filterwarnings("ignore")
from pipeline.definitions import defs
from pipeline.defs.partitions import TARGET_PARTITIONS
stage, op_config = sys.argv[1], json.loads(sys.argv[2])
only = json.loads(sys.argv[3]) if len(sys.argv) > 3 else None  # these target partitions only (default: all)
instance = dg.DagsterInstance.get()
quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
items, per_partition, failed = 0, {}, []
if stage == "raw_interactions":
    result = defs.resolve_job_def("ingest_job").execute_in_process(instance=instance, raise_on_error=False, run_config=quiet)
    meta = {k: v.value for e in result.get_asset_materialization_events() for k, v in e.materialization.metadata.items()}
    items = int(meta.get("records_in", 0))
    failed = [] if result.success else ["raw_interactions"]
elif stage == "sync_target_partitions":  # what target_partitions_sensor's run does after new data
    result = defs.resolve_job_def("sync_target_partitions_job").execute_in_process(
        instance=instance, raise_on_error=False, run_config=quiet)
    items = len(instance.get_dynamic_partitions(TARGET_PARTITIONS))
    failed = [] if result.success else ["sync_target_partitions"]
else:
    job = defs.resolve_job_def("train_target_job")
    config = dict(quiet)
    if op_config:
        config["ops"] = {stage: {"config": op_config}}
    for key in instance.get_dynamic_partitions(TARGET_PARTITIONS):
        if only is not None and key not in only:
            continue
        began = time.perf_counter()
        result = job.execute_in_process(instance=instance, partition_key=key, raise_on_error=False,
                                        run_config=config, asset_selection=[dg.AssetKey(stage)])
        meta = {k: v.value for e in result.get_asset_materialization_events() for k, v in e.materialization.metadata.items()}
        n = {"scored_examples": meta.get("read"), "anonymized_dataset": (meta.get("rows_in") or 0) + (meta.get("pairs_in") or 0),
             "training_file": meta.get("input_rows")}[stage] or 0
        items += int(n)
        per_partition[key] = {"items": int(n), "seconds": round(time.perf_counter() - began, 2),
                              **{k: meta[k] for k in ("rows_out", "pairs_out", "redacted_by_engine", "reused_redactions") if k in meta},
                              **({"stage_seconds": meta["seconds"]} if stage == "anonymized_dataset" else {}),
                              **({"run_mode": meta.get("run_mode"), "phases": (meta.get("counts") or {}).get("seconds")}
                                 if stage == "scored_examples" else {})}
        if not meta:  # the step itself failed (a failed blocking check still materializes; it is counted below)
            failed.append(key)
        checks = [e for e in result.get_asset_check_evaluations() if not e.passed]
        if checks:
            per_partition[key]["failed_checks"] = sorted(e.check_name for e in checks)
print(json.dumps({"items": items, "partitions": per_partition, "failed": failed}))
"""


def timed(cmd: list[str], env: dict) -> dict:
    """Run under /usr/bin/time -v; wall seconds, CPU seconds, peak RSS MiB and the command's last stdout line."""
    out = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, env=env, cwd=ROOT)
    if out.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd[:4])}\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")

    def field(name: str) -> str:
        return re.search(rf"{re.escape(name)}: ([\d:.]+)", out.stderr).group(1)

    wall = sum(float(p) * 60**i for i, p in enumerate(reversed(field("Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":"))))
    cpu = float(field("User time (seconds)")) + float(field("System time (seconds)"))
    last = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    return {"seconds": round(wall, 2), "cpu_seconds": round(cpu, 2),
            "peak_rss_mib": round(int(field("Maximum resident set size (kbytes)")) / 1024, 1), "stdout": last}


def say(text: str, bar=None) -> None:
    """A line on stdout; above the progress bar when one is drawn (on stderr, terminals only)."""
    if bar is not None and bar.active:
        bar.write(text)  # the bar draws on stderr; so does this line, above it
    else:
        print(text, flush=True)


class World:
    """One FLYWHEEL_HOME / DAGSTER_HOME / SQLite store, and the stages run against it."""

    def __init__(self, label: str, workers: int, keep: Path | None = None):
        self.home = Path(tempfile.mkdtemp(prefix=f"flywheel-dp-{label}-", dir=keep))
        self.env = {**os.environ, "FLYWHEEL_HOME": str(self.home), "DAGSTER_HOME": str(self.home / "dagster")}
        self.env.pop("FLYWHEEL_SOURCE_URL", None)
        (self.home / "dagster").mkdir()
        shutil.copy(ROOT / "dagster.yaml", self.home / "dagster" / "dagster.yaml")
        text = (self.home / "dagster" / "dagster.yaml").read_text().replace(".dagster_home", str(self.home / "dagster"))
        (self.home / "dagster" / "dagster.yaml").write_text(text)
        self.workers = workers

    def run(self, stage: str, n: int = 0, seed: int = 7, op_config: dict | None = None,
            partitions: list[str] | None = None) -> dict:
        data = self.home / f"seed-{seed}-{n}.jsonl"
        if stage == "seed":
            r = timed([str(BIN / "flywheel"), "seed", "--n", str(n), "--seed", str(seed), "--out", str(data)], self.env)
            r["items"] = n
        elif stage == "import":
            r = timed([str(BIN / "flywheel"), "import", "--json", str(data)], self.env)
            r["items"] = json.loads(r["stdout"]).get("read", 0) if r["stdout"].startswith("{") else n
        else:
            if op_config is None:
                op_config = {"workers": self.workers} if stage == "anonymized_dataset" else {}
            r = timed([sys.executable, "-c", STAGE_SCRIPT, stage, json.dumps(op_config),
                       *([json.dumps(partitions)] if partitions is not None else [])], self.env)
            detail = json.loads(r["stdout"])
            r.update(items=detail["items"], partitions=detail["partitions"], failed=detail["failed"])
            checks = {k: v["failed_checks"] for k, v in detail["partitions"].items() if v.get("failed_checks")}
            if detail["failed"] or checks:  # small sizes: a target short of min_examples stops at its gate
                say(f"  ! {stage}: not materialized for {detail['failed'] or 'none'}; failed checks {checks or 'none'}")
        r.pop("stdout", None)
        r["items_per_second"] = round(r["items"] / r["seconds"], 1) if r["seconds"] else 0.0
        return r

    def path(self, n: int, seed: int, out: dict | None = None, on_stage=lambda: None, bar=None,
             stages: tuple[str, ...] = STAGES) -> dict[str, dict]:
        """Every stage (of `stages`) over `n` new interactions; figures go into `out` as each stage ends."""
        out = {} if out is None else out
        for stage in stages:
            if bar is not None:
                bar.describe(f"{n:,}: {stage}")
            out[stage] = self.run(stage, n, seed)
            on_stage()
            r = out[stage]
            say(f"  {stage:<19} {r['items']:>10,} items {r['seconds']:8.1f} s {r['items_per_second']:9.1f}/s "
                f"CPU {r['cpu_seconds']:8.1f} s  peak RSS {r['peak_rss_mib']:7.0f} MiB", bar)
            if bar is not None:
                bar.update(1)
        return out

    def remove(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--new", type=int, default=10_000, help="interactions arriving for the incremental run")
    parser.add_argument("--workers", type=int, default=2, help="anonymization processes")
    parser.add_argument("--out", type=Path, help="write data_path.json here")
    parser.add_argument("--keep", action="store_true", help="keep the stores (under --out)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar, even on a terminal")
    parser.add_argument("--docs", type=Path, help="write this Markdown page and its PNG plot (docs/benchmarks.md)")
    parser.add_argument("--until", choices=STAGES, default=STAGES[-1],
                        help="stop after this stage (a quicker look at the stages before it; not for --docs)")
    args = parser.parse_args()
    stages = STAGES[: STAGES.index(args.until) + 1]
    if args.docs and stages != STAGES:
        parser.error("--docs takes the whole path: leave --until out")
    keep = args.out if args.keep and args.out else None
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    report: dict = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": "bench/data_path.py " + " ".join(sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "load_average_at_start": [round(x, 2) for x in os.getloadavg()]},
        "sizes": {}, "workers": args.workers,
    }
    sizes = sorted(args.sizes)
    largest = None

    def save() -> None:  # after each stage: a run stopped half-way keeps what it measured
        if args.out:
            (args.out / "data_path.json").write_text(json.dumps(report, indent=2) + "\n")

    from pipeline.core.progress import progress

    with progress(total=len(stages) * (len(sizes) + 2), desc="data path", unit="stage",
                  enabled=False if args.no_progress else None) as bar:
        for n in sizes:
            say(f"\n{n:,} interactions", bar)
            world = World(str(n), args.workers, keep)
            world.path(n, seed=7, out=report["sizes"].setdefault(str(n), {}), on_stage=save, bar=bar, stages=stages)
            if largest is not None:
                largest.remove()
            largest = world
        say(f"\n+{args.new:,} new interactions into the {sizes[-1]:,} store (incremental)", bar)
        largest.path(args.new, seed=8, out=report.setdefault("incremental", {}), on_stage=save, bar=bar, stages=stages)
        say(f"\nbaseline: the same {args.new:,} interactions alone in a fresh store", bar)
        alone = World("alone", args.workers, keep)
        alone.path(args.new, seed=8, out=report.setdefault("alone", {}), on_stage=save, bar=bar, stages=stages)
    for w in (largest, alone):
        if keep is None:
            w.remove()
    summarize(report, sizes)
    if args.out:
        (args.out / "data_path.json").write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nwrote {args.out / 'data_path.json'}")
    if args.docs:
        sys.path.insert(0, str(Path(__file__).parent))
        from data_path_report import write

        for path in write(report, args.docs):
            print(f"wrote {path}")


def summarize(report: dict, sizes: list[int]) -> None:
    if len(sizes) >= 2:
        mid, top = str(sizes[-2]), str(sizes[-1])
        print(f"\npeak RSS {top} vs {mid} (goal <= 1.5x) and incremental vs alone (goal <= 1.2x):")
        stages = [s for s in STAGES if s in report["incremental"]]
        for stage in stages:
            a, b = report["sizes"][mid][stage]["peak_rss_mib"], report["sizes"][top][stage]["peak_rss_mib"]
            inc, alone = report["incremental"][stage]["seconds"], report["alone"][stage]["seconds"]
            print(f"  {stage:<19} RSS {a:7.0f} -> {b:7.0f} MiB  {b / a:5.2f}x    "
                  f"incremental {inc:7.1f} s vs alone {alone:7.1f} s  {inc / alone if alone else 0:5.2f}x")
        report["ratios"] = {
            stage: {"rss_top_vs_mid": round(report["sizes"][top][stage]["peak_rss_mib"] / report["sizes"][mid][stage]["peak_rss_mib"], 2),
                    "incremental_vs_alone": round(report["incremental"][stage]["seconds"] / report["alone"][stage]["seconds"], 2)}
            for stage in stages
        }


if __name__ == "__main__":
    main()
