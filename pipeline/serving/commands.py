"""`flywheel status`, `flywheel promote` and `flywheel rollback`: what serves, and the manual overrides.

Manual actions always win over automation and are recorded like any decision: who (`--by`, the
OS user by default) and why (`--reason`, required). `promote` takes a succeeded job of the
target and makes its model the champion (or, with `--share`, the challenger at that share).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return "unknown"


def latest_evaluation(target: str) -> dict[str, Any] | None:
    """The newest evaluation report of `target` (FLYWHEEL_HOME/<target>/evaluations/*.json), summarised."""
    from pipeline.core.artifacts import target_dir

    folder = target_dir(target) / "evaluations"
    reports = sorted(folder.glob("eval-*.json")) if folder.exists() else []
    if not reports:
        return None
    report = json.loads(reports[-1].read_text(encoding="utf-8"))
    cmp = report.get("vs_champion") or {}
    return {
        "evaluation_id": report["evaluation_id"], "created_at": report.get("created_at"), "status": report["status"],
        "candidate": report["candidate"]["model"], "candidate_job_id": report["candidate"].get("job_id"),
        "primary": report.get("primary"), "difference": cmp.get("difference"), "low": cmp.get("low"), "high": cmp.get("high"),
        "decision": (report.get("decision") or {}).get("action"), "reason": (report.get("decision") or {}).get("reason")
        or report.get("reason"), "path": str(reports[-1]),
    }


def status(store, names: list[str]) -> dict[str, Any]:
    """`{"targets": {name: {"champion": {...}, "challenger": {...} | None, "challenger_share", ...}}}`."""
    from pipeline.core.targets import get_target
    from pipeline.serving import production
    from pipeline.serving.rollout import base_ref

    out: dict[str, Any] = {}
    for name in names:
        rollout = production.current(store, name)
        last = production.history(store, name, limit=1)
        if rollout is None:  # nothing recorded yet: the base model serves
            try:
                champion = base_ref(get_target(name)).as_dict()
            except KeyError:
                champion = None
        else:
            champion = rollout.champion.as_dict()
        out[name] = {
            "champion": champion,
            "recorded": rollout is not None,
            "challenger": rollout.challenger.as_dict() if rollout and rollout.challenger else None,
            "challenger_share": rollout.challenger_share if rollout else 0.0,
            "rollout_id": rollout.rollout_id if rollout else None,
            "last_evaluation": latest_evaluation(name),
            "last_decision": {k: last[0][k] for k in ("action", "at", "by", "reason", "model")} if last else None,
        }
    return {"targets": out}


def _target_names(store, only: str | None) -> list[str]:
    """Every fixed target, every family member whose tenant qualifies now, and whatever else ever served."""
    import sqlalchemy as sa

    from pipeline.core.families import plan_partitions
    from pipeline.core.store import rollouts
    from pipeline.core.targets import load_targets
    from pipeline.curation.tenants import tenant_stats

    if only:
        return [only]
    targets = load_targets()
    members = plan_partitions(targets, tenant_stats(store, targets), current=()).add
    with store.engine.connect() as conn:
        served = {row.target for row in conn.execute(sa.select(rollouts.c.target))}
    return sorted(set(members) | served)


def _print_status(data: dict[str, Any]) -> None:
    for name, row in data["targets"].items():
        champion = row["champion"]["model"] if row["champion"] else "unknown target"
        if not row["recorded"]:
            champion += "  (base model: nothing evaluated or promoted yet)"
        print(f"{name}")
        print(f"  champion:   {champion}")
        if row["challenger"]:
            print(f"  challenger: {row['challenger']['model']} at {row['challenger_share']:.0%}")
        ev = row["last_evaluation"]
        if ev:
            diff = "" if ev["difference"] is None else f" {ev['primary']} {ev['difference']:+.3f} [{_b(ev['low'])}, {_b(ev['high'])}]"
            print(f"  evaluated:  {ev['created_at']} {ev['status']}{diff} → {ev['decision'] or '-'}")
        if row["last_decision"]:
            d = row["last_decision"]
            print(f"  last:       {d['action']} by {d['by']} at {d['at']}: {d['reason']}")


def _b(value: Any) -> str:
    return "?" if value is None else f"{value:+.3f}"


def run(args: argparse.Namespace, store) -> int:
    from pipeline.core.targets import get_target
    from pipeline.evaluation.decision import Decision
    from pipeline.finetune import registry
    from pipeline.serving import production
    from pipeline.serving.rollout import ModelRef

    if args.command == "status":
        data = status(store, _target_names(store, args.target))
        if args.json:
            print(json.dumps(data, indent=2, sort_keys=True))
        else:
            _print_status(data)
        return 0
    try:
        target = get_target(args.target)
    except KeyError as exc:
        print(f"flywheel {args.command}: {exc}", file=sys.stderr)
        return 2
    by = args.by or _user()
    if args.command == "rollback":
        try:
            rollout = production.rollback(store, target, by=by, reason=args.reason)
        except production.NothingToRollBack as exc:
            print(f"flywheel rollback: {exc}", file=sys.stderr)
            return 1
    else:
        row = registry.get_job(store, args.job)
        if row is None or row["target"] != target.name:
            print(f"flywheel promote: job {args.job!r} is not a job of target {target.name!r} "
                  "(see `flywheel jobs list`)", file=sys.stderr)
            return 2
        try:
            candidate = ModelRef.from_job(row)
        except ValueError as exc:
            print(f"flywheel promote: {exc}", file=sys.stderr)
            return 1
        if args.share is None:
            decision = Decision("promote_champion", f"manual promotion: {args.reason}")
        else:
            decision = Decision("promote_challenger", f"manual promotion at {args.share:.0%}: {args.reason}", args.share)
        try:
            rollout = production.record_decision(store, target, decision, candidate=candidate, by=by,
                                                 evaluation={"manual": True})
        except ValueError as exc:
            print(f"flywheel promote: {exc}", file=sys.stderr)
            return 1
    from pipeline.serving.rollout import rollout_path

    print(json.dumps({"target": target.name, "champion": rollout.champion.as_dict(),
                      "challenger": rollout.challenger.as_dict() if rollout.challenger else None,
                      "challenger_share": rollout.challenger_share, "rollout_id": rollout.rollout_id,
                      "rollout_file": str(rollout_path(target.name))}, indent=2))
    return 0


def add_parsers(sub, func) -> None:
    p = sub.add_parser("status", help="which model serves each target, the last evaluation and decision")
    p.add_argument("target", nargs="?", help="one target (default: all)")
    p.add_argument("--json", action="store_true", help='one JSON object {"targets": {name: {...}}}')
    p.set_defaults(func=func)

    p = sub.add_parser("promote", help="make a succeeded job's model the champion (or the challenger with --share)")
    p.add_argument("target")
    p.add_argument("--job", required=True, help="the fine-tune job id (see `flywheel jobs list`)")
    p.add_argument("--share", type=_share, default=None, help="serve it as challenger to this share of users (0..1)")
    p.add_argument("--reason", required=True, help="why (recorded in the history)")
    p.add_argument("--by", default=None, help="who (default: the OS user)")
    p.set_defaults(func=func)

    p = sub.add_parser("rollback", help="remove the challenger, or put the previous champion back")
    p.add_argument("target")
    p.add_argument("--reason", required=True, help="why (recorded in the history)")
    p.add_argument("--by", default=None, help="who (default: the OS user)")
    p.set_defaults(func=func)


def _share(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError("--share is a fraction between 0 and 1 (exclusive)")
    return value


__all__ = ["add_parsers", "latest_evaluation", "run", "status"]
