"""The OpenAI fine-tuning protocol as pure functions: hyper-parameters, method bodies, upload names,
job metadata, and the mapping from a provider job (with its events and checkpoints) to `JobStatus`.

`backend.OpenAIBackend` is the resource that calls the API; nothing here does I/O beyond hashing a file.
"""

from __future__ import annotations

import hashlib
import random
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.backends.base import FineTuneRequest, JobError, JobState, JobStatus
from pipeline.core.pricing import training_cost_usd

META_TARGET = "flywheel_target"
META_VERSION = "flywheel_dataset_version"
META_METHOD = "flywheel_method"
META_SHA = "flywheel_train_sha256"

#: provider statuses of a job that is still going; "paused" exists in the API and is not an end
LIVE_STATUSES = frozenset({"validating_files", "queued", "running", "paused"})
REATTACH_STATUSES = LIVE_STATUSES | {"succeeded"}
#: Flywheel method -> OpenAI `method.type`, and back
METHOD_TYPES = {"sft": "supervised", "dpo": "dpo"}
FLYWHEEL_METHODS = {"supervised": "sft", "dpo": "dpo", "reinforcement": "reinforcement"}
#: the hyper-parameters OpenAI accepts per method, all "auto" unless a target sets them
HYPERPARAMETERS = {
    "sft": ("n_epochs", "batch_size", "learning_rate_multiplier"),
    "dpo": ("n_epochs", "batch_size", "learning_rate_multiplier", "beta"),
}
_INT_PARAMS = {"n_epochs", "batch_size"}
METRIC_KEYS = (
    "step",
    "total_steps",
    "train_loss",
    "train_mean_token_accuracy",
    "valid_loss",
    "valid_mean_token_accuracy",
    "full_valid_loss",
    "full_valid_mean_token_accuracy",
)
MAX_SERVER_RETRY_DELAY_S = 60.0


class OpenAIBackendError(RuntimeError):
    """OpenAI refused or could not do what the backend asked; the message says what and why."""


class FileProcessingError(OpenAIBackendError):
    """An uploaded file failed OpenAI's processing (or did not finish in time)."""


class JobNotSucceededError(OpenAIBackendError):
    """`result` was asked of a job that has not succeeded."""


# ------------------------------------------------------------------ pure helpers


def openai_hyperparameters(method: str, given: dict[str, Any]) -> dict[str, Any]:
    """The hyper-parameters of an OpenAI job: the target's values, "auto" for the rest.

    Raises ValueError for a method OpenAI does not train here, an unknown key, or a bad value.
    """
    if method not in HYPERPARAMETERS:
        raise ValueError(
            f"the openai backend trains methods {sorted(HYPERPARAMETERS)}, not {method!r}: "
            "set the target's backend to sentence_transformers for embeddings"
        )
    allowed = HYPERPARAMETERS[method]
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ValueError(
            f"hyper-parameter(s) {unknown} are not OpenAI {method} hyper-parameters; allowed: {list(allowed)}"
        )
    resolved: dict[str, Any] = {}
    for key in allowed:
        value = given.get(key, "auto")
        if value == "auto":
            resolved[key] = "auto"
            continue
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        if not numeric or value <= 0 or (key in _INT_PARAMS and int(value) != value):
            kind = "a positive integer" if key in _INT_PARAMS else "a positive number"
            raise ValueError(f"hyper-parameter {key}={value!r}: expected 'auto' or {kind}")
        resolved[key] = int(value) if key in _INT_PARAMS else float(value)
    return resolved


def method_body(method: str, hyperparameters: dict[str, Any]) -> dict[str, Any]:
    """The `method` argument of `fine_tuning.jobs.create` for a Flywheel method."""
    kind = METHOD_TYPES[method]
    return {"type": kind, kind: {"hyperparameters": dict(hyperparameters)}}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def upload_name(target: str, dataset_version: str, role: str, sha256: str) -> str:
    """The name a file is uploaded under: the same content for the same version has the same name."""
    safe_version = re.sub(r"[^A-Za-z0-9._-]", "-", dataset_version)
    return f"flywheel__{target}__{safe_version}__{role}__{sha256[:16]}.jsonl"


def default_suffix(target: str) -> str:
    """A model-name suffix from the target name (OpenAI allows up to 64 characters)."""
    return re.sub(r"[^a-z0-9-]+", "-", target.lower()).strip("-")[:64] or "flywheel"


def job_metadata(request: FineTuneRequest, train_sha256: str) -> dict[str, str]:
    """The job's metadata: how a re-run finds this dataset version's job."""
    return {
        META_TARGET: request.target,
        META_VERSION: request.dataset_version[:512],
        META_METHOD: request.method,
        META_SHA: train_sha256[:64],
    }


def is_our_job(job: dict[str, Any], target: str, dataset_version: str, file_ids: set[str]) -> bool:
    """This job trains this (target, dataset version): by metadata, or (no metadata) by training file."""
    metadata = job.get("metadata") or {}
    if metadata:
        return metadata.get(META_TARGET) == target and metadata.get(META_VERSION) == dataset_version
    return job.get("training_file") in file_ids


def merge_metrics(events: list[dict[str, Any]], checkpoints: list[dict[str, Any]]) -> dict[str, Any]:
    """The latest value of each training metric, from metric events' `data` and checkpoints' `metrics`.

    `token_accuracy` is the best accuracy measured: full validation, else validation, else training.
    """
    rows: dict[float, dict[str, Any]] = {}
    for event in events:
        data = event.get("data")
        if event.get("type") == "metrics" and isinstance(data, dict) and data.get("step") is not None:
            rows.setdefault(float(data["step"]), {}).update({k: v for k, v in data.items() if v is not None})
    for checkpoint in checkpoints:
        metrics = dict(checkpoint.get("metrics") or {})
        step = metrics.get("step") if metrics.get("step") is not None else checkpoint.get("step_number")
        if step is None:
            continue
        metrics["step"] = step
        rows.setdefault(float(step), {}).update({k: v for k, v in metrics.items() if v is not None})
    merged: dict[str, Any] = {}
    for step in sorted(rows):
        for key in METRIC_KEYS:
            if key in rows[step]:
                merged[key] = rows[step][key]
    if "step" in merged:
        merged["step"] = int(merged["step"])
    for key in ("full_valid_mean_token_accuracy", "valid_mean_token_accuracy", "train_mean_token_accuracy"):
        if key in merged:
            merged["token_accuracy"] = merged[key]
            break
    return merged


def loss_curve(events: list[dict[str, Any]], max_points: int = 200) -> list[dict[str, Any]]:
    """(step, train_loss, valid_loss) from metric events, thinned to at most `max_points`."""
    points = [
        {k: e["data"].get(k) for k in ("step", "train_loss", "valid_loss")}
        for e in events
        if e.get("type") == "metrics"
        and isinstance(e.get("data"), dict)
        and e["data"].get("step") is not None
    ]
    points.sort(key=lambda p: p["step"])
    if len(points) > max_points:
        stride = len(points) / max_points
        points = [points[int(i * stride)] for i in range(max_points - 1)] + [points[-1]]
    return points


def _iso(timestamp: int | None) -> str | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC).isoformat()


def job_status(
    job: dict[str, Any], events: list[dict[str, Any]], checkpoints: list[dict[str, Any]]
) -> JobStatus:
    """A JobStatus from a `fine_tuning.job` object, its events and checkpoints (oldest first)."""
    provider_status = job.get("status")
    try:
        state = JobState(provider_status)
    except ValueError:  # "paused", or a status newer than this code: not an end, shown as-is in details
        state = JobState.QUEUED if provider_status == "paused" else JobState.RUNNING
    method_type = (job.get("method") or {}).get("type") or "supervised"
    method = FLYWHEEL_METHODS.get(method_type, method_type)
    trained_tokens = job.get("trained_tokens")
    cost = None
    if trained_tokens is not None:
        cost = training_cost_usd("openai", job.get("model", ""), method, int(trained_tokens))
    error = None
    if job.get("error") and (job["error"].get("code") or job["error"].get("message")):
        err = job["error"]
        error = JobError(
            code=err.get("code") or "unknown", message=err.get("message") or "", param=err.get("param")
        )
    hyperparameters = ((job.get("method") or {}).get(method_type) or {}).get("hyperparameters")
    return JobStatus(
        job_id=job["id"],
        state=state,
        backend="openai",
        result_model=job.get("fine_tuned_model"),
        trained_tokens=trained_tokens,
        cost_usd=cost,
        error=error,
        metrics=merge_metrics(events, checkpoints),
        events=[
            {
                "id": e.get("id"),
                "created_at": _iso(e.get("created_at")),
                "level": e.get("level"),
                "type": e.get("type"),
                "message": e.get("message"),
                "data": e.get("data") or None,
            }
            for e in events
        ],
        checkpoints=[
            {
                "id": c.get("id"),
                "step": c.get("step_number"),
                "model": c.get("fine_tuned_model_checkpoint"),
                "created_at": _iso(c.get("created_at")),
                "metrics": {k: v for k, v in (c.get("metrics") or {}).items() if v is not None},
            }
            for c in checkpoints
        ],
        created_at=_iso(job.get("created_at")),
        finished_at=_iso(job.get("finished_at")),
        details={
            "provider_status": provider_status,
            "model": job.get("model"),
            "method": method,
            "hyperparameters": hyperparameters or job.get("hyperparameters"),
            "training_file": job.get("training_file"),
            "validation_file": job.get("validation_file"),
            "suffix": job.get("suffix") or job.get("user_provided_suffix"),
            "seed": job.get("seed"),
            "metadata": job.get("metadata") or {},
            "estimated_finish": _iso(job.get("estimated_finish")),
            "result_files": job.get("result_files") or [],
            "loss_curve": loss_curve(events),
            "cost_note": None
            if cost is not None or trained_tokens is None
            else f"no price for openai {job.get('model')} {method} in prices.yaml",
        },
    )


def retry_delay(headers: Any, attempt: int) -> float:
    """Seconds to wait before retry `attempt` (0-based): the server's retry-after(-ms), else backoff."""
    if headers is not None:
        for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
            value = headers.get(name)
            try:
                delay = float(value) / divisor if value is not None else None
            except ValueError:
                delay = None
            if delay is not None and 0 < delay <= MAX_SERVER_RETRY_DELAY_S:
                return delay
    return min(0.5 * 2**attempt, 8.0) * (1 - 0.25 * random.random())
