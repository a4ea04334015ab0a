"""`fine_tune_job_status_sensor`: polls live hosted fine-tune jobs so no Dagster step waits on a provider.

Jobs trained in a Dagster step (local backends) are not polled: their step reports them. Every
tick it asks each live hosted job's backend for its status and updates the model registry
(metrics, events, checkpoints, trained tokens, cost, error). A job that ended is reported as a new
materialization of its `fine_tune_job` partition, carrying the final model, metrics and cost, or
the error's code, message and param. A hosted job that succeeded also gets a run of
`record_fine_tune_job_run`: it re-attaches to the job (never submits again) and judges the blocking
`fine_tune_job_succeeded` check in a run, which is what `evaluated_model`'s automation waits for. A job stuck in a queue or silent past the limits is logged
as an error, recorded on its registry row, and reported as a failing `fine_tune_job_not_stuck`
check (passing again once the job moves or ends).

The cursor makes reporting exactly-once: Dagster stores it together with the tick's asset events,
and it remembers the last registry change reported and the jobs currently alerted as stuck.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import dagster as dg

from pipeline.backends.base import FineTuneBackend
from pipeline.backends.resource import FineTuneBackends
from pipeline.core.resources import StoreResource
from pipeline.defs.fine_tune_job import job_metadata
from pipeline.defs.jobs import record_fine_tune_job_run
from pipeline.finetune.settings import STUCK_CHECK, poll_seconds, stuck_limits

if TYPE_CHECKING:  # SQLAlchemy loads when a tick runs, not when the code location loads
    from pipeline.core.store import Store

ASSET_KEY = dg.AssetKey("fine_tune_job")


@dataclass
class TickOutcome:
    asset_events: list[dg.AssetMaterialization] = field(default_factory=list)
    cursor: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    infos: list[str] = field(default_factory=list)
    #: (target, job id) of hosted jobs that succeeded: a run records each and judges fine_tune_job_succeeded
    record_runs: list[tuple[str, str]] = field(default_factory=list)
    #: (target, job id, "stuck" | "cleared"): a run evaluates fine_tune_job_not_stuck alone for the target. Not a
    #: runless AssetCheckEvaluation: Dagster's SQLite storage refuses a second one for the same check and partition
    #: (UNIQUE on asset_check_executions, run id ''), which would fail the tick that clears the alert
    stuck_runs: list[tuple[str, str, str]] = field(default_factory=list)


def parse_cursor(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def ended_event(row: dict[str, Any]) -> dg.AssetMaterialization:
    """The materialization that reports a job's end on its target's partition."""
    if row["status"] == "succeeded":
        what = f"job {row['job_id']} succeeded: {row.get('result_model')}"
    elif row.get("error"):
        what = f"job {row['job_id']} {row['status']}: {row['error'].get('code')}: {row['error'].get('message')}"
    else:
        what = f"job {row['job_id']} {row['status']}"
    return dg.AssetMaterialization(asset_key=ASSET_KEY, partition=row["target"], description=what,
                                   metadata=job_metadata(row))


def stuck_check_request(target: str, job_id: str, state: str, cursor: str | None,
                        limits: dict[str, str]) -> dg.RunRequest:
    """A run of `record_fine_tune_job_run` that evaluates only `fine_tune_job_not_stuck` (it materializes nothing)."""
    from hashlib import sha1

    tick = sha1((cursor or "").encode()).hexdigest()[:12]  # one request per job, state and tick
    return dg.RunRequest(
        partition_key=target,
        run_key=f"{state}:{job_id}:{tick}",
        asset_selection=[],
        asset_check_keys=[dg.AssetCheckKey(ASSET_KEY, STUCK_CHECK)],
        tags={"flywheel/job_id": job_id, "flywheel/stuck": state, **limits},
    )


def evaluate_tick(
    store: "Store",
    backends: Mapping[str, FineTuneBackend],
    cursor: dict[str, Any] | None,
    *,
    targets: set[str],
    max_queued_s: float,
    max_silent_s: float,
    now: datetime | None = None,
) -> TickOutcome:
    """One sensor tick without Dagster: poll, then the events to report and the next cursor."""
    from pipeline.finetune import registry
    from pipeline.finetune.lifecycle import poll_jobs

    out = TickOutcome()
    report = poll_jobs(store, backends, max_queued_s=max_queued_s, max_silent_s=max_silent_s, now=now)
    for job_id, why in report.errors:
        out.errors.append(f"could not poll job {job_id}: {why}")

    # jobs that ended: every terminal registry change since the last one reported
    if cursor is None:  # first tick: the newest ended job of each target, not the whole history
        newest: dict[str, dict[str, Any]] = {}
        for row in registry.list_ended_since(store, None):
            newest[row["target"]] = row
        ended = sorted(newest.values(), key=lambda r: r["updated_at"])
        through, boundary = None, []
    else:
        through, boundary = cursor.get("reported_through"), set(cursor.get("boundary", []))
        ended = [r for r in registry.list_ended_since(store, through) if r["job_id"] not in boundary]
    for row in ended:
        if row["target"] not in targets:
            out.errors.append(f"job {row['job_id']} ended but target {row['target']!r} is no longer declared; "
                              "its registry row holds the result")
        else:
            out.asset_events.append(ended_event(row))
            out.infos.append(f"{row['target']}: job {row['job_id']} {row['status']}")
            if row["status"] == "succeeded" and not registry.trained_in_step(row):
                out.record_runs.append((row["target"], row["job_id"]))
        if through is None or row["updated_at"] > through:
            through, boundary = row["updated_at"], set()
        boundary.add(row["job_id"])

    # stuck alerts: judge the check on entering the stuck state and on leaving it, in a run of its own
    previously = set((cursor or {}).get("stuck", []))
    now_stuck = {row["job_id"]: (row, reason) for row, reason in report.stuck}
    for job_id, (row, reason) in now_stuck.items():
        out.errors.append(f"{row['target']}: {row['backend']} job {job_id} is {reason}")
        if job_id not in previously and row["target"] in targets:
            out.stuck_runs.append((row["target"], job_id, "stuck"))
    for job_id in sorted(previously - set(now_stuck)):
        row = registry.get_job(store, job_id)
        if row is not None and row["target"] in targets:
            out.stuck_runs.append((row["target"], job_id, "cleared"))
    out.cursor = {"reported_through": through, "boundary": sorted(boundary), "stuck": sorted(now_stuck)}
    out.infos.append(report.summary)
    return out


def build_fine_tune_job_status_sensor(
    *,
    name: str = "fine_tune_job_status_sensor",
    minimum_interval_seconds: int | None = None,
    max_queued_s: float | None = None,
    max_silent_s: float | None = None,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING,
) -> dg.SensorDefinition:
    """The job-status sensor; limits default to `FLYWHEEL_JOB_*` environment settings (see settings.py)."""

    @dg.sensor(
        name=name,
        job=record_fine_tune_job_run,
        minimum_interval_seconds=minimum_interval_seconds or poll_seconds(),
        default_status=default_status,
        description="Polls live hosted fine-tune jobs (OpenAI, Hugging Face Jobs), records them in the model "
                    "registry, reports ended jobs as fine_tune_job materializations and stuck jobs as a failing check; "
                    "a succeeded job is recorded by a run that judges fine_tune_job_succeeded.",
    )
    def _sensor(
        context: dg.SensorEvaluationContext,
        store: StoreResource,
        backends: FineTuneBackends,
    ) -> dg.SensorResult:
        from pipeline.defs.partitions import TARGET_PARTITIONS

        queued_default, silent_default = stuck_limits()
        outcome = evaluate_tick(
            store.get(),
            backends.as_mapping(),
            parse_cursor(context.cursor),
            targets=set(context.instance.get_dynamic_partitions(TARGET_PARTITIONS)),
            max_queued_s=max_queued_s or queued_default,
            max_silent_s=max_silent_s or silent_default,
        )
        for line in outcome.errors:
            context.log.error(line)
        for line in outcome.infos:
            context.log.info(line)
        cursor = json.dumps(outcome.cursor, sort_keys=True)
        runs = [dg.RunRequest(partition_key=target, run_key=f"record:{job_id}", tags={"flywheel/job_id": job_id})
                for target, job_id in outcome.record_runs]
        limits = {"flywheel/max_queued_s": str(max_queued_s or queued_default),
                  "flywheel/max_silent_s": str(max_silent_s or silent_default)}
        runs += [stuck_check_request(target, job_id, state, context.cursor, limits)
                 for target, job_id, state in outcome.stuck_runs]
        if not outcome.asset_events and not runs:
            return dg.SensorResult(skip_reason=outcome.infos[-1], cursor=cursor)
        return dg.SensorResult(asset_events=outcome.asset_events, run_requests=runs, cursor=cursor)

    return _sensor


fine_tune_job_status_sensor = build_fine_tune_job_status_sensor()
