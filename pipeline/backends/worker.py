"""The detached process that runs one local fine-tune job: `python -m pipeline.backends.worker <job_dir>`.

It reads `request.json`, imports the trainer named there (`local_jobs.TRAINERS`), marks the job
`running` and calls `train(request, job_dir, report)`. `report(dict)` merges progress (step, loss,
epoch, …) into `status.json`; a `"checkpoint"` key is appended to the job's checkpoints instead. The
trainer returns `{"model_path", "metrics"}` (optionally `trained_tokens`, `checkpoints`): the job
`succeeded`. An exception marks it `failed` with the exception's type as `code` and its message.
"""

from __future__ import annotations

import importlib
import os
import resource
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from pipeline.backends import local_jobs
from pipeline.backends.base import FineTuneRequest, JobState
from pipeline.core.settings import flywheel_home


class _StatusWriter:
    """Holds the job's status in memory and rewrites `status.json` atomically on every change."""

    def __init__(self, job_dir: Path):
        self.path = job_dir / local_jobs.STATUS_FILE
        self.status: dict[str, Any] = local_jobs._read_json(self.path) or {"job_id": job_dir.name}

    def update(self, **fields: Any) -> None:
        self.status.update(fields)
        self.status["updated_at"] = local_jobs.now_iso()
        local_jobs.write_json_atomic(self.path, self.status)

    def report(self, progress: dict[str, Any]) -> None:
        progress = dict(progress)
        checkpoint = progress.pop("checkpoint", None)
        if checkpoint is not None:
            self.status.setdefault("checkpoints", []).append(checkpoint)
            local_jobs._event(self.status, "checkpoint", f"checkpoint {checkpoint}", {"checkpoint": checkpoint})
        if progress:
            self.status.setdefault("progress", {}).update(progress)
            message = ", ".join(f"{k}={v}" for k, v in sorted(progress.items()))
            local_jobs._event(self.status, "progress", message, progress)
        self.update()


def _resources(started: float) -> dict[str, float]:
    """Wall and CPU seconds of this attempt and its peak resident memory (MiB, Linux units)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "wall_s": round(time.monotonic() - started, 3),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
    }


def run(job_dir: Path) -> int:
    started = time.monotonic()
    job_dir = Path(job_dir).resolve()
    writer = _StatusWriter(job_dir)
    try:
        slot = local_jobs.acquire_slot(
            flywheel_home() / ".local_job_slots", local_jobs.slot_count(),
            on_wait=lambda: (local_jobs._event(writer.status, "waiting", "waiting for a free training slot"),
                             writer.update()),
        )
    except Exception as exc:  # noqa: BLE001 - a bad FLYWHEEL_LOCAL_JOB_SLOTS fails the job with the reason
        writer.update(state=JobState.FAILED.value, finished_at=local_jobs.now_iso(),
                      error={"code": type(exc).__name__, "message": str(exc), "param": None})
        return 1
    with slot:
        return _train(job_dir, writer, started)


def _train(job_dir: Path, writer: _StatusWriter, started: float) -> int:
    writer.update(state=JobState.RUNNING.value, started_at=local_jobs.now_iso(), worker_pid=os.getpid())
    try:
        spec = local_jobs._read_json(job_dir / local_jobs.REQUEST_FILE)
        if spec is None:
            raise FileNotFoundError(f"{job_dir / local_jobs.REQUEST_FILE} is missing or not JSON")
        request = FineTuneRequest(**spec["request"])
        module_name, _, func_name = local_jobs.resolve_trainer(spec["trainer"]).partition(":")
        train = getattr(importlib.import_module(module_name), func_name)
        local_jobs._event(writer.status, "running", f"trainer {spec['trainer']} started (pid {os.getpid()})")
        writer.update()
        result = train(request, job_dir, writer.report)
        if not isinstance(result, dict) or "model_path" not in result:
            raise TypeError(f"trainer {spec['trainer']!r} returned {type(result).__name__}, not a dict with 'model_path'")
    except BaseException as exc:  # noqa: BLE001 - every failure must land in status.json
        traceback.print_exc()
        message = str(exc) or repr(exc)
        local_jobs._event(writer.status, "failed", f"{type(exc).__name__}: {message}")
        writer.update(
            state=JobState.FAILED.value,
            finished_at=local_jobs.now_iso(),
            error={"code": type(exc).__name__, "message": message[:4000], "param": None},
            resources=_resources(started),
        )
        return 1
    result = dict(result)
    result.setdefault("metrics", {})
    local_jobs._event(writer.status, "succeeded", f"model saved to {result['model_path']}")
    writer.update(
        state=JobState.SUCCEEDED.value, finished_at=local_jobs.now_iso(), result=result, error=None,
        resources=_resources(started),
    )
    print(f"job {job_dir.name} succeeded: {result['model_path']}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m pipeline.backends.worker <job_dir>", file=sys.stderr)
        return 2
    return run(Path(args[0]))


if __name__ == "__main__":
    sys.exit(main())
