"""Local fine-tune jobs: a detached worker process per job, its state in files under the job folder.

Local backends (sentence-transformers, Hugging Face on this machine) must not train inside a Dagster
step, so `launch` starts `python -m pipeline.backends.worker <job_dir>` in its own session and
returns at once; the job-status sensor reads `status.json` later. One job is one folder:

    <job_dir>/
      request.json   {"job_id", "trainer", "request": FineTuneRequest.as_dict()}
      status.json    state, timestamps, progress, events, result or error (written atomically)
      worker.pid     "<pid> <start time>" of the worker process (start time guards against pid reuse)
      log.txt        the worker's stdout and stderr (appended across attempts)

Only `FLYWHEEL_LOCAL_JOB_SLOTS` jobs (default 1) train at once under one `FLYWHEEL_HOME`; the others
stay `queued` until a slot frees, so submitting every target at once does not thrash the machine.

A worker whose process is gone while its status is not terminal reads as `failed` with code
`worker_died`. Launching a job again that is not live and has not succeeded starts a new attempt
in the same folder: the trainer decides how to resume (hf_train resumes from its checkpoints).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline.backends.base import FineTuneRequest, JobError, JobState, JobStatus
from pipeline.core.artifacts import write_atomic
from pipeline.core.jsonutil import now_iso

#: trainer name -> "module:function"; a function is `train(request, job_dir, report) -> dict`.
TRAINERS: dict[str, str] = {
    "sentence_transformers": "pipeline.backends.st_train:train",
    "huggingface": "pipeline.backends.hf_train:train",
}

REQUEST_FILE = "request.json"
STATUS_FILE = "status.json"
PID_FILE = "worker.pid"
LOG_FILE = "log.txt"
#: a job with no worker pid this long after launch is considered dead (the launcher crashed)
PID_GRACE_S = 60.0
#: progress events kept in status.json (the oldest are dropped first)
MAX_EVENTS = 200
PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: local jobs training at once on one machine; more wait in `queued` (2 cores fit one training)
DEFAULT_SLOTS = 1

Report = Callable[[dict[str, Any]], None]


# ------------------------------------------------------------------ files
def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Readers see the old or the new file, never half of one (unique temp name per writer)."""
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=str))


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError:  # a crash mid-write cannot happen (atomic), but an edited file can
        return None


def resolve_trainer(trainer: str) -> str:
    """The "module:function" of a trainer name; a "module:function" string is taken as is."""
    if trainer in TRAINERS:
        return TRAINERS[trainer]
    if ":" in trainer:
        return trainer
    raise KeyError(f"unknown trainer {trainer!r}; known: {', '.join(sorted(TRAINERS))} (or 'module:function')")


# ------------------------------------------------------------------ processes
def _proc_start_time(pid: int) -> str | None:
    """The kernel's start time of a process (Linux), None where /proc is not available."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _proc_is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return False


def _read_pid(job_dir: Path) -> tuple[int, str | None] | None:
    try:
        parts = (job_dir / PID_FILE).read_text().split()
    except FileNotFoundError:
        return None
    if not parts:
        return None
    return int(parts[0]), (parts[1] if len(parts) > 1 and parts[1] != "-" else None)


def _alive(pid: int, start_time: str | None) -> bool:
    """Whether the worker with this pid (and start time) is still running."""
    try:  # reap it if it is our own exited child, so it does not linger as a zombie
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    except ChildProcessError:
        pass
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if _proc_is_zombie(pid):
        return False
    if start_time is not None:
        current = _proc_start_time(pid)
        if current is not None and current != start_time:
            return False  # the pid was reused by another process
    return True


def worker_alive(job_dir: Path) -> bool:
    recorded = _read_pid(Path(job_dir))
    return recorded is not None and _alive(*recorded)


# ------------------------------------------------------------------ public API
def launch(job_dir: Path, trainer: str, request: FineTuneRequest) -> str:
    """Start the job's worker in the background and return the job id (the folder's name).

    A job that is live or has succeeded is left alone (its id is returned); a failed, cancelled
    or dead one starts a new attempt in the same folder, which the trainer may resume.
    """
    job_dir = Path(job_dir)
    job_dir.mkdir(parents=True, exist_ok=True)
    job_id = job_dir.name
    resolve_trainer(trainer)  # fail here, in the caller, on a typo
    current = read_status(job_dir) if (job_dir / STATUS_FILE).exists() else None
    if current is not None and (current["state"] == JobState.SUCCEEDED or not JobState(current["state"]).terminal):
        return job_id
    write_json_atomic(job_dir / REQUEST_FILE, {"job_id": job_id, "trainer": trainer, "request": request.as_dict()})
    previous = current or {}
    status = {
        "job_id": job_id,
        "trainer": trainer,
        "state": JobState.QUEUED.value,
        "created_at": previous.get("created_at") or now_iso(),
        "queued_at": now_iso(),
        "updated_at": now_iso(),
        "started_at": None,
        "finished_at": None,
        "attempt": int(previous.get("attempt") or 0) + 1,
        "progress": previous.get("progress") or {},
        "events": list(previous.get("events") or [])[-MAX_EVENTS:],
        "result": None,
        "error": None,
    }
    _event(status, "queued", f"attempt {status['attempt']} queued")
    (job_dir / PID_FILE).unlink(missing_ok=True)
    write_json_atomic(job_dir / STATUS_FILE, status)
    from pipeline.core.settings import flywheel_home

    env = dict(os.environ)
    env["FLYWHEEL_HOME"] = str(flywheel_home())  # the worker runs elsewhere: pin the same home (and slots)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p)
    env.setdefault("PYTHONUNBUFFERED", "1")
    with open(job_dir / LOG_FILE, "ab") as log:
        log.write(f"--- attempt {status['attempt']} launched {now_iso()} ---\n".encode())
        log.flush()
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline.backends.worker", str(job_dir)],
            cwd=str(PROJECT_ROOT),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    (job_dir / PID_FILE).write_text(f"{proc.pid} {_proc_start_time(proc.pid) or '-'}\n")
    return job_id


def read_status(job_dir: Path) -> dict[str, Any]:
    """The job's status; a non-terminal job whose worker is gone reads as failed (`worker_died`)."""
    job_dir = Path(job_dir)
    status = _read_json(job_dir / STATUS_FILE)
    if status is None:
        raise FileNotFoundError(f"no local job at {job_dir} (no {STATUS_FILE})")
    status.setdefault("job_id", job_dir.name)
    status["log_path"] = str(job_dir / LOG_FILE)
    recorded = _read_pid(job_dir)
    status["pid"] = recorded[0] if recorded else None
    if JobState(status["state"]).terminal:
        return status
    if recorded is None:
        age = time.time() - _parse_ts(status.get("queued_at") or status.get("created_at"))
        if age < PID_GRACE_S:
            return status
        dead = True
    else:
        dead = not _alive(*recorded)
    if dead:
        # the worker may have finished between our two reads: look once more before declaring it dead
        again = _read_json(job_dir / STATUS_FILE) or status
        if JobState(again["state"]).terminal:
            again["log_path"], again["pid"] = status["log_path"], status["pid"]
            return again
        status["state"] = JobState.FAILED.value
        status["error"] = {
            "code": "worker_died",
            "message": f"the worker process ({status['pid']}) exited without recording a result; "
            f"see {job_dir / LOG_FILE}, then re-submit to resume",
            "param": None,
        }
        status["finished_at"] = status.get("finished_at") or now_iso()
    return status


def cancel(job_dir: Path, timeout_s: float = 10.0) -> dict[str, Any]:
    """Stop the job's worker (its whole process group) and record `cancelled`; returns the status."""
    job_dir = Path(job_dir)
    on_disk = _read_json(job_dir / STATUS_FILE)
    if on_disk is None:
        raise FileNotFoundError(f"no local job at {job_dir} (no {STATUS_FILE})")
    if JobState(on_disk["state"]).terminal:  # already over: nothing to stop
        return read_status(job_dir)
    status = on_disk
    recorded = _read_pid(job_dir)
    if recorded is not None and _alive(*recorded):
        pid = recorded[0]
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and _alive(*recorded):
            time.sleep(0.05)
        if _alive(*recorded):
            _signal_group(pid, signal.SIGKILL)
            while _alive(*recorded) and time.monotonic() < deadline + 5:
                time.sleep(0.05)
    latest = _read_json(job_dir / STATUS_FILE) or status
    if JobState(latest["state"]).terminal:  # it finished before the signal landed
        return read_status(job_dir)
    latest["state"] = JobState.CANCELLED.value
    latest["finished_at"] = now_iso()
    latest["updated_at"] = latest["finished_at"]
    _event(latest, "cancelled", "cancelled on request")
    write_json_atomic(job_dir / STATUS_FILE, latest)
    return read_status(job_dir)


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(os.getpgid(pid), sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def to_job_status(status: dict[str, Any], backend: str) -> JobStatus:
    """A `read_status` dict as the backends' common `JobStatus`."""
    error = status.get("error")
    result = status.get("result") or {}
    # while training: the numeric progress (step, loss, epoch); once done: the trainer's own metrics
    progress = {k: v for k, v in (status.get("progress") or {}).items()
                if isinstance(v, (int, float)) and not isinstance(v, bool)}
    metrics = dict(result["metrics"]) if result.get("metrics") else progress
    return JobStatus(
        job_id=status["job_id"],
        state=JobState(status["state"]),
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
            "trainer": status.get("trainer"),
            "attempt": status.get("attempt"),
            "started_at": status.get("started_at"),
            "updated_at": status.get("updated_at"),
            "log_path": status.get("log_path"),
            "pid": status.get("pid"),
            "resources": status.get("resources"),
        },
    )


# ------------------------------------------------------------------ training slots
def slot_count() -> int:
    """How many local jobs may train at once (`FLYWHEEL_LOCAL_JOB_SLOTS`, default 1)."""
    raw = os.environ.get("FLYWHEEL_LOCAL_JOB_SLOTS", "").strip()
    if not raw:
        return DEFAULT_SLOTS
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"FLYWHEEL_LOCAL_JOB_SLOTS={raw!r}: expected a whole number >= 1")
    return int(raw)


def acquire_slot(slots_dir: Path, slots: int, on_wait: Callable[[], None] | None = None, poll_s: float = 0.5):
    """Block until one of `slots` training slots is free; returns the open, locked slot file.

    Slots are `flock`ed files: the kernel frees a slot when its worker exits, however it exits, so
    a crashed job never holds one. The caller keeps the returned file open while it trains.
    """
    import fcntl

    slots_dir.mkdir(parents=True, exist_ok=True)
    waited = False
    while True:
        for index in range(slots):
            handle = open(slots_dir / f"slot-{index}", "a+")  # noqa: SIM115 - held open by the caller
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                continue
            return handle
        if not waited and on_wait is not None:
            on_wait()
        waited = True
        time.sleep(poll_s)


# ------------------------------------------------------------------ helpers shared with the worker
def _event(status: dict[str, Any], kind: str, message: str, data: dict[str, Any] | None = None) -> None:
    event = {"at": now_iso(), "kind": kind, "message": message}
    if data:
        event["data"] = data
    events = status.setdefault("events", [])
    events.append(event)
    del events[:-MAX_EVENTS]


def _parse_ts(value: str | None) -> float:
    if not value:
        return 0.0
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
