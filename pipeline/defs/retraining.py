"""`retrain_on_new_examples` and `weekly_retraining`: the flywheel retrains without a click.

Both plan with `plan_retraining` (the rules are in `pipeline.finetune.retraining`): for every
target partition, the new exportable examples since the target's baseline, and whether a
retraining of it is queued or in flight. The sensor requests a `train_target_job` run once a target
has `retrain_threshold` of them; the schedule, every Sunday 00:00 UTC, retrains each target that has
any, and names the reason for each one it skips.

Exactly once, without floods:
- the cursor (stored by Dagster with the tick's run requests) keeps each target's running tally
  and the watermark it last fired at, so a tick only scores the rows that arrived since the last;
- each request's run key is `<target>@<watermark>`: Dagster never launches the same key twice;
- while a run of the target is queued or running, or its hosted job is live, nothing is requested;
- so a sensor switched back on after a pause requests at most one run per target, for the data it
  finds then, not one per threshold's worth that arrived while it was off.

A tick counts at most `FLYWHEEL_RETRAIN_TICK_SPAN` accepted_seq positions per target (50,000), and
the next ticks go on from there: the first tick on a large log stays within Dagster's 60 s sensor
timeout instead of failing every time without storing a cursor.
"""

import json
import os
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from pipeline.core.resources import StoreResource
from pipeline.defs.jobs import train_target_job
from pipeline.defs.partitions import TARGET_PARTITIONS

SENSOR_NAME = "retrain_on_new_examples"
SCHEDULE_NAME = "weekly_retraining"
#: seconds between two ticks of the sensor (`FLYWHEEL_RETRAIN_SENSOR_SECONDS`)
DEFAULT_SENSOR_SECONDS = 300
#: accepted_seq positions one sensor tick counts per target at most (`FLYWHEEL_RETRAIN_TICK_SPAN`): the first
#: tick on a log of a million interactions took 50 s uncapped (bench/sensor_tick.py), near Dagster's 60 s
#: sensor timeout; a 100,000 cap still took up to 43 s a tick on a loaded 2-core machine, so the ticks
#: catch up 50,000 positions at a time
DEFAULT_TICK_SPAN = 50_000
#: every Sunday at 00:00 UTC (the podcast seed's cadence)
WEEKLY_CRON = "0 0 * * 0"
ACTIVE_RUN_STATUSES = [
    dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING,
]


def in_flight(instance: dg.DagsterInstance, store, key: str) -> str | None:
    """Why a retraining of `key` must not start now (a run queued or running, a live hosted job), else None."""
    from pipeline.finetune import registry

    runs = instance.get_runs(
        filters=dg.RunsFilter(job_name=train_target_job.name, statuses=ACTIVE_RUN_STATUSES,
                              tags={"dagster/partition": key}),
        limit=1,
    )
    if runs:
        return f"run {runs[0].run_id} of {train_target_job.name} is {runs[0].status.value.lower()}"
    live = registry.list_jobs(store, key, live_only=True)
    if live:
        return f"{live[0]['backend']} job {live[0]['job_id']} is {live[0]['status']}"
    return None


def trained_watermarks(instance: dg.DagsterInstance, store, key: str) -> list[int | None]:
    """Watermarks of the data of the model in service and of the newest model trained for `key`."""
    from pipeline.defs.gate_status import version_watermark
    from pipeline.finetune import registry
    from pipeline.serving import production

    rows = []
    serving = production.current(store, key)
    if serving is not None and serving.champion.job_id:
        rows.append(registry.get_job(store, serving.champion.job_id))
    rows.extend(r for r in registry.list_jobs(store, key) if r["status"] == "succeeded")
    versions = {str(r["dataset_version"]) for r in rows[:2] if r is not None}
    return [version_watermark(instance, key, v) for v in sorted(versions)]


def tick_span() -> int:
    return int(os.environ.get("FLYWHEEL_RETRAIN_TICK_SPAN", DEFAULT_TICK_SPAN))


def plan_retraining(
    instance: dg.DagsterInstance, store, cursor: dict[str, Any] | None, *, minimum: int | None, trigger: str,
    max_span: int | None = None,
) -> tuple[list, dict[str, Any]]:
    """(one decision per target partition, the next cursor); `minimum` None means each target's `retrain_threshold`.

    `max_span` caps the accepted_seq positions counted per target (see `update_tally`); a decision
    whose count stopped short says so.
    """
    from pipeline.core.targets import get_target
    from pipeline.finetune.retraining import Tally, baseline, count_new_examples, decide, update_tally

    cursor = cursor or {}
    tallies, fired = dict(cursor.get("tallies", {})), dict(cursor.get("fired", {}))
    through = store.accepted_through()
    decisions = []
    for key in sorted(instance.get_dynamic_partitions(TARGET_PARTITIONS)):
        try:
            target = get_target(key)
        except Exception as exc:  # noqa: BLE001 - a key the targets file no longer declares: say so, go on
            decisions.append(_undeclared(key, exc))
            continue
        since = baseline([*trained_watermarks(instance, store, key), fired.get(key)])
        previous = Tally(**tallies[key]) if key in tallies else None
        tally = update_tally(previous, since, through, lambda a, b, t=target: count_new_examples(store, t, a, b),
                             max_span)
        tallies[key] = tally.as_dict()
        decision = decide(key, tally, target.retrain_threshold if minimum is None else minimum,
                          in_flight(instance, store, key))
        if tally.through_seq < through:
            decision = replace(decision, reason=f"{decision.reason} (counted through accepted_seq "
                                                f"{tally.through_seq} of {through}; the next ticks count the rest)")
        if decision.fire:
            fired[key] = tally.through_seq
        decisions.append(decision)
    known = set(instance.get_dynamic_partitions(TARGET_PARTITIONS))
    return decisions, {"tallies": {k: v for k, v in tallies.items() if k in known},
                       "fired": {k: v for k, v in fired.items() if k in known}, "trigger": trigger}


def _undeclared(key: str, exc: Exception):
    from pipeline.finetune.retraining import RetrainDecision, Tally

    return RetrainDecision(key, False, f"{key}: not a declared target ({exc})", Tally(0, 0, 0), 0)


def run_requests(decisions: list, trigger: str, *, key_prefix: str = "") -> list[dg.RunRequest]:
    return [dg.RunRequest(partition_key=d.target, run_key=key_prefix + d.run_key, tags=d.tags(trigger))
            for d in decisions if d.fire]


def _parse(text: str | None) -> dict[str, Any] | None:
    try:
        value = json.loads(text) if text else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


@dg.sensor(
    name=SENSOR_NAME,
    job=train_target_job,
    minimum_interval_seconds=int(os.environ.get("FLYWHEEL_RETRAIN_SENSOR_SECONDS", DEFAULT_SENSOR_SECONDS)),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Retrains a target once retrain_threshold new exportable examples arrived since the data of its "
                "model in service (or of its newest model), one run at a time per target.",
)
def retrain_on_new_examples(context: dg.SensorEvaluationContext, store: StoreResource) -> dg.SensorResult:
    decisions, cursor = plan_retraining(context.instance, store.get(), _parse(context.cursor), minimum=None,
                                        trigger=SENSOR_NAME, max_span=tick_span())
    for decision in decisions:
        context.log.info(decision.reason)
    requests = run_requests(decisions, SENSOR_NAME)
    text = json.dumps(cursor, sort_keys=True)
    if not requests:
        return dg.SensorResult(skip_reason="; ".join(d.reason for d in decisions) or "no target partitions yet",
                               cursor=text)
    return dg.SensorResult(run_requests=requests, cursor=text)


@dg.schedule(
    name=SCHEDULE_NAME,
    cron_schedule=WEEKLY_CRON,
    execution_timezone="UTC",
    job=train_target_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every Sunday 00:00 UTC: retrains each target with any new exportable example; the tick names "
                "why each other target was skipped.",
)
def weekly_retraining(context: dg.ScheduleEvaluationContext, store: StoreResource):
    decisions, _ = plan_retraining(context.instance, store.get(), None, minimum=1, trigger=SCHEDULE_NAME)
    skipped = [d.reason for d in decisions if not d.fire]
    for reason in skipped:
        context.log.info(f"skipped {reason}")
    tick = context.scheduled_execution_time or datetime.now(UTC)
    requests = run_requests(decisions, SCHEDULE_NAME, key_prefix=f"weekly-{tick:%Y-%m-%d}:")
    if not requests:
        return dg.SkipReason("; ".join(skipped) or "no target partitions yet")
    return requests
