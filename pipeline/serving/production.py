"""Which model serves each target: decisions, rollbacks and their append-only history.

Two tables in the store (SQLite or Postgres, the same code): `fw_rollouts`, one row per target
with the champion, the challenger and its share; `fw_production_history`, one row per action —
`promote_challenger`, `promote_champion`, `rollback`, `keep`, `base`, `retire`, and the online
experiment's `advance` (the challenger's share rises) and `stop` (a broken assignment) — with the model it concerns,
its evaluation and metrics, the state after it, when, by whom and why. Rows are only ever added.
Each change is one transaction (the history row and the new state together); then the rollout file
the product reads (`pipeline.serving.rollout`) is rewritten atomically from it.

The champion is the base model until a candidate is promoted (`ensure_serving`). A rollback removes
the challenger if there is one; otherwise it puts back the champion that served before the current
one (rollbacks unwind promotions in order, like a stack), and says so when there is none. When a
family member's tenant leaves (opts out, leaves the plan), `retire` puts the base model back: a model
trained on a tenant's data stops serving once that tenant has withdrawn.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from pipeline.core.canonical import canonical_json, now_iso
from pipeline.core.store import Store, production_history, rollouts
from pipeline.evaluation.decision import Decision
from pipeline.serving.rollout import ModelRef, Rollout, base_ref, rollout_path, write_rollout_file

__all__ = [
    "ACTIONS", "ModelRef", "NothingToRollBack", "base_ref", "current", "ensure_serving", "history",
    "experiment_step", "record_decision", "retire", "rollback", "sync_rollout_file",
]

RETRIES = 5
ACTIONS = ("promote_challenger", "promote_champion", "rollback", "keep", "base", "retire", "advance", "stop")
State = tuple[ModelRef, ModelRef | None, float]


class NothingToRollBack(ValueError):
    """A rollback was asked for but there is no challenger and no earlier champion."""


def _ref_json(ref: ModelRef | None) -> str | None:
    return None if ref is None else canonical_json(ref.as_dict())


def _ref(text: str | None) -> ModelRef | None:
    return None if text is None else ModelRef.from_dict(json.loads(text))


def _rollout(row: Any) -> Rollout:
    champion = _ref(row.champion)
    assert champion is not None
    return Rollout(row.target, row.rollout_id, champion, _ref(row.challenger), float(row.challenger_share), row.updated_at)


def _target_name(target: Any) -> str:
    return target if isinstance(target, str) else target.name


def current(store: Store, target: Any) -> Rollout | None:
    """What serves `target` (a name or a `Target`) now, from `fw_rollouts`; None before `ensure_serving`."""
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(rollouts).where(rollouts.c.target == _target_name(target))).first()
    return None if row is None else _rollout(row)


def history(store: Store, target: Any = None, *, limit: int | None = None) -> list[dict[str, Any]]:
    """History rows, newest first (JSON columns decoded), of one target or of all."""
    query = sa.select(production_history).order_by(production_history.c.id.desc())
    if target is not None:
        query = query.where(production_history.c.target == _target_name(target))
    if limit is not None:
        query = query.limit(limit)
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    out = []
    for row in rows:
        item = dict(row._mapping)
        for key in ("evaluation", "metrics", "champion", "challenger"):
            item[key] = json.loads(item[key]) if item[key] is not None else None
        out.append(item)
    return out


def _apply(
    store: Store,
    target: Any,
    action: str,
    transition: Callable[[State, Rollout | None], tuple[State, ModelRef | None] | None],
    *,
    by: str,
    reason: str,
    evaluation: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    at: str | None = None,
) -> Rollout:
    """One action in one transaction: read the state, compute the next, append history, store the state.

    `transition(state, before)` returns the next state and the model the action is about, or None
    for nothing to record (another writer already did it). A concurrent writer that created the
    target's first row, or held SQLite's write lock, makes the transaction start again.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
    if not by or not by.strip():
        raise ValueError("who decided (`by`) is required")
    if not reason or not reason.strip():
        raise ValueError("why (`reason`) is required")
    name = _target_name(target)
    for attempt in range(RETRIES):
        try:
            with store.engine.begin() as conn:
                row = conn.execute(sa.select(rollouts).where(rollouts.c.target == name).with_for_update()).first()
                before = None if row is None else _rollout(row)
                if before is None:
                    if isinstance(target, str):
                        raise NothingToRollBack(f"nothing serves target {name!r} yet: materialize production_model first")
                    state: State = (base_ref(target), None, 0.0)
                else:
                    state = (before.champion, before.challenger, before.challenger_share)
                step = transition(state, before)
                if step is None:
                    break
                (champion, challenger, share), subject = step
                changed = before is None or (champion, challenger, share) != state
                when = at or now_iso()
                rollout_id = f"ro_{uuid.uuid4().hex[:12]}" if changed else before.rollout_id  # type: ignore[union-attr]
                inserted = conn.execute(production_history.insert().values(
                    target=name, action=action,
                    model=subject.model if subject else None, backend=subject.backend if subject else None,
                    job_id=subject.job_id if subject else None,
                    dataset_version=subject.dataset_version if subject else None,
                    evaluation=None if evaluation is None else canonical_json(evaluation),
                    metrics=None if metrics is None else canonical_json(metrics),
                    rollout_id=rollout_id, champion=_ref_json(champion), challenger=_ref_json(challenger),
                    challenger_share=share, at=when, by=by.strip(), reason=reason.strip(),
                ))
                history_id = int(inserted.inserted_primary_key[0])
                values = dict(rollout_id=rollout_id, champion=_ref_json(champion), challenger=_ref_json(challenger),
                              challenger_share=share, updated_at=when, history_id=history_id)
                if before is None:
                    conn.execute(rollouts.insert().values(target=name, **values))
                elif changed:
                    conn.execute(rollouts.update().where(rollouts.c.target == name).values(**values))
            break
        except (sa.exc.IntegrityError, sa.exc.OperationalError) as exc:
            retry = isinstance(exc, sa.exc.IntegrityError) or "locked" in str(exc)
            if not retry or attempt == RETRIES - 1:
                raise
    after = current(store, name)
    assert after is not None
    write_rollout_file(after)
    return after


def ensure_serving(store: Store, target: Any, *, by: str = "flywheel") -> Rollout:
    """The target's rollout; the base model serves (a `base` history row) when nothing was ever promoted.

    Also rewrites the rollout file when it is missing or older than the table (a fresh FLYWHEEL_HOME
    over a Postgres store, say).
    """
    existing = current(store, target)
    if existing is None:
        return _apply(store, target, "base", lambda state, before: None if before else (state, state[0]), by=by,
                      reason="no model was promoted for this target yet: the base model serves")
    sync_rollout_file(store, target, existing)
    return existing


def sync_rollout_file(store: Store, target: Any, rollout: Rollout | None = None) -> Path | None:
    """Rewrite the rollout file from the table if it is missing or names another rollout id."""
    rollout = rollout or current(store, target)
    if rollout is None:
        return None
    path = rollout_path(rollout.target)
    try:
        on_disk = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        on_disk = None
    if not isinstance(on_disk, dict) or on_disk.get("rollout_id") != rollout.rollout_id:
        return write_rollout_file(rollout)
    return path


def record_decision(
    store: Store,
    target: Any,
    decision: Decision,
    *,
    candidate: ModelRef | None,
    by: str,
    evaluation: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    at: str | None = None,
) -> Rollout:
    """Apply a `Decision` for `target` (a `Target`) and append it to the history; returns the new rollout.

    - `promote_challenger`: `candidate` serves `decision.challenger_share` of users beside the champion
      (replacing any earlier challenger);
    - `promote_champion`: `candidate` serves everyone; without a candidate, the current challenger
      does (the canary reached 100%);
    - `keep`: nothing changes; the refused `candidate` and why are recorded;
    - `base`: the base model serves (only while no fine-tuned champion does).
    """
    action = decision.action
    if action == "rollback":
        raise ValueError("use rollback() for a rollback")

    def transition(state: State, before: Rollout | None) -> tuple[State, ModelRef | None]:
        champion, challenger, share = state
        if action == "promote_challenger":
            if candidate is None:
                raise ValueError("promote_challenger needs the candidate")
            if candidate == champion:
                raise ValueError(f"{candidate.model} is already the champion of {_target_name(target)!r}")
            if decision.challenger_share is None or not 0 < decision.challenger_share < 1:
                raise ValueError(f"promote_challenger needs a share in (0, 1), not {decision.challenger_share}")
            return (champion, candidate, float(decision.challenger_share)), candidate
        if action == "promote_champion":
            chosen = candidate or challenger
            if chosen is None:
                raise ValueError("promote_champion needs a candidate, or a challenger to promote")
            return (chosen, None, 0.0), chosen
        if action == "keep":
            return state, candidate
        if action == "base":
            if before is not None and not champion.is_base:
                raise ValueError(
                    f"a fine-tuned champion ({champion.model}) serves {_target_name(target)!r}: 'base' applies only "
                    "when none does; the decision to record is 'keep'"
                )
            return state, champion
        raise ValueError(f"unknown action {action!r}")

    if action != "base" and current(store, target) is None:
        _apply(store, target, "base", lambda state, before: None if before else (state, state[0]), by=by, at=at,
               reason="no model was promoted for this target yet: the base model serves")  # the history shows the base model serving before the first promotion
    summary = {"decision": decision.as_dict(), **(evaluation or {})}
    return _apply(store, target, action, transition, by=by, reason=decision.reason, evaluation=summary, metrics=metrics,
                  at=at)


def _champion_stack(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The champions in the order they took over, with rolled-back ones removed (rows oldest first)."""
    stack: list[dict[str, Any]] = []
    for row in rows:
        champion = row["champion"]
        if stack and champion == stack[-1]:
            continue
        if row["action"] == "rollback" and len(stack) >= 2 and stack[-2] == champion:
            stack.pop()
        else:
            stack.append(champion)
    return stack


def rollback(store: Store, target: Any, *, by: str, reason: str) -> Rollout:
    """Remove the challenger, or (with none) put back the previous champion; one `rollback` history row.

    Raises `NothingToRollBack` when nothing serves yet, or the champion is the first that ever served.
    """
    name = _target_name(target)
    rows = list(reversed(history(store, name)))

    def transition(state: State, before: Rollout | None) -> tuple[State, ModelRef | None]:
        champion, challenger, _share = state
        if before is None:
            raise NothingToRollBack(f"nothing serves target {name!r} yet: nothing to roll back")
        if challenger is not None:
            return (champion, None, 0.0), challenger
        stack = _champion_stack(rows)
        if len(stack) < 2 or ModelRef.from_dict(stack[-1]) != champion:
            raise NothingToRollBack(
                f"target {name!r}: no challenger, and the champion {champion.model} is the first model that served "
                "it: there is no earlier champion to roll back to"
            )
        return (ModelRef.from_dict(stack[-2]), None, 0.0), champion

    return _apply(store, target, "rollback", transition, by=by, reason=reason)


def retire(store: Store, target: str, base: ModelRef, *, by: str, reason: str) -> Rollout | None:
    """`base` (the family's base model) serves again and the challenger is dropped; one `retire` row.

    None when nothing ever served `target`; retiring twice records once.
    """
    if current(store, target) is None:
        return None

    def transition(state: State, before: Rollout | None) -> tuple[State, ModelRef | None] | None:
        champion, challenger, _share = state
        if champion == base and challenger is None:
            return None  # already back on the base model
        return (base, None, 0.0), champion

    return _apply(store, target, "retire", transition, by=by, reason=reason)


def experiment_step(
    store: Store, target: Any, action: str, *, expect_rollout_id: str, share: float, by: str, reason: str,
    evaluation: dict[str, Any] | None = None, at: str | None = None,
) -> Rollout | None:
    """Apply an online experiment's decision to the rollout it looked at; None when that rollout changed since.

    - `advance`: the challenger's share becomes `share` (in (0, 1));
    - `promote_champion`: the challenger serves everyone;
    - `rollback`, `stop`: the challenger is taken out of traffic; the champion serves everyone.

    The experiment judged one rollout id: when a person (or another run) changed the rollout since,
    the decision no longer applies and nothing is recorded — manual `promote` / `rollback` win.
    """
    if action not in ("advance", "promote_champion", "rollback", "stop"):
        raise ValueError(f"an experiment step is advance, promote_champion, rollback or stop, not {action!r}")
    applied = False

    def transition(state: State, before: Rollout | None) -> tuple[State, ModelRef | None] | None:
        nonlocal applied
        champion, challenger, current_share = state
        if before is None or before.rollout_id != expect_rollout_id or challenger is None:
            return None
        applied = True
        if action == "advance":
            if not current_share < share < 1:
                raise ValueError(f"advance needs a share above {current_share} and below 1, not {share}")
            return (champion, challenger, float(share)), challenger
        if action == "promote_champion":
            return (challenger, None, 0.0), challenger
        return (champion, None, 0.0), challenger

    rollout = _apply(store, target, action, transition, by=by, reason=reason, evaluation=evaluation, at=at)
    return rollout if applied else None
