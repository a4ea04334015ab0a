"""Keeps the `training_targets` dynamic partitions in step with the targets file and the tenants.

`sync_target_partitions(instance, store)` plans (`pipeline/core/families.py`) from what the store
says about each tenant (`pipeline/curation/tenants.py`) and applies the plan: new keys are added,
keys of tenants that no longer qualify are deleted, and the models of tenants that left (opted out,
left the plan) are marked retired in the model registry and their rollout goes back to the base model.

`target_partitions_sensor` only looks whether the data, the organizations or the targets file
changed since its last tick (a count and two maxima: milliseconds at a million interactions) and
then requests `sync_target_partitions_job`, whose one op does the planning. Planning re-counts the
examples of every tenant that may qualify (30 s at a million interactions on two cores), which is
run work: it gets a run's logs and retries in the UI and never meets a sensor's 60 s timeout.
"""

import json
import os

import dagster as dg

from pipeline.core.families import PartitionPlan, plan_partitions
from pipeline.core.resources import StoreResource
from pipeline.defs.partitions import TARGET_PARTITIONS

#: seconds between two ticks of the sensor (`FLYWHEEL_PARTITIONS_SYNC_SECONDS`)
DEFAULT_SYNC_SECONDS = 300


def sync_target_partitions(instance: dg.DagsterInstance, store, targets=None) -> PartitionPlan:
    """Add qualifying members and fixed targets, remove the keys that no longer qualify, retire tenants that left.

    Idempotent: a second call with nothing changed adds, removes and retires nothing.
    """
    from pipeline.core.targets import MEMBER_SEPARATOR, load_targets
    from pipeline.curation.tenants import tenant_stats
    from pipeline.finetune import registry
    from pipeline.serving import production
    from pipeline.serving.rollout import base_ref

    targets = load_targets() if targets is None else targets
    current = instance.get_dynamic_partitions(TARGET_PARTITIONS)
    plan = plan_partitions(targets, tenant_stats(store, targets), current, registry.targets_with_active_models(store))
    if plan.add:
        instance.add_dynamic_partitions(TARGET_PARTITIONS, sorted(plan.add))
    for key, reason in sorted(plan.retire.items()):
        registry.retire_models(store, key, reason)
        family = targets.get(key.partition(MEMBER_SEPARATOR)[0])
        if family is not None:  # the family's base model serves the tenant's users from now on
            production.retire(store, key, base_ref(family), by="target_partitions_sensor",
                              reason=f"tenant retired: {reason}")
    for key in sorted({*plan.remove, *plan.retire}):
        if key in current:
            instance.delete_dynamic_partition(TARGET_PARTITIONS, key)
    return plan


@dg.op(
    name="sync_target_partitions",
    description="Re-plans the training_targets partitions from targets.yaml and the tenants' counts, applies the "
                "plan and retires the models of tenants that left.",
)
def sync_target_partitions_op(context: dg.OpExecutionContext, store: StoreResource) -> dict:
    plan = sync_target_partitions(context.instance, store.get())
    for key, reason in sorted(plan.retire.items()):
        context.log.warning(f"retired {key}: {reason}")
    for key, reason in sorted(plan.skipped.items()):
        context.log.warning(f"not a member: {key}: {reason}")
    context.log.info(plan.summary())
    context.add_output_metadata({
        "summary": plan.summary(),
        "members": dg.MetadataValue.json(sorted(plan.members)),
        "added": dg.MetadataValue.json(dict(sorted(plan.add.items()))),
        "removed": dg.MetadataValue.json(dict(sorted({**plan.remove, **plan.retire}.items()))),
        "declined": dg.MetadataValue.json(dict(sorted({**plan.declined, **plan.skipped}.items()))),
    })
    return {"members": sorted(plan.members), "changed": plan.changed}


@dg.job(
    name="sync_target_partitions_job",
    description="Keeps the training_targets partitions in step with targets.yaml and the tenants "
                "(requested by target_partitions_sensor when the data or the targets file changed).",
    tags={"dagster/max_retries": 1},
)
def sync_target_partitions_job():
    sync_target_partitions_op()


def _in_flight(instance: dg.DagsterInstance) -> bool:
    runs = instance.get_runs(dg.RunsFilter(job_name="sync_target_partitions_job", statuses=[
        dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
        dg.DagsterRunStatus.STARTED]), limit=1)
    return bool(runs)


def _fingerprint(store) -> dict:
    """What the plan depends on: the accepted interactions, the organizations, the targets file."""
    import sqlalchemy as sa

    from pipeline.core import store as st
    from pipeline.core.targets import targets_file

    with store.engine.connect() as conn:
        accepted = conn.execute(sa.select(sa.func.count(), sa.func.max(st.accepted.c.accepted_seq))).one()
        orgs = conn.execute(sa.select(sa.func.count(), sa.func.max(st.organizations.c.seq))).one()
    path = targets_file()
    return {"accepted": [int(accepted[0]), int(accepted[1] or 0)], "organizations": [int(orgs[0]), int(orgs[1] or 0)],
            "targets_file": [str(path), path.stat().st_mtime if path.exists() else 0.0]}


@dg.sensor(
    name="target_partitions_sensor",
    job=sync_target_partitions_job,
    minimum_interval_seconds=int(os.environ.get("FLYWHEEL_PARTITIONS_SYNC_SECONDS", DEFAULT_SYNC_SECONDS)),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests sync_target_partitions_job when the accepted interactions, the organizations or "
                "targets.yaml changed: it adds tenants that qualify for a family, removes those that no longer do "
                "and retires the models of tenants that left (their rollout goes back to the base model).",
)
def target_partitions_sensor(context: dg.SensorEvaluationContext, store: StoreResource) -> dg.SensorResult:
    import hashlib

    fingerprint = _fingerprint(store.get())
    cursor = json.dumps(fingerprint, sort_keys=True)
    if context.cursor == cursor:
        return dg.SensorResult(skip_reason="nothing changed since the last sync", cursor=cursor)
    if _in_flight(context.instance):  # the cursor stays: the next tick after that run looks again
        return dg.SensorResult(skip_reason="a sync_target_partitions_job run is in flight", cursor=context.cursor)
    run_key = "sync-" + hashlib.sha1(cursor.encode()).hexdigest()[:16]
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=run_key)], cursor=cursor)
