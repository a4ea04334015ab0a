"""`fine_tune_job`: submit (or re-attach to) the fine-tune job of a target's latest training file.

The asset returns as soon as the backend accepted the job; the job-status sensor polls it and
reports a new materialization of this partition when the job ends. The `fine_tune_job_not_stuck`
check is the on-call alert: the sensor reports it failing when a job sits in a queue or stops
making progress past the configured limits, and passing again when the job moves or ends.
"""

from typing import Any

import dagster as dg

from pipeline.core.artifacts import read_manifest
from pipeline.core.partitions import target_check, target_partitions
from pipeline.core.targets import get_target
from pipeline.finetune import registry
from pipeline.finetune.lifecycle import ManifestMismatch, backend_hint, build_request, submit_or_attach
from pipeline.finetune.settings import STUCK_CHECK, stuck_limits

BACKEND_RESOURCE_KEYS = {"openai_backend", "huggingface_backend", "sentence_transformers_backend"}


def job_metadata(row: dict[str, Any]) -> dict[str, Any]:
    """Typed metadata of a registry row: what the UI shows for a fine_tune_job partition."""
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
        if row["backend"] in ("sentence_transformers", "huggingface"):
            metadata["model_path"] = dg.MetadataValue.path(row["result_model"])
    if row.get("trained_tokens") is not None:
        metadata["trained_tokens"] = dg.MetadataValue.int(int(row["trained_tokens"]))
    if row.get("cost_usd") is not None:
        metadata["cost_usd"] = dg.MetadataValue.float(float(row["cost_usd"]))
    if row.get("error"):
        metadata["error_code"] = dg.MetadataValue.text(str(row["error"].get("code")))
        metadata["error_message"] = dg.MetadataValue.text(str(row["error"].get("message")))
        metadata["error_param"] = dg.MetadataValue.text(str(row["error"].get("param") or ""))
    for key in ("score", "mrr@10", "ndcg@10", "accuracy@1", "train_loss", "valid_loss", "token_accuracy"):
        value = (row.get("metrics") or {}).get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            metadata[f"metric_{key}"] = dg.MetadataValue.float(float(value))
    return metadata


@dg.asset(
    partitions_def=target_partitions,
    deps=[dg.AssetKey("training_file")],
    group_name="training",
    kinds={"python"},
    owners=["team:ml-platform"],
    code_version="1",
    required_resource_keys={"store", *BACKEND_RESOURCE_KEYS},
)
def fine_tune_job(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """The fine-tune job of the target's latest training file: submitted or re-attached, never waited on."""
    target = get_target(context.partition_key)
    store = context.resources.store.get()
    backend = getattr(context.resources, f"{target.backend}_backend")
    try:
        manifest = read_manifest(target.name)
        request = build_request(target, manifest)
    except (FileNotFoundError, ManifestMismatch) as exc:
        raise dg.Failure(description=f"{target.name}: {exc}") from None
    try:
        row, attached = submit_or_attach(store, backend, request)
    except Exception as exc:  # the backend refused: say what to set or fix, not just what broke
        raise dg.Failure(
            description=(
                f"{target.backend} backend could not start the job for {target.name!r} dataset "
                f"{request.dataset_version!r}: {type(exc).__name__}: {exc}. Next: {backend_hint(target.backend)}, "
                "then re-materialize this partition (a re-run re-attaches to any job already started)."
            ),
            metadata={"dataset_version": request.dataset_version, "backend": target.backend},
        ) from exc
    verb = "re-attached to" if attached else "submitted"
    context.log.info(f"{verb} {target.backend} job {row['job_id']} for {target.name} {request.dataset_version}: {row['status']}")
    metadata = job_metadata(row)
    metadata["attached_to_existing_job"] = dg.MetadataValue.bool(attached)
    metadata["train_file"] = dg.MetadataValue.path(request.train_file)
    return dg.MaterializeResult(metadata=metadata)


def fine_tune_job_not_stuck(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    """The latest live job of this target is moving (the sensor reports this check on every change)."""
    from datetime import UTC, datetime

    max_queued_s, max_silent_s = stuck_limits()
    store = context.resources.store.get()
    live = registry.list_jobs(store, context.partition_key, live_only=True)
    now = datetime.now(UTC)
    stuck = [(r, registry.stuck_reason(r, now, max_queued_s=max_queued_s, max_silent_s=max_silent_s)) for r in live]
    stuck = [(r, why) for r, why in stuck if why]
    return stuck_check_result(stuck, live_jobs=len(live))


# partitioned by target: the sensor reports this check per target
fine_tune_job_not_stuck = target_check(
    asset=fine_tune_job,
    name=STUCK_CHECK,
    required_resource_keys={"store"},
    description="Fails when the target's live fine-tune job is queued or silent past the limits (an alert, not a gate).",
)(fine_tune_job_not_stuck)


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
