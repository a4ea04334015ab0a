"""`model_in_service_fresh` and `model_freshness_sensor`: a model left in service too long shows as stale.

The logic is `pipeline.serving.freshness` (pure). The check runs in every `production_model`
materialization, and — since a model grows old without anyone materializing anything — the sensor
re-judges every target each tick (`FLYWHEEL_FRESHNESS_SENSOR_SECONDS`, default 3600) from the store
and requests a run of `model_freshness_job` **with only this check selected**, for a target whose
state changed (fresh → stale, stale → fresh), once per change: the UI shows the state, and
`on_call_alerts` alerts on the failed evaluation once.

Why a run and not a runless `AssetCheckEvaluation` from the sensor: on SQLite a second runless
evaluation of the same (check, partition) fails with a UNIQUE constraint on
`asset_check_executions` (run id ''), so a target could go stale only once. A job built from
`AssetSelection.checks(...)` alone has no partitions definition in Dagster 1.13 ("There is no
PartitionsDefinition shared by all the provided assets", also from a sensor's `target=`); a job
that selects `production_model` and a run request with `asset_selection=[]` and
`asset_check_keys=[this check]` runs the check alone, per partition, and materializes nothing
(verified with the real sensor daemon).
"""

import json
import os

import dagster as dg

from pipeline.core.resources import StoreResource
from pipeline.defs.fine_tune_sensors import parse_cursor
from pipeline.defs.partitions import TARGET_PARTITIONS, target_check, target_partitions

FRESHNESS_CHECK = "model_in_service_fresh"
CHECK_KEY = dg.AssetCheckKey(dg.AssetKey("production_model"), FRESHNESS_CHECK)
SENSOR_NAME = "model_freshness_sensor"
#: seconds between two ticks of the sensor (`FLYWHEEL_FRESHNESS_SENSOR_SECONDS`)
DEFAULT_SENSOR_SECONDS = 3600


def freshness_result(fresh) -> dg.AssetCheckResult:
    """The check's result for a `Freshness`: ERROR when stale, with what serves, since when, age and window."""
    metadata = {
        "model_in_service": dg.MetadataValue.text(fresh.model or "none recorded"),
        "base_model": dg.MetadataValue.bool(fresh.is_base),
        "promoted_at": dg.MetadataValue.text(fresh.since or "never"),
        "window_days": dg.MetadataValue.float(float(fresh.window_days)),
        "state": dg.MetadataValue.text(fresh.state),
        "challenger": dg.MetadataValue.text(fresh.challenger or "none"),
    }
    if fresh.age_days is not None:
        metadata["age_days"] = dg.MetadataValue.float(float(fresh.age_days))
    return dg.AssetCheckResult(passed=not fresh.stale, severity=dg.AssetCheckSeverity.ERROR,
                               description=fresh.describe(), metadata=metadata)


@target_check(asset="production_model", name=FRESHNESS_CHECK)
def model_in_service_fresh(context: dg.AssetCheckExecutionContext, store: StoreResource) -> dg.AssetCheckResult:
    """The model serving the target (its champion, the base model too) went into service at most the target's
    freshness_days ago (default 14); ERROR when it is older: nothing newer was promoted since."""
    from pipeline.core.targets import get_target
    from pipeline.serving.freshness import freshness

    key = context.op_execution_context.partition_key
    try:
        return freshness_result(freshness(store.get(), get_target(key)))
    except (KeyError, ValueError) as exc:  # an undeclared target, a history row with a bad time
        return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.ERROR,
                                   description=f"{key}: freshness cannot be judged: {exc}",
                                   metadata={"error": dg.MetadataValue.text(str(exc))})


model_freshness_job = dg.define_asset_job(
    "model_freshness_job",
    selection=dg.AssetSelection.assets("production_model"),
    partitions_def=target_partitions,
    description="Run by model_freshness_sensor with only model_in_service_fresh selected (it materializes nothing "
                "then); launched whole by hand it materializes production_model, like its Materialize button.",
)


def recorded_state(instance: dg.DagsterInstance, target: str) -> bool | None:
    """`passed` of the latest evaluation of the check for `target`; None when none has finished."""
    from dagster._core.event_api import PartitionKeyFilter

    history = instance.event_log_storage.get_asset_check_execution_history(
        CHECK_KEY, limit=1, partition_filter=PartitionKeyFilter(key=target))
    evaluation = history[0].evaluation if history else None
    return None if evaluation is None else bool(evaluation.passed)


@dg.sensor(
    name=SENSOR_NAME,
    job=model_freshness_job,
    minimum_interval_seconds=int(os.environ.get("FLYWHEEL_FRESHNESS_SENSOR_SECONDS", DEFAULT_SENSOR_SECONDS)),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Re-judges how old each target's model in service is and runs model_in_service_fresh for a target "
                "whose state changed (fresh or stale), once per change.",
)
def model_freshness_sensor(context: dg.SensorEvaluationContext, store: StoreResource) -> dg.SensorResult:
    from pipeline.core.targets import get_target
    from pipeline.serving.freshness import freshness, plan_requests

    db = store.get()
    states, problems = {}, []
    for key in sorted(context.instance.get_dynamic_partitions(TARGET_PARTITIONS)):
        try:
            states[key] = freshness(db, get_target(key))
        except (KeyError, ValueError) as exc:  # said, and the other targets are judged
            problems.append(f"{key}: freshness cannot be judged: {exc}")
    for line in problems:
        context.log.error(line)
    requests, cursor = plan_requests(states, parse_cursor(context.cursor),
                                     lambda key: recorded_state(context.instance, key))
    text = json.dumps(cursor, sort_keys=True)
    for request in requests:
        context.log.info(f"{states[request.target].describe()} → evaluating {FRESHNESS_CHECK}")
    if not requests:
        summary = "; ".join([*(f"{k} {f.state}" + (f" ({f.age_days:.1f} of {f.window_days:g} days)"
                                                    if f.age_days is not None else "")
                               for k, f in states.items()), *problems])
        return dg.SensorResult(skip_reason=f"no change in freshness: {summary or 'no target partitions yet'}",
                               cursor=text)
    return dg.SensorResult(
        run_requests=[dg.RunRequest(partition_key=r.target, run_key=r.run_key, asset_selection=[],
                                    asset_check_keys=[CHECK_KEY], tags={"flywheel/freshness": r.state})
                      for r in requests],
        cursor=text,
    )
