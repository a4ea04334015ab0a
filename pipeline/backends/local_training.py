"""Training on this machine, inside the Dagster step that asks for it.

The local backends (sentence-transformers, Hugging Face without `remote`) train in the calling
process: the `fine_tune_job` asset's `train_locally` step, which Dagster's executor places (a
subprocess here, a Celery worker or a Kubernetes pod with a GPU request on a cluster), limits
through the `local_training` concurrency pool, retries with its `RetryPolicy` and cancels by
terminating the run. Nothing here starts or queues a process of its own.

One job is one folder, kept across attempts so a retry resumes from the last checkpoint:

    FLYWHEEL_HOME/<target>/jobs/<job_id>/
      request.json    {"job_id", "trainer", "request": FineTuneRequest.as_dict()}
      status.json     state, timestamps, attempt, progress, events, checkpoints, result or error
      checkpoints/    the trainer's checkpoints (resumed by the next attempt)
      model/          the trained model

A trainer is `train(request, job_dir, report) -> {"model_path", "metrics", ...}`; `report(dict)`
merges progress (step, loss, epoch, ...) into the status, and a `"checkpoint"` key appends to the
job's checkpoints. The caller's `on_progress` sees every report (the step logs it).
"""

from __future__ import annotations

import json
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.backends.base import FineTuneRequest, JobError, JobState, JobStatus
from pipeline.core.artifacts import write_atomic
from pipeline.core.canonical import now_iso

Report = Callable[[dict[str, Any]], None]
Trainer = Callable[[FineTuneRequest, Path, Report], dict[str, Any]]

REQUEST_FILE = "request.json"
STATUS_FILE = "status.json"
#: progress events kept in status.json (the oldest are dropped first)
MAX_EVENTS = 200


class TrainingInterrupted(Exception):
    """The step was interrupted (its run terminated) while training; the job is recorded `cancelled`."""


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Readers see the old or the new file, never half of one."""
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=str))


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError:  # an edited file; atomic writes never leave half of one
        return None


def add_event(status: dict[str, Any], kind: str, message: str, data: dict[str, Any] | None = None) -> None:
    event: dict[str, Any] = {"at": now_iso(), "kind": kind, "message": message}
    if data:
        event["data"] = data
    events = status.setdefault("events", [])
    events.append(event)
    del events[:-MAX_EVENTS]


def _usage(started: float) -> dict[str, float]:
    """Wall and CPU seconds of this attempt, and the process's peak resident memory (MiB)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "wall_s": round(time.monotonic() - started, 3),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
    }


class _Status:
    """The job's status in memory, rewritten to `status.json` on every change."""

    def __init__(self, job_dir: Path):
        self.path = job_dir / STATUS_FILE
        self.data: dict[str, Any] = read_json(self.path) or {"job_id": job_dir.name}

    def save(self, **fields: Any) -> None:
        self.data.update(fields)
        self.data["updated_at"] = now_iso()
        write_json_atomic(self.path, self.data)


def run_local_training(
    job_dir: Path,
    trainer_name: str,
    trainer: Trainer,
    request: FineTuneRequest,
    backend: str,
    *,
    on_progress: Callable[[JobStatus], None] | None = None,
) -> JobStatus:
    """Train `request` here with `trainer`; returns the succeeded status, raises after recording a failure.

    An attempt after a failed or interrupted one runs in the same folder (the trainer resumes from
    its checkpoints); a job that already succeeded is not trained again.
    """
    job_dir = Path(job_dir)
    job_dir.mkdir(parents=True, exist_ok=True)
    status = _Status(job_dir)
    if status.data.get("state") == JobState.SUCCEEDED.value:
        return to_job_status(status.data, backend)
    started = time.monotonic()
    write_json_atomic(job_dir / REQUEST_FILE, {"job_id": job_dir.name, "trainer": trainer_name,
                                               "request": request.as_dict()})
    attempt = int(status.data.get("attempt") or 0) + 1
    status.data.update({
        "job_id": job_dir.name, "trainer": trainer_name, "state": JobState.RUNNING.value,
        "created_at": status.data.get("created_at") or now_iso(), "started_at": now_iso(),
        "finished_at": None, "attempt": attempt, "result": None, "error": None,
    })
    add_event(status.data, "running", f"attempt {attempt} started")
    status.save()
    if on_progress is not None:
        on_progress(to_job_status(status.data, backend))

    def report(progress: dict[str, Any]) -> None:
        progress = dict(progress)
        checkpoint = progress.pop("checkpoint", None)
        if checkpoint is not None:
            status.data.setdefault("checkpoints", []).append(checkpoint)
            add_event(status.data, "checkpoint", f"checkpoint at step {checkpoint.get('step')}", checkpoint)
        if progress:
            status.data.setdefault("progress", {}).update(progress)
            add_event(status.data, "progress", ", ".join(f"{k}={v}" for k, v in sorted(progress.items())), progress)
        status.save()
        if on_progress is not None:
            on_progress(to_job_status(status.data, backend))

    try:
        result = trainer(request, job_dir, report)
        if not isinstance(result, dict) or "model_path" not in result:
            raise TypeError(f"trainer {trainer_name!r} returned {type(result).__name__}, not a dict with 'model_path'")
    except BaseException as exc:
        interrupted = isinstance(exc, KeyboardInterrupt) or type(exc).__name__ == "DagsterExecutionInterruptedError"
        state = JobState.CANCELLED if interrupted else JobState.FAILED
        message = "the run was terminated while training" if interrupted else (str(exc) or repr(exc))
        add_event(status.data, state.value, f"{type(exc).__name__}: {message}")
        status.save(state=state.value, finished_at=now_iso(), resources=_usage(started),
                    error={"code": "interrupted" if interrupted else type(exc).__name__,
                           "message": message[:4000], "param": None})
        if on_progress is not None:
            on_progress(to_job_status(status.data, backend))
        raise
    result = dict(result)
    result.setdefault("metrics", {})
    add_event(status.data, "succeeded", f"model saved to {result['model_path']}")
    status.save(state=JobState.SUCCEEDED.value, finished_at=now_iso(), result=result, error=None,
                resources=_usage(started))
    return to_job_status(status.data, backend)


def read_status(job_dir: Path) -> dict[str, Any]:
    """The job's last recorded status (what its step wrote)."""
    data = read_json(Path(job_dir) / STATUS_FILE)
    if data is None:
        raise FileNotFoundError(f"no local job at {job_dir} (no {STATUS_FILE})")
    data.setdefault("job_id", Path(job_dir).name)
    return data


def to_job_status(status: dict[str, Any], backend: str) -> JobStatus:
    """A status dict as the backends' common `JobStatus` (`in_step`: trained by a Dagster step)."""
    error = status.get("error")
    result = status.get("result") or {}
    # while training: the numeric progress (step, loss, epoch); once done: the trainer's own metrics
    progress = {k: v for k, v in (status.get("progress") or {}).items()
                if isinstance(v, (int, float)) and not isinstance(v, bool)}
    metrics = dict(result["metrics"]) if result.get("metrics") else progress
    return JobStatus(
        job_id=status["job_id"],
        state=JobState(status.get("state") or JobState.QUEUED.value),
        backend=backend,
        result_model=result.get("model_path"),
        trained_tokens=result.get("trained_tokens"),
        cost_usd=0.0,  # local training is paid in compute, not per token (prices.yaml: 0)
        error=JobError(error["code"], error["message"], error.get("param")) if error else None,
        metrics=metrics,
        events=list(status.get("events") or []),
        checkpoints=list(result.get("checkpoints") or status.get("checkpoints") or []),
        created_at=status.get("created_at"),
        finished_at=status.get("finished_at"),
        details={
            "in_step": True,
            "trainer": status.get("trainer"),
            "attempt": status.get("attempt"),
            "started_at": status.get("started_at"),
            "updated_at": status.get("updated_at"),
            "resources": status.get("resources"),
        },
    )
