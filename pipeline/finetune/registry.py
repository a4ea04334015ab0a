"""The model registry: one row per fine-tune job of any backend, in `fw_model_registry`.

Pure functions over the `Store`: the `fine_tune_job` asset records a job when it submits, the
job-status sensor updates it on every poll, evaluation and promotion read it. Rows come back as
plain dicts with the JSON columns decoded.

Progress is tracked without trusting clocks on the backend's side: every update compares a
fingerprint of the job (state, metrics, event and checkpoint counts) with the stored one and moves
`details.last_progress_at` only when it changed. A job stuck in the queue, or running without
progress, past a limit is what `find_stuck` returns.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from pipeline.backends.base import FineTuneRequest, JobState, JobStatus
from pipeline.core import markdown
from pipeline.core.store import Store, canonical_json, model_registry, now_iso, sha1

JSON_COLUMNS = ("hyperparameters", "error", "metrics", "details")
LIVE_STATES = tuple(s.value for s in JobState if not s.terminal)
#: events and checkpoints kept per row (the newest)
MAX_EVENTS = 100


def _decode(row: sa.Row | None) -> dict[str, Any] | None:
    if row is None:
        return None
    out = dict(row._mapping)
    for column in JSON_COLUMNS:
        out[column] = json.loads(out[column]) if out.get(column) else ({} if column != "error" else None)
    return out


def _fingerprint(status: JobStatus) -> str:
    return sha1(canonical_json({
        "state": str(status.state),
        "metrics": status.metrics,
        "events": len(status.events),
        "checkpoints": len(status.checkpoints),
        "trained_tokens": status.trained_tokens,
    }))


def get_job(store: Store, job_id: str) -> dict[str, Any] | None:
    with store.engine.connect() as conn:
        return _decode(conn.execute(sa.select(model_registry).where(model_registry.c.job_id == job_id)).first())


def record_job(
    store: Store, status: JobStatus, request: FineTuneRequest | None = None, *, now: str | None = None
) -> dict[str, Any]:
    """Insert or update the job's row from a backend status; `request` is needed for a new row."""
    now = now or now_iso()
    existing = get_job(store, status.job_id)
    if existing is None and request is None:
        raise KeyError(f"job {status.job_id!r} is not in the registry and no request was given to record it")
    details = dict(existing["details"]) if existing else {}
    fingerprint = _fingerprint(status)
    if details.get("fingerprint") != fingerprint:
        details["fingerprint"] = fingerprint
        details["last_progress_at"] = now
    details.update({
        "events": list(status.events)[-MAX_EVENTS:],
        "checkpoints": list(status.checkpoints)[-MAX_EVENTS:],
        "backend_details": status.details,
    })
    if status.terminal:
        details.pop("stuck", None)
    values: dict[str, Any] = {
        "status": JobState(status.state).value,
        "updated_at": now,
        "finished_at": status.finished_at or (now if status.terminal else None),
        "trained_tokens": status.trained_tokens,
        "cost_usd": status.cost_usd,
        "result_model": status.result_model,
        "error": canonical_json(asdict(status.error)) if status.error else None,
        "metrics": canonical_json(status.metrics or {}),
        "details": canonical_json(details),
    }
    with store.engine.begin() as conn:
        if existing is None:
            assert request is not None
            values.update({
                "job_id": status.job_id,
                "target": request.target,
                "dataset_version": request.dataset_version,
                "backend": status.backend,
                "method": request.method,
                "base_model": request.base_model,
                "hyperparameters": canonical_json(request.hyperparameters),
                "created_at": status.created_at or now,
            })
            try:
                conn.execute(model_registry.insert().values(**values))
            except sa.exc.IntegrityError:  # recorded concurrently (the sensor and the asset): update instead
                conn.execute(model_registry.update().where(model_registry.c.job_id == status.job_id).values(
                    **{k: v for k, v in values.items() if k not in ("job_id", "created_at")}))
        else:
            conn.execute(model_registry.update().where(model_registry.c.job_id == status.job_id).values(**values))
    row = get_job(store, status.job_id)
    assert row is not None
    return row


def find_job(
    store: Store,
    target: str,
    dataset_version: str,
    *,
    backend: str | None = None,
    base_model: str | None = None,
    hyperparameters: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """The newest live or succeeded job for this target and dataset version (and settings, when given), not retired."""
    query = sa.select(model_registry).where(
        model_registry.c.target == target,
        model_registry.c.dataset_version == dataset_version,
        model_registry.c.status.in_([*LIVE_STATES, JobState.SUCCEEDED.value]),
        model_registry.c.retired_at.is_(None),  # a retired model is never re-attached
    )
    if backend is not None:
        query = query.where(model_registry.c.backend == backend)
    if base_model is not None:
        query = query.where(model_registry.c.base_model == base_model)
    if hyperparameters is not None:
        query = query.where(model_registry.c.hyperparameters == canonical_json(hyperparameters))
    with store.engine.connect() as conn:
        rows = conn.execute(query.order_by(model_registry.c.created_at.desc())).all()
    # a succeeded job beats a live one: it is the model the version already paid for
    decoded = [_decode(r) for r in rows]
    decoded.sort(key=lambda r: r["status"] != JobState.SUCCEEDED.value)
    return decoded[0] if decoded else None


def list_jobs(store: Store, target: str | None = None, *, live_only: bool = False) -> list[dict[str, Any]]:
    """Registry rows, newest first; `live_only` keeps the jobs that have not ended."""
    query = sa.select(model_registry)
    if target is not None:
        query = query.where(model_registry.c.target == target)
    if live_only:
        query = query.where(model_registry.c.status.in_(LIVE_STATES))
    with store.engine.connect() as conn:
        return [_decode(r) for r in conn.execute(query.order_by(model_registry.c.created_at.desc()))]


def retire_models(store: Store, target: str, reason: str, *, now: str | None = None) -> int:
    """Mark every model of `target` not yet retired as retired (its tenant left); returns how many rows changed.

    The rows stay (the registry is the history); `retired_at` and `retired_reason` say the model must
    not serve or be re-attached, and evaluation and promotion skip it.
    """
    now = now or now_iso()
    with store.engine.begin() as conn:
        changed = conn.execute(
            model_registry.update()
            .where(model_registry.c.target == target, model_registry.c.retired_at.is_(None))
            .values(retired_at=now, retired_reason=reason)  # not updated_at: the job itself did not change
        ).rowcount
    return int(changed or 0)


def targets_with_active_models(store: Store) -> set[str]:
    """Targets (partition keys) that have at least one registry row not retired."""
    query = sa.select(model_registry.c.target).where(model_registry.c.retired_at.is_(None)).distinct()
    with store.engine.connect() as conn:
        return set(conn.execute(query).scalars())


def trained_in_step(row: dict[str, Any]) -> bool:
    """Whether a Dagster step trained this job (local backends): its step reports it, no sensor polls it."""
    return bool(((row.get("details") or {}).get("backend_details") or {}).get("in_step"))


def list_live(store: Store) -> list[dict[str, Any]]:
    """Hosted jobs that are not terminal: the ones the status sensor polls."""
    return [row for row in list_jobs(store, live_only=True) if not trained_in_step(row)]


def list_ended_since(store: Store, since: str | None) -> list[dict[str, Any]]:
    """Hosted jobs that ended and whose row changed at or after `since` (all when None), oldest change first.

    Jobs trained in a step are left out: their step's own materialization reported their end.
    """
    query = sa.select(model_registry).where(model_registry.c.status.not_in(LIVE_STATES))
    if since is not None:
        query = query.where(model_registry.c.updated_at >= since)
    with store.engine.connect() as conn:
        rows = [_decode(r) for r in conn.execute(query.order_by(model_registry.c.updated_at, model_registry.c.job_id))]
    return [row for row in rows if not trained_in_step(row)]


def _age_s(since: str | None, now: datetime) -> float:
    if not since:
        return 0.0
    return (now - datetime.fromisoformat(since.replace("Z", "+00:00"))).total_seconds()


def stuck_reason(row: dict[str, Any], now: datetime, *, max_queued_s: float, max_silent_s: float) -> str | None:
    """Why a live job counts as stuck, or None: queued too long, or no progress for too long."""
    if row["status"] not in LIVE_STATES:
        return None
    if row["status"] in (JobState.QUEUED.value, JobState.VALIDATING.value):
        waited = _age_s(row["created_at"], now)
        if waited > max_queued_s:
            return (f"still {row['status']} after {waited / 60:.1f} min (limit {max_queued_s / 60:.1f} min): "
                    f"check the {row['backend']} backend's queue or cancel job {row['job_id']} and re-materialize")
        return None
    silent = _age_s(row["details"].get("last_progress_at") or row["created_at"], now)
    if silent > max_silent_s:
        return (f"running without progress for {silent / 60:.1f} min (limit {max_silent_s / 60:.1f} min): "
                f"read the job's events/log, then cancel job {row['job_id']} if it hangs")
    return None


def find_stuck(
    store: Store, *, max_queued_s: float, max_silent_s: float, now: datetime | None = None
) -> list[tuple[dict[str, Any], str]]:
    """Live jobs that are stuck, with the reason for each."""
    now = now or datetime.now(UTC)
    out = []
    for row in list_live(store):
        reason = stuck_reason(row, now, max_queued_s=max_queued_s, max_silent_s=max_silent_s)
        if reason:
            out.append((row, reason))
    return out


def mark_stuck(store: Store, job_id: str, reason: str, *, now: str | None = None) -> dict[str, Any]:
    """Record a stuck alert on the job's row (`details.stuck`); the first alert's time is kept."""
    now = now or now_iso()
    row = get_job(store, job_id)
    if row is None:
        raise KeyError(f"job {job_id!r} is not in the registry")
    details = dict(row["details"])
    previous = details.get("stuck") or {}
    details["stuck"] = {"since": previous.get("since", now), "last_alert_at": now, "reason": reason,
                        "alerts": int(previous.get("alerts", 0)) + 1}
    with store.engine.begin() as conn:
        conn.execute(model_registry.update().where(model_registry.c.job_id == job_id)
                     .values(details=canonical_json(details), updated_at=now))
    return get_job(store, job_id)  # type: ignore[return-value]


def row_markdown(row: dict[str, Any]) -> str:
    """A registry row as a two-column Markdown table (for asset metadata)."""
    shown = {key: row.get(key) for key in (
        "job_id", "target", "dataset_version", "backend", "method", "base_model", "hyperparameters", "status",
        "created_at", "updated_at", "finished_at", "trained_tokens", "cost_usd", "result_model", "error",
        "retired_at", "retired_reason")}
    for key in ("hyperparameters", "error"):
        shown[key] = canonical_json(shown[key]) if shown[key] else None
    return markdown.table([{"field": k, "value": v} for k, v in shown.items()], ["field", "value"], max_chars=300)
