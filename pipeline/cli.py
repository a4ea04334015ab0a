"""The `flywheel` command: what is not a materialization.

    flywheel seed        generate synthetic interactions for the five seed products (JSONL)
    flywheel import      load a JSONL file into the interaction store (upsert by id)
    flywheel anonymize   redact a JSONL stream of interactions, stdin → stdout
    flywheel quarantine  show what was set aside, and why
    flywheel jobs        list, wait for, or cancel fine-tune jobs
    flywheel demo        seed, import and materialize the whole graph into the Dagster instance
    flywheel status      which model serves each target, its last evaluation and decision
    flywheel promote     make a succeeded job's model the champion (or challenger), with a reason
    flywheel rollback    remove the challenger or put the previous champion back, with a reason
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _store():
    from pipeline.core.settings import source_url
    from pipeline.core.store import Store

    return Store(source_url())


def _bar_enabled(args: argparse.Namespace) -> bool | None:
    """None: a progress bar on stderr when it is a terminal; False with --json or --no-progress."""
    return False if getattr(args, "json", False) or args.no_progress else None


def cmd_seed(args: argparse.Namespace) -> int:
    from pipeline.core.progress import progress
    from pipeline.synth.generate import seed_command

    out = "-" if args.out == "-" else Path(args.out)
    with progress(args.n, desc="seed", unit="interaction", unit_scale=True, enabled=_bar_enabled(args)) as bar:
        counts = seed_command(n=args.n, seed=args.seed, out=out, bad_share=args.bad_share, bar=bar)
    print(json.dumps(counts, sort_keys=True), file=sys.stderr)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from pipeline.core.progress import input_size, progress
    from pipeline.ingest.importer import import_file

    store = _store()
    path = Path(args.file)
    total = input_size(sys.stdin.buffer) if args.file == "-" else path.stat().st_size if path.is_file() else None
    try:
        with progress(total, desc="import", unit="B", unit_scale=True, counting="record",
                      enabled=_bar_enabled(args)) as bar:
            counts = import_file(store, args.file, batch_size=args.batch_size, bar=bar)
    except FileNotFoundError as exc:
        print(f"flywheel import: {exc}", file=sys.stderr)
        return 2
    result = counts.as_dict() | {"source": args.file, "store": store.masked_url}
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        reasons = ", ".join(f"{k} {v:,}" for k, v in result["quarantined_by_reason"].items()) or "none"
        print(
            f"{args.file}: read {counts.read:,}, inserted {counts.inserted:,}, updated {counts.updated:,}, "
            f"unchanged {counts.unchanged:,}, quarantined {counts.quarantined:,} ({reasons}) → {store.masked_url}"
        )
        if counts.read == 0:
            print(f"{args.file}: no records in the file", file=sys.stderr)
    return 0


def cmd_anonymize(args: argparse.Namespace) -> int:
    from pipeline.anonymize.stream import anonymize_stream
    from pipeline.core.progress import input_size, progress

    with progress(input_size(sys.stdin.buffer), desc="anonymize", unit="B", unit_scale=True, counting="record",
                  enabled=_bar_enabled(args)) as bar:
        counts = anonymize_stream(sys.stdin.buffer, sys.stdout, workers=args.workers, bar=bar)
    print(json.dumps(counts, sort_keys=True), file=sys.stderr)
    return 0


def cmd_quarantine(args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    from pipeline.core.store import quarantine

    store = _store()
    query = sa.select(quarantine).order_by(quarantine.c.quarantined_at.desc()).limit(args.limit)
    if args.stage:
        query = query.where(quarantine.c.stage == args.stage)
    if args.reason:
        query = query.where(quarantine.c.reason == args.reason)
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    print(json.dumps(store.quarantine_counts(args.stage), sort_keys=True))
    for row in rows:
        print(f"{row.stage}\t{row.record_type}\t{row.record_key}\t{row.reason}\t{row.detail}")
    return 0


def cmd_jobs(args: argparse.Namespace) -> int:
    from pipeline.finetune import jobs_cli

    return jobs_cli.run(args)


def cmd_demo(args: argparse.Namespace) -> int:
    from pipeline.demo import run_demo

    return run_demo(n=args.n, seed=args.seed)


def cmd_serving(args: argparse.Namespace) -> int:
    from pipeline.serving import commands

    return commands.run(args, _store())


def cmd_experiment(args: argparse.Namespace) -> int:
    from pipeline.experiments.simulate import simulate

    try:
        result = simulate(args.target, args.lift, args.seed, days=args.days, mode=args.mode, misroute=args.misroute)
    except (KeyError, ValueError) as exc:
        print(f"flywheel experiment simulate: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, sort_keys=True))
        return 0
    print(f"{result['target']}: lift {result['lift']:+.0%} on {result['primary']}, seed {result['seed']}, "
          f"{result['users']} users, {result['interactions']} interactions ({result['mode']})")
    for day in result["history"]:
        print(f"  day {day['day']:>2}  at {day['share']:.0%}  {day['verdict']:<8}  {day['reason'][:160]}")
    print(f"decision: {result['decision']}" + (f" on day {result['decided_on_day']}" if result["decided_on_day"] else ""))
    return 0


def _no_progress_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bar (there is none anyway when stderr is not a terminal)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flywheel", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("seed", help="generate synthetic interactions as JSONL")
    p.add_argument("--n", type=int, default=5_000, help="number of interactions (default 5000)")
    p.add_argument("--seed", type=int, default=0, help="random seed: same seed, same bytes")
    p.add_argument("--out", default="-", help="output file, or - for stdout (default)")
    p.add_argument("--bad-share", type=float, default=0.01, help="share of records that break the contract")
    _no_progress_flag(p)
    p.set_defaults(func=cmd_seed)

    p = sub.add_parser("import", help="load a JSONL file into the interaction store")
    p.add_argument("file", help="JSONL file, or - for stdin")
    p.add_argument("--json", action="store_true", help="print the counts as one JSON object")
    p.add_argument("--batch-size", type=int, default=5_000)
    _no_progress_flag(p)
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("anonymize", help="anonymize a JSONL stream: stdin → stdout")
    p.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    _no_progress_flag(p)
    p.set_defaults(func=cmd_anonymize)

    p = sub.add_parser("quarantine", help="show quarantined records and why")
    p.add_argument("--stage", default=None)
    p.add_argument("--reason", default=None)
    p.add_argument("--limit", type=int, default=20)
    p.set_defaults(func=cmd_quarantine)

    p = sub.add_parser("jobs", help="list, wait for or cancel fine-tune jobs")
    p.add_argument("action", choices=["list", "wait", "cancel"])
    p.add_argument("job_id", nargs="?")
    p.add_argument("--timeout", type=float, default=1800)
    p.set_defaults(func=cmd_jobs)

    p = sub.add_parser("demo", help="seed, import and materialize every asset into the Dagster instance")
    p.add_argument("--n", type=int, default=3_000)
    p.add_argument("--seed", type=int, default=7)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("experiment", help="online experiments: simulate a product's canary to check the decisions")
    esub = p.add_subparsers(dest="experiment_command", required=True)
    p = esub.add_parser("simulate", help="simulate users, routing and outcomes; run the real experiment each day")
    p.add_argument("--target", required=True, help="a target of targets.yaml (its online: settings are used)")
    p.add_argument("--lift", type=float, required=True,
                   help="the challenger's primary metric is the champion's times 1 + lift (0.3: 30%% better)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--days", type=int, default=28, help="simulated days (default 28)")
    p.add_argument("--misroute", type=float, default=0.0,
                   help="share of challenger users a broken assignment serves by the champion (default 0)")
    p.add_argument("--mode", choices=["store", "memory"], default="store",
                   help="store: log into a fresh store and read it back (default); memory: the same logic, faster")
    p.add_argument("--json", action="store_true", help="print one JSON object with decision and daily history")
    p.set_defaults(func=cmd_experiment)

    from pipeline.serving.commands import add_parsers

    add_parsers(sub, cmd_serving)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
