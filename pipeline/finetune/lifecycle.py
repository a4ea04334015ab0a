"""The life of a fine-tune job, backend-agnostic: submit or re-attach, poll, alert when stuck, cancel.

The `fine_tune_job` asset's `submit_hosted` step calls `submit_or_attach` (local backends train in
its `train_locally` step instead); the job-status sensor calls `poll_jobs` for hosted jobs;
`wait_for_jobs` runs the sensor's logic in a loop for scripts (the demo); `cancel_job` backs the
cancel job and the CLI. Backends are looked up by name (`openai`, `huggingface`,
`sentence_transformers`) in a mapping, so nothing here knows one backend from another.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pipeline.backends.base import FineTuneBackend, FineTuneRequest, JobState, JobStatus
from pipeline.core.artifacts import BACKEND_FORMAT
from pipeline.core.canonical import now_iso
from pipeline.core.store import Store
from pipeline.core.targets import Target
from pipeline.finetune import registry

#: what to check first when a backend refuses a job, by backend
BACKEND_HINTS = {
    "openai": "check OPENAI_API_KEY (and base_url for Azure or a compatible provider) in the code location's "
              "environment, and that the account may fine-tune the base model",
    "huggingface": "check the base model path or Hub id (HF_TOKEN for gated or private models and for pushes) "
                   "and the target's hyper-parameters",
    "sentence_transformers": "check the training file and the target's hyper-parameters (epochs, batch_size, "
                             "learning_rate, warmup_ratio)",
}


class ManifestMismatch(ValueError):
    """The latest training file was built for another backend or method than the target now names."""


def build_request(target: Target, manifest: dict[str, Any]) -> FineTuneRequest:
    """The request for a target's job from its dataset manifest (the training_file's hand-over)."""
    expected = BACKEND_FORMAT.get((target.backend, target.method))
    fmt = manifest.get("backend_format")
    if expected is None:
        raise ManifestMismatch(f"backend {target.backend!r} cannot train method {target.method!r}")
    if fmt != expected or fmt not in manifest.get("files", {}):
        raise ManifestMismatch(
            f"dataset {manifest.get('dataset_version')!r} of {target.name!r} holds format {fmt!r}, but backend "
            f"{target.backend!r} with method {target.method!r} trains on {expected!r}: re-materialize training_file"
        )
    files = manifest["files"][fmt]
    return FineTuneRequest(
        target=target.name,
        dataset_version=str(manifest["dataset_version"]),
        method=target.method,
        base_model=target.base_model,
        train_file=str(files["train"]),
        validation_file=str(files["validation"]) if files.get("validation") else None,
        hyperparameters=dict(target.hyperparameters),
        suffix=target.name.replace("_", "-")[:40],
        seed=int(target.training_file.seed),
    )


def submit_or_attach(store: Store, backend: FineTuneBackend, request: FineTuneRequest) -> tuple[dict[str, Any], bool]:
    """Re-attach to the version's live or succeeded job with the same settings, or submit one.

    A live job is asked for its current status first; one that failed or died since the last poll
    is submitted again (a local job resumes in its folder, a provider job is created anew). Returns the registry row and whether it was an existing job. The backend's own `submit` is
    idempotent too (it finds its job after a crash between submit and record).
    """
    existing = registry.find_job(
        store, request.target, request.dataset_version, backend=backend.name,
        base_model=request.base_model, hyperparameters=request.hyperparameters,
    )
    if existing is not None:
        if existing["status"] == JobState.SUCCEEDED.value:
            return existing, True
        try:  # a live row may be a poll old: refresh it, and resubmit if the job died meanwhile
            fresh = backend.status(existing["job_id"])
        except Exception:  # noqa: BLE001 - the backend is unreachable: the row we have is the best answer
            return existing, True
        row = registry.record_job(store, fresh)
        if not fresh.terminal or fresh.state is JobState.SUCCEEDED:
            return row, True
    status = backend.submit(request)
    return registry.record_job(store, status, request), False


@dataclass
class PollReport:
    """What one poll of the live jobs found."""

    polled: int = 0
    updated: list[dict[str, Any]] = field(default_factory=list)  # registry rows after the poll
    ended: list[tuple[dict[str, Any], JobStatus]] = field(default_factory=list)  # jobs that reached a terminal state
    stuck: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (job id, why its backend could not be asked)

    @property
    def summary(self) -> str:
        return (f"{self.polled} live job(s) polled: {len(self.ended)} ended, {len(self.stuck)} stuck, "
                f"{len(self.errors)} could not be polled")


def poll_jobs(
    store: Store,
    backends: Mapping[str, FineTuneBackend],
    *,
    max_queued_s: float,
    max_silent_s: float,
    now: datetime | None = None,
) -> PollReport:
    """Ask each live job's backend for its status, update the registry, and find ended and stuck jobs.

    A backend that cannot be asked (outage, missing credential) is reported per job and does not
    stop the others; the job stays live and is polled again next time.
    """
    report = PollReport()
    for row in registry.list_live(store):
        report.polled += 1
        backend = backends.get(row["backend"])
        if backend is None:
            report.errors.append((row["job_id"], f"no backend resource named {row['backend']!r} is configured"))
            continue
        try:
            status = backend.status(row["job_id"])
        except Exception as exc:  # noqa: BLE001 - one backend's outage must not stop the others
            report.errors.append((row["job_id"], f"{type(exc).__name__}: {exc}"))
            continue
        updated = registry.record_job(store, status)
        report.updated.append(updated)
        if status.terminal:
            report.ended.append((updated, status))
    moment = now or datetime.now(UTC)
    for row in registry.list_live(store):
        reason = registry.stuck_reason(row, moment, max_queued_s=max_queued_s, max_silent_s=max_silent_s)
        if reason:
            report.stuck.append((registry.mark_stuck(store, row["job_id"], reason), reason))
    return report


def cancel_job(
    store: Store,
    backend: FineTuneBackend,
    job_id: str,
    *,
    terminate_run: Callable[[str], bool] | None = None,
) -> JobStatus:
    """Cancel a job and record the outcome in the registry.

    A hosted job is cancelled at its provider. A job trained in a Dagster step is cancelled by
    terminating its run (`terminate_run(run_id)`, the instance's run coordinator): the step records
    `cancelled` as it stops. If that run is already over, the row is marked cancelled here.
    """
    row = registry.get_job(store, job_id)
    if row is not None and row["backend"] != backend.name:
        raise ValueError(f"job {job_id} belongs to backend {row['backend']!r}, not {backend.name!r}")
    if row is not None and registry.trained_in_step(row):
        current = status_of(row)
        if current.terminal:
            return current
        run_id = (row["details"].get("backend_details") or {}).get("run_id")
        if run_id and terminate_run is not None and terminate_run(run_id):
            current.events.append({"at": now_iso(), "kind": "cancelling", "message": f"terminating run {run_id}"})
            return status_of(registry.record_job(store, current))
        current.state = JobState.CANCELLED
        current.finished_at = now_iso()
        current.events.append({"at": now_iso(), "kind": "cancelled",
                               "message": f"cancelled on request; its run {run_id or '(unknown)'} was not running"})
        return status_of(registry.record_job(store, current))
    status = backend.cancel(job_id)
    if row is not None:
        registry.record_job(store, status)
    return status


def wait_for_jobs(
    store: Store,
    backends: Mapping[str, FineTuneBackend],
    timeout_s: float,
    *,
    poll_s: float = 2.0,
    max_queued_s: float = 3600.0,
    max_silent_s: float = 3600.0,
) -> list[JobStatus]:
    """Poll hosted jobs like the sensor until none is live or `timeout_s` passes; the last status of each seen."""
    deadline = time.monotonic() + timeout_s
    seen: dict[str, JobStatus] = {}
    while True:
        report = poll_jobs(store, backends, max_queued_s=max_queued_s, max_silent_s=max_silent_s)
        for row in report.updated:
            seen[row["job_id"]] = status_of(row)
        if not registry.list_live(store) or time.monotonic() >= deadline:
            return list(seen.values())
        time.sleep(poll_s)


def status_of(row: dict[str, Any]) -> JobStatus:
    """A registry row as a `JobStatus` (what the registry last heard from the backend)."""
    from pipeline.backends.base import JobError

    error = row.get("error")
    return JobStatus(
        job_id=row["job_id"],
        state=JobState(row["status"]),
        backend=row["backend"],
        result_model=row.get("result_model"),
        trained_tokens=row.get("trained_tokens"),
        cost_usd=row.get("cost_usd"),
        error=JobError(error["code"], error["message"], error.get("param")) if error else None,
        metrics=row.get("metrics") or {},
        events=(row.get("details") or {}).get("events", []),
        checkpoints=(row.get("details") or {}).get("checkpoints", []),
        created_at=row.get("created_at"),
        finished_at=row.get("finished_at"),
        details=(row.get("details") or {}).get("backend_details", {}),
    )


def backend_hint(backend: str) -> str:
    return BACKEND_HINTS.get(backend, "check the backend's configuration")
