"""Limits of the fine-tune job lifecycle, from the environment (defaults suit provider queues)."""

from __future__ import annotations

import os

#: the asset check the job-status sensor reports when a job is stuck
STUCK_CHECK = "fine_tune_job_not_stuck"

DEFAULT_POLL_SECONDS = 60
DEFAULT_MAX_QUEUED_MINUTES = 120.0  # OpenAI queues can hold a job for an hour or more
DEFAULT_MAX_SILENT_MINUTES = 30.0


def _minutes(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number of minutes") from None
    if value <= 0:
        raise ValueError(f"{name} must be a positive number of minutes, got {raw!r}")
    return value


def stuck_limits() -> tuple[float, float]:
    """(max seconds queued, max seconds running without progress) before a job counts as stuck.

    `FLYWHEEL_JOB_MAX_QUEUED_MINUTES` and `FLYWHEEL_JOB_MAX_SILENT_MINUTES` override the defaults.
    """
    queued = _minutes("FLYWHEEL_JOB_MAX_QUEUED_MINUTES", DEFAULT_MAX_QUEUED_MINUTES)
    silent = _minutes("FLYWHEEL_JOB_MAX_SILENT_MINUTES", DEFAULT_MAX_SILENT_MINUTES)
    return queued * 60, silent * 60


def poll_seconds() -> int:
    """How often the job-status sensor runs (`FLYWHEEL_JOB_POLL_SECONDS`, default 60)."""
    raw = os.environ.get("FLYWHEEL_JOB_POLL_SECONDS", "").strip()
    return int(raw) if raw else DEFAULT_POLL_SECONDS
