"""`fine_tune_job`: the fine-tune job of the target's latest approved training file.

A graph-backed asset, so each kind of work runs where it belongs:

    fine_tune_request ──local──► train_locally   (pool local_training, RetryPolicy, resumes from checkpoints)
            │                                      ╲
            └──────hosted──► submit_hosted  (pool hosted_submission)  ──► record_fine_tune_job

- `fine_tune_request` refuses a dataset version that did not pass every blocking check on it and
  upstream of it (`gate_status`), builds the request and validates it with the backend.
- Local backends train **inside** `train_locally`, on Dagster's executor: the step's process on
  one machine, a Celery worker or a Kubernetes pod (GPU request: `FLYWHEEL_TRAINING_STEP_TAGS`,
  see deploy/k8s/) on a cluster. Progress goes to the run's logs and the model registry; a failed
  attempt is retried and resumes from the last checkpoint; terminating the run cancels it.
- Hosted backends (OpenAI, Hugging Face Jobs) are submitted by `submit_hosted`, which returns at
  once; the job-status sensor polls them and reports their end as a new materialization.

A version that already has a succeeded (or, hosted, a live) job is re-attached, never trained twice.
"""


import os
import time
from pathlib import Path
from typing import Any

import dagster as dg
import yaml

from pipeline.backends.base import FineTuneRequest, JobStatus
from pipeline.backends.resource import FineTuneBackends
from pipeline.core.resources import StoreResource
from pipeline.core.targets import get_target
from pipeline.defs.gate_status import require_approved_training_file
from pipeline.defs.partitions import target_check, target_partitions
from pipeline.finetune.settings import STUCK_CHECK, stuck_limits

#: retries of a failed training attempt; each resumes from the job's last checkpoint
TRAINING_RETRY = dg.RetryPolicy(max_retries=2, delay=10, backoff=dg.Backoff.EXPONENTIAL)
#: errors that a retry cannot fix: the request or its files are wrong
NOT_RETRIED = (ValueError, TypeError, KeyError, FileNotFoundError, NotImplementedError)
#: seconds between progress lines in the run's logs (every state change is logged at once)
PROGRESS_LOG_S = 10.0


def training_step_tags() -> dict[str, Any]:
    """Op tags of the training step from the YAML file `FLYWHEEL_TRAINING_STEP_TAGS` names (none when unset).

    deploy/k8s/training_step_tags.yaml holds the `dagster-k8s/config` that gives the step a GPU
    under the k8s_job_executor; other executors ignore the tag.
    """
    path = os.environ.get("FLYWHEEL_TRAINING_STEP_TAGS", "").strip()
    if not path:
        return {}
    tags = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(tags, dict):
        raise ValueError(f"FLYWHEEL_TRAINING_STEP_TAGS={path}: expected a mapping of op tags")
    return tags


def job_metadata(row: dict[str, Any]) -> dict[str, Any]:
    """Typed metadata of a registry row: what the UI shows for a fine_tune_job partition."""
    from pipeline.finetune import registry

    metadata: dict[str, Any] = {
        "job_id": dg.MetadataValue.text(row["job_id"]),
        "backend": dg.MetadataValue.text(row["backend"]),
        "base_model": dg.MetadataValue.text(row["base_model"]),
        "dataset_version": dg.MetadataValue.text(row["dataset_version"]),
        "method": dg.MetadataValue.text(row["method"]),
        "status": dg.MetadataValue.text(row["status"]),
        "hyperparameters": dg.MetadataValue.json(row["hyperparameters"] or {}),
        "registry_row": dg.MetadataValue.md(registry.row_markdown(row)),
    }
    if row.get("metrics"):
        metadata["metrics"] = dg.MetadataValue.json(row["metrics"])
    if row.get("result_model"):
        metadata["result_model"] = dg.MetadataValue.text(row["result_model"])
        if row["backend"] in ("sentence_transformers", "huggingface") and Path(row["result_model"]).exists():
            metadata["model_path"] = dg.MetadataValue.path(row["result_model"])
    if row.get("trained_tokens") is not None:
        metadata["trained_tokens"] = dg.MetadataValue.int(int(row["trained_tokens"]))
    if row.get("cost_usd") is not None:
        metadata["cost_usd"] = dg.MetadataValue.float(float(row["cost_usd"]))
    if row.get("error"):
        metadata["error_code"] = dg.MetadataValue.text(str(row["error"].get("code")))
        metadata["error_message"] = dg.MetadataValue.text(str(row["error"].get("message")))
        metadata["error_param"] = dg.MetadataValue.text(str(row["error"].get("param") or ""))
    resources = ((row.get("details") or {}).get("backend_details") or {}).get("resources") or {}
    for key in ("wall_s", "cpu_s", "peak_rss_mb"):
        if isinstance(resources.get(key), int | float):
            metadata[f"training_{key}"] = dg.MetadataValue.float(float(resources[key]))
    for key in ("score", "mrr@10", "ndcg@10", "accuracy@1", "train_loss", "valid_loss", "token_accuracy"):
        value = (row.get("metrics") or {}).get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            metadata[f"metric_{key}"] = dg.MetadataValue.float(float(value))
    return metadata


@dg.op(
    ins={"training_file": dg.In(dg.Nothing)},
    out={
        "local": dg.Out(dict, is_required=False, description="A request a local backend trains in train_locally."),
        "hosted": dg.Out(dict, is_required=False, description="A request submitted to a hosted backend."),
    },
)
def fine_tune_request(context: dg.OpExecutionContext, backends: FineTuneBackends, store: StoreResource):
    """Refuses a retired family member and a version that failed a gate in any run; builds and validates the request."""
    from pipeline.finetune.lifecycle import ManifestMismatch, backend_hint, build_request

    target = get_target(context.partition_key)
    refuse_retired_member(target, store.get())
    approved, manifest = require_approved_training_file(context)
    backend = backends.get(target.backend)
    try:
        request = build_request(target, manifest)
        backend.validate(request)
    except (ManifestMismatch, *NOT_RETRIED) as exc:
        raise dg.Failure(
            description=f"{target.name}: {type(exc).__name__}: {exc}. Next: {backend_hint(target.backend)}.",
            metadata={"dataset_version": approved.version, "backend": target.backend},
            allow_retries=False,
        ) from None
    where = "local" if backend.trains_locally else "hosted"
    context.log.info(f"{target.name}: dataset {approved.version} → {target.backend} ({where})")
    yield dg.Output(request.as_dict(), where, metadata={"dataset_version": approved.version, "backend": target.backend})


def refuse_retired_member(target, db) -> None:
    """A family member whose tenant left (opted out, left the plan) is never trained again: fail, naming why."""
    from pipeline.core.families import departure
    from pipeline.core.targets import load_targets
    from pipeline.curation.tenants import family_tenant_stats

    if target.family is None:
        return
    family = load_targets()[target.family]
    [stats] = family_tenant_stats(db, family, only=[target.tenant], count_examples=False)
    reason = departure(family, stats)
    if reason is None:
        return
    from pipeline.finetune import registry

    registry.retire_models(db, target.name, reason)  # at once, even before the sensor's next tick
    raise dg.Failure(
        description=(f"{target.name} is retired: {reason}. Nothing is trained for this tenant and its models "
                     "are marked retired in fw_model_registry (retired_at, retired_reason); the "
                     "target_partitions_sensor removes the partition. It becomes a member again only if the tenant "
                     "qualifies again (opts back in, or returns to one of the family's plans)."),
        metadata={"retired_reason": reason, "tenant": str(target.tenant), "family": target.family},
        allow_retries=False,
    )


class _ProgressLog:
    """Records each progress report in the registry and the run's logs (state changes at once, steps every 10 s)."""

    def __init__(self, context: dg.OpExecutionContext, store, request: FineTuneRequest):
        self.context, self.store, self.request = context, store, request
        self.last_state, self.last_logged = None, 0.0

    def __call__(self, status: JobStatus) -> None:
        from pipeline.finetune import registry

        status.details["run_id"] = self.context.run_id
        registry.record_job(self.store, status, self.request)
        now = time.monotonic()
        changed = status.state != self.last_state
        if not changed and now - self.last_logged < PROGRESS_LOG_S:
            return
        self.last_state, self.last_logged = status.state, now
        shown = {k: status.metrics[k] for k in ("step", "max_steps", "epoch", "loss", "eval_loss", "phase")
                 if k in status.metrics}
        phase = (status.events[-1]["message"] if status.events else "")
        self.context.log.info(f"{status.job_id} {status.state}: {shown or phase}")


@dg.op(pool="local_training", retry_policy=TRAINING_RETRY, tags=training_step_tags())
def train_locally(
    context: dg.OpExecutionContext, request: dict, store: StoreResource, backends: FineTuneBackends
) -> dict:
    """Trains the model in this step (GPU when there is one), logging progress; a retry resumes from the last checkpoint."""
    from pipeline.finetune import registry

    req = FineTuneRequest(**request)
    backend = backends.get(get_target(context.partition_key).backend)
    db = store.get()
    existing = registry.find_job(db, req.target, req.dataset_version, backend=backend.name,
                                 base_model=req.base_model, hyperparameters=req.hyperparameters)
    if existing is not None and existing["status"] == "succeeded":
        context.log.info(f"{existing['job_id']} already trained this version: re-attached, not trained again")
        return {**existing, "attached": True}
    context.log.info(f"training {req.target} on {req.dataset_version} (attempt {context.retry_number + 1})")
    try:
        status = backend.train(req, on_progress=_ProgressLog(context, db, req))
    except NOT_RETRIED as exc:
        raise dg.Failure(description=f"{req.target}: training cannot start: {type(exc).__name__}: {exc}",
                         allow_retries=False) from exc
    status.details["run_id"] = context.run_id
    row = registry.record_job(db, status, req)
    context.log.info(f"{row['job_id']} succeeded: {row.get('result_model')}")
    return {**row, "attached": False}


@dg.op(pool="hosted_submission")
def submit_hosted(
    context: dg.OpExecutionContext, request: dict, store: StoreResource, backends: FineTuneBackends
) -> dict:
    """Submits the job to the hosted backend (or re-attaches to this version's job) and returns without waiting."""
    from pipeline.finetune.lifecycle import backend_hint, submit_or_attach

    req = FineTuneRequest(**request)
    target = get_target(context.partition_key)
    try:
        row, attached = submit_or_attach(store.get(), backends.get(target.backend), req)
    except Exception as exc:  # noqa: BLE001 - the backend refused: say what to set or fix, not just what broke
        raise dg.Failure(
            description=(
                f"{target.backend} backend could not start the job for {target.name!r} dataset "
                f"{req.dataset_version!r}: {type(exc).__name__}: {exc}. Next: {backend_hint(target.backend)}, "
                "then re-materialize this partition (a re-run re-attaches to any job already started)."
            ),
            metadata={"dataset_version": req.dataset_version, "backend": target.backend},
        ) from exc
    context.log.info(f"{'re-attached to' if attached else 'submitted'} {target.backend} job {row['job_id']}: "
                     f"{row['status']}; the job-status sensor reports its end")
    return {**row, "attached": attached}


@dg.op
def record_fine_tune_job(context: dg.OpExecutionContext, rows: list) -> dg.Output[dict]:
    """The job's registry row as the materialization's metadata (model, metrics, cost, or the error)."""
    (row,) = rows
    metadata = job_metadata(row)
    metadata["attached_to_existing_job"] = dg.MetadataValue.bool(bool(row.get("attached")))
    return dg.Output({k: v for k, v in row.items() if k != "attached"}, metadata=metadata)


@dg.graph_asset(
    partitions_def=target_partitions,
    ins={"training_file": dg.AssetIn(dagster_type=dg.Nothing)},
    group_name="training",
    kinds={"python"},
    owners=["team:ml-platform"],
    description="The fine-tune job of the target's latest approved training file: trained in a step, or submitted.",
)
def fine_tune_job(training_file) -> dict:
    request = fine_tune_request(training_file)
    return record_fine_tune_job([train_locally(request.local), submit_hosted(request.hosted)])


def _stuck_check(context: dg.AssetCheckExecutionContext, store: StoreResource) -> dg.AssetCheckResult:
    """The latest live hosted job of this target is moving (the job-status sensor runs this check on every change)."""
    from datetime import UTC, datetime

    from pipeline.finetune import registry

    max_queued_s, max_silent_s = stuck_limits()
    tags = context.op_execution_context.run.tags  # the limits the job-status sensor judged by, when it asked
    max_queued_s = float(tags.get("flywheel/max_queued_s", max_queued_s))
    max_silent_s = float(tags.get("flywheel/max_silent_s", max_silent_s))
    live = registry.list_jobs(store.get(), context.partition_key, live_only=True)
    now = datetime.now(UTC)
    stuck = [(r, registry.stuck_reason(r, now, max_queued_s=max_queued_s, max_silent_s=max_silent_s)) for r in live]
    return stuck_check_result([(r, why) for r, why in stuck if why], live_jobs=len(live))


# partitioned by target: the sensor reports this check per target
fine_tune_job_not_stuck = target_check(
    asset=fine_tune_job,
    name=STUCK_CHECK,
    description="Fails when the target's live fine-tune job is queued or silent past the limits (an alert, not a gate).",
)(_stuck_check)


def stuck_check_result(stuck: list[tuple[dict[str, Any], str]], live_jobs: int) -> dg.AssetCheckResult:
    if not stuck:
        return dg.AssetCheckResult(passed=True, metadata={"live_jobs": live_jobs, "stuck_jobs": 0})
    row, reason = stuck[0]
    return dg.AssetCheckResult(
        passed=False,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"{len(stuck)} of {live_jobs} live job(s) stuck; job {row['job_id']} ({row['backend']}) is {reason}",
        metadata={"live_jobs": live_jobs, "stuck_jobs": len(stuck), "job_id": row["job_id"]},
    )


#: the blocking check evaluated_model's automation waits on (gate_status.BLOCKING_CHECKS)
SUCCEEDED_CHECK = "fine_tune_job_succeeded"


def succeeded_check_result(row: dict[str, Any] | None, job_id: str) -> dg.AssetCheckResult:
    """Passed for a succeeded job; a warning while it is still live (hosted); an error when it failed or was cancelled."""
    from pipeline.finetune import registry

    if row is None:
        return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.ERROR,
                                   description=f"job {job_id!r} of the latest materialization is not in the registry",
                                   metadata={"job_id": job_id})
    metadata = {"job_id": row["job_id"], "status": row["status"], "backend": row["backend"]}
    if row["status"] == "succeeded":
        return dg.AssetCheckResult(passed=True, description=f"job {row['job_id']} succeeded: {row.get('result_model')}",
                                   metadata=metadata)
    if row["status"] in registry.LIVE_STATES:
        return dg.AssetCheckResult(
            passed=False, severity=dg.AssetCheckSeverity.WARN, metadata=metadata,
            description=(f"{row['backend']} job {row['job_id']} is {row['status']}: not judged yet; the job-status "
                         "sensor re-runs this check when the job ends"),
        )
    error = row.get("error") or {}
    return dg.AssetCheckResult(
        passed=False, severity=dg.AssetCheckSeverity.ERROR, metadata=metadata,
        description=(f"{row['backend']} job {row['job_id']} {row['status']}"
                     + (f": {error.get('code')}: {error.get('message')}" if error else "")),
    )


def _succeeded_check(context: dg.AssetCheckExecutionContext, store: StoreResource) -> dg.AssetCheckResult:
    """The job behind the latest fine_tune_job materialization succeeded (a warning while a hosted job runs)."""
    from pipeline.defs.gate_status import latest_metadata
    from pipeline.finetune import registry

    job_id = str(latest_metadata(context, "fine_tune_job").get("job_id") or "")
    return succeeded_check_result(registry.get_job(store.get(), job_id) if job_id else None, job_id)


fine_tune_job_succeeded = target_check(
    asset=fine_tune_job,
    name=SUCCEEDED_CHECK,
    blocking=True,
    description="The job behind the latest fine_tune_job materialization succeeded; evaluated_model follows only then "
                "(a warning while a hosted job still runs).",
)(_succeeded_check)
