"""`online_experiment`: the product's own users judge the challenger; the canary advances or rolls back.

A thin wrapper around `pipeline.experiments.experiment`: each materialization looks at the current
canary step of one target (the interactions the log attributes to its rollout id), runs the
anytime-valid tests and records the decision — advance, promote, rollback or stop — as a
`production_model` history row, which rewrites the rollout file and pages on-call through
`on_call_alerts`. `online_experiment_daily` looks at every target with a challenger once a day.
"""

import math

import dagster as dg

from pipeline.core import markdown
from pipeline.core.resources import StoreResource
from pipeline.core.targets import get_target
from pipeline.defs.partitions import TARGET_PARTITIONS, target_partitions

CODE_VERSION = "online_experiment-1"
DAILY_CRON = "0 6 * * *"


def _fmt(x: float) -> str:
    return f"{x:+.4f}" if math.isfinite(x) else ("+inf" if x > 0 else "-inf")


def _effect_rows(look) -> list[dict]:
    rows = []
    for role, e in [("primary", look.primary), *(("guardrail", g) for g in look.guardrails)]:
        if e is None:
            continue
        rows.append({"metric": e.metric, "role": role, "champion": f"{e.champion_mean:.4f}",
                     "challenger": f"{e.challenger_mean:.4f}", "difference": _fmt(e.difference),
                     "interval": f"[{_fmt(e.low)}, {_fmt(e.high)}]", "p": f"{e.p_value:.3g}",
                     "users": f"{e.champion_users} / {e.challenger_users}"})
    return rows


def _over_time(look, metric: str) -> str:
    """The primary metric per day of the step, each variant's cumulative mean as a bar (text, like every plot here)."""
    lines = [f"{metric} by day of the step: each variant's share of interactions, cumulative (bar) and that day", "",
             "| day | champion | challenger | champion (day) | challenger (day) |", "|---|---|---|---|---|"]
    for row in look.daily:
        def bar(v):
            return "—" if v is None else f"`{'█' * round(v * 30):<30}` {v:.3f}"
        lines.append(f"| {row['day']} | {bar(row['champion_cumulative'])} | {bar(row['challenger_cumulative'])} "
                     f"| {row['champion'] if row['champion'] is not None else '—'} "
                     f"| {row['challenger'] if row['challenger'] is not None else '—'} |")
    return "\n".join(lines)


def headline(look) -> str:
    """One line for the top of the metadata: what was decided, on which metric, by how much."""
    d = look.decision
    if d is None:
        return "no experiment: no challenger serves this target"
    p = look.primary
    rel = f"{p.relative:+.1%}" if p is not None and math.isfinite(p.relative) else "n/a"
    if d.verdict == "stop":
        return (f"stopped: sample ratio mismatch ({look.srm.observed_challenger_share:.1%} challenger users where "
                f"{look.srm.expected_challenger_share:.0%} is routed)")
    if d.verdict == "rollback":
        worse = [g.metric for g in look.guardrails if g.low > 0] or [p.metric]
        return f"rolled back: {', '.join(worse)} significantly worse ({p.metric} {rel})"
    if d.verdict == "advance":
        return f"advanced {d.share:.0%} → {d.next_share:.0%}: no harm shown ({p.metric} {rel})"
    if d.verdict == "promote":
        return f"promoted to 100%: {p.metric} significantly better ({rel})"
    return f"continuing at {d.share:.0%} ({p.metric} {rel} so far; see reason)"


def look_metadata(look, applied) -> dict:
    """What the UI shows: the decision and why, per-variant table, tests, SRM, counts and the metric over time."""
    meta = {
        "summary": dg.MetadataValue.text(headline(look)),
        "decision": dg.MetadataValue.text(look.verdict),
        "decision_applied": dg.MetadataValue.bool(applied is not None),
        "reason": dg.MetadataValue.md(look.decision.reason if look.decision else "no challenger serves: nothing to judge"),
        "challenger_share": dg.MetadataValue.float(float(look.share)),
        "rollout_id": dg.MetadataValue.text(look.rollout_id or "none"),
        "as_of": dg.MetadataValue.text(look.as_of or "empty log"),
    }
    if look.decision is None:
        return meta
    counts = look.counts
    meta.update({
        "next_share": dg.MetadataValue.float(float(look.decision.next_share)),
        "days_in_step": dg.MetadataValue.float(round(look.days_in_step, 2)),
        "variants": dg.MetadataValue.md(markdown.table(look.variants, max_chars=40)),
        "tests": dg.MetadataValue.md(markdown.table(_effect_rows(look), max_chars=40)),
        "sample_ratio": dg.MetadataValue.md(
            f"champion {look.srm.champion_users} users, challenger {look.srm.challenger_users} users "
            f"({look.srm.observed_challenger_share:.2%} challenger; the rollout routes "
            f"{look.srm.expected_challenger_share:.2%}); anytime-valid p = {look.srm.p_value:.3g}"),
        "interactions_read": dg.MetadataValue.int(counts.read),
        "interactions_tallied": dg.MetadataValue.int(counts.tallied),
        "set_aside": dg.MetadataValue.md(markdown.counts(sorted(counts.set_aside.items())) if counts.set_aside
                                         else "none"),
        "outcomes": dg.MetadataValue.json(dict(counts.outcomes)),
        "users_in_both_variants": dg.MetadataValue.int(look.crossed_users),
        "primary_over_time": dg.MetadataValue.md(_over_time(look, look.primary.metric)),
    })
    if look.primary is not None and math.isfinite(look.primary.champion_mean):
        meta["primary_champion"] = dg.MetadataValue.float(round(look.primary.champion_mean, 6))
    if look.primary is not None and math.isfinite(look.primary.challenger_mean):
        meta["primary_challenger"] = dg.MetadataValue.float(round(look.primary.challenger_mean, 6))
    return meta


@dg.asset(
    partitions_def=target_partitions,
    deps=[dg.AssetKey("production_model"), dg.AssetKey("raw_interactions")],
    group_name="serving",
    kinds={"python"},
    owners=["team:ml-platform"],
    code_version=CODE_VERSION,
)
def online_experiment(context: dg.AssetExecutionContext, store: StoreResource) -> dg.MaterializeResult:
    """What users did with each variant's answers: anytime-valid tests advance, promote or roll back the canary."""
    from pipeline.experiments import experiment

    target = get_target(context.partition_key)
    db = store.get()
    look = experiment.look(db, target)
    applied = experiment.apply(db, target, look)
    if look.decision is None:
        context.log.info(f"{target.name}: no challenger serves; nothing to judge")
    elif look.decision.verdict in experiment.HISTORY_ACTION and applied is None:
        context.log.warning(f"{target.name}: {look.verdict} not applied: the rollout changed since the look "
                            "(a manual promote or rollback wins)")
    else:
        context.log.info(f"{target.name}: {look.verdict}: {look.decision.reason}")
    return dg.MaterializeResult(metadata=look_metadata(look, applied))


online_experiment_job = dg.define_asset_job(
    "online_experiment_job",
    selection=dg.AssetSelection.assets("online_experiment"),
    partitions_def=target_partitions,
    description="Looks at one target's online experiment and records its decision.",
)


@dg.schedule(
    job=online_experiment_job,
    cron_schedule=DAILY_CRON,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every day at 06:00 UTC, looks at the online experiment of each target a challenger serves.",
)
def online_experiment_daily(context: dg.ScheduleEvaluationContext, store: StoreResource):
    from pipeline.serving import production

    db = store.get()
    from datetime import UTC, datetime

    day = (context.scheduled_execution_time or datetime.now(UTC)).strftime("%Y-%m-%d")
    requests = []
    for key in sorted(context.instance.get_dynamic_partitions(TARGET_PARTITIONS)):
        rollout = production.current(db, key)
        if rollout is not None and rollout.challenger is not None:
            requests.append(dg.RunRequest(partition_key=key, run_key=f"online_experiment:{key}:{day}"))
    if not requests:
        return dg.SkipReason("no target has a challenger in service: no experiment to look at")
    return requests
