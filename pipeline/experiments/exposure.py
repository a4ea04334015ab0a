"""Which variant served each interaction of a canary step, and the step's totals from the log.

An interaction belongs to the current step when the product logged its arm (`rollout`, as
`pipeline.serving.route` returned it) with the step's rollout id; without `rollout`, when it came
after the step began and its `model` is the step's champion or challenger model. Everything read
is either tallied or counted under the reason it was set aside, and the counts add up.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from pipeline.core.contract import latest_feedback
from pipeline.core.store import Store, accepted
from pipeline.experiments.metrics import interaction_values
from pipeline.experiments.tally import StepTally

SKIP_REASONS = ("other_rollout", "before_step", "unknown_model", "no_user", "not_settled")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@dataclass
class ExposureCounts:
    """What a look read, and where each interaction went (tallied + set aside = read)."""

    read: int = 0
    tallied: int = 0
    set_aside: Counter = field(default_factory=Counter)
    outcomes: Counter = field(default_factory=Counter)  # explicit / inferred / none

    @property
    def add_up(self) -> bool:
        return self.read == self.tallied + sum(self.set_aside.values())

    def as_dict(self) -> dict[str, Any]:
        return {"read": self.read, "tallied": self.tallied, "set_aside": dict(self.set_aside),
                "outcomes": dict(self.outcomes)}


def variant_of(record: dict[str, Any], rollout: Any, step_start: datetime) -> tuple[str | None, str | None]:
    """(variant, None) when the interaction belongs to this step, else (None, why it is set aside)."""
    logged = record.get("rollout")
    if logged is not None:
        if logged.get("id") != rollout.rollout_id:
            return None, "other_rollout"
        return logged["variant"], None
    if parse_time(record["occurred_at"]) < step_start:
        return None, "before_step"
    model = record.get("model")
    if rollout.challenger is not None and model == rollout.challenger.model:
        return "challenger", None
    if model == rollout.champion.model:
        return "champion", None
    return None, "unknown_model"


def conversations(records: Iterable[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Consecutive records of one (org, conversation) as a list; a record with no conversation alone."""
    group: list[dict[str, Any]] = []
    key: tuple[str, str] | None = None
    for record in records:
        conversation = record.get("conversation_id")
        this = (record["org_id"], conversation) if conversation else None
        if group and (this is None or this != key):
            yield group
            group = []
        group.append(record)
        key = this
        if this is None:
            yield group
            group, key = [], None
    if group:
        yield group


def tally_records(
    records: Iterable[dict[str, Any]], rollout: Any, windows: Any, as_of: str, *,
    tally: StepTally | None = None, counts: ExposureCounts | None = None, infer: bool = True,
) -> tuple[StepTally, ExposureCounts]:
    """Add the step's settled interactions to `tally`; `records` come grouped by (org, conversation).

    An interaction is settled once its abandonment window has passed at `as_of` (the log's clock):
    before that its outcome may still change, so a look leaves it for the next one (`not_settled`).
    """
    from pipeline.curation.implicit import effective_outcome, infer_conversation

    tally = tally if tally is not None else StepTally()
    counts = counts if counts is not None else ExposureCounts()
    step_start = parse_time(rollout.updated_at)
    settled_by = parse_time(as_of) - timedelta(seconds=windows.abandon_after_s)
    for turns in conversations(records):
        inferred = infer_conversation(turns, windows, as_of) if infer and turns[0].get("conversation_id") else {}
        for record in turns:
            counts.read += 1
            variant, why = variant_of(record, rollout, step_start)
            if variant is not None and not record.get("user_id"):
                variant, why = None, "no_user"
            if variant is not None and parse_time(record["occurred_at"]) > settled_by:
                variant, why = None, "not_settled"
            if variant is None:
                counts.set_aside[why] += 1
                continue
            latest = latest_feedback(record.get("feedback") or [])
            outcome, source = effective_outcome(latest, inferred.get(record["id"]))
            counts.outcomes[source or "none"] += 1
            day = int((parse_time(record["occurred_at"]) - step_start).total_seconds() // 86_400)
            tally.add(record["user_id"], variant, interaction_values(record, latest, outcome), max(day, 0))
            counts.tallied += 1
    return tally, counts


def log_clock(store: Store) -> str | None:
    """The newest `occurred_at` among accepted interactions: the log's own clock (None for an empty log)."""
    from pipeline.curation.curate import store_clock

    return store_clock(store)


def step_records(store: Store, target: Any, since: str, exclude: Iterable[str] = (), batch: int = 5_000
                 ) -> Iterator[dict[str, Any]]:
    """The target's accepted interactions from `since` (a second early: text order of timestamps), by conversation."""
    query = sa.select(accepted.c.record).where(accepted.c.task.in_(list(target.tasks)),
                                              accepted.c.occurred_at >= since[:19])
    if target.tenants is not None:
        query = query.where(accepted.c.org_id.in_(list(target.tenants)))
    excluded = sorted(set(exclude) | set(target.exclude_tenants))
    if excluded:
        query = query.where(accepted.c.org_id.not_in(excluded))
    query = query.order_by(accepted.c.org_id, accepted.c.conversation_id, accepted.c.occurred_at, accepted.c.id)
    with store.engine.connect() as conn:
        for row in conn.execution_options(yield_per=batch).execute(query):
            yield json.loads(row.record)
