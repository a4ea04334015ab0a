"""Read what is new in the source, validate it against the contract, keep or quarantine it.

The unit of work is the increment `cursor < seq <= high_watermark`. Every source record in it is
counted exactly once into one of three outcomes, so `records_in == accepted + quarantined +
excluded_opt_out` holds for every run:

* accepted: a valid interaction (stored in `fw_accepted_interactions` with its valid feedback),
  a valid feedback event attached to an accepted interaction, a valid organization;
* quarantined: with a reason code (see `contract`) and a sentence, in `fw_quarantine`;
* excluded_opt_out: records of tenants with `training_opt_out` (they never leave the source).

New feedback on an interaction read in an earlier run re-processes that interaction, so the
accepted record always carries all its feedback. Quarantine rows of records that later become
valid (feedback whose interaction arrived late, a corrected re-send) are removed: the quarantine
shows what is wrong now.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from pipeline.core import store as st
from pipeline.core.contract import (
    ContractError,
    validate_feedback,
    validate_interaction,
    validate_organization,
)

STAGE = "raw_interactions"
PREVIEW_ROWS = 10


@dataclass
class IngestReport:
    cursor_from: int
    cursor_to: int
    records_in: Counter = field(default_factory=Counter)  # by record type
    accepted: Counter = field(default_factory=Counter)  # by record type
    quarantined: Counter = field(default_factory=Counter)  # by reason
    quarantined_by_type: Counter = field(default_factory=Counter)
    excluded_opt_out: Counter = field(default_factory=Counter)  # by record type
    purged_opt_out: int = 0  # accepted rows removed because their tenant opted out
    resolved: int = 0  # quarantine rows cleared because the record is valid now
    preview: list[dict[str, Any]] = field(default_factory=list)

    @property
    def total_in(self) -> int:
        return sum(self.records_in.values())

    @property
    def total_quarantined(self) -> int:
        return sum(self.quarantined.values())

    @property
    def total_accepted(self) -> int:
        return sum(self.accepted.values())

    @property
    def total_excluded(self) -> int:
        return sum(self.excluded_opt_out.values())

    @property
    def quarantined_share(self) -> float:
        return self.total_quarantined / self.total_in if self.total_in else 0.0

    def balanced(self) -> bool:
        return self.total_in == self.total_accepted + self.total_quarantined + self.total_excluded

    def dominant_reasons(self, k: int = 3) -> list[tuple[str, int]]:
        return self.quarantined.most_common(k)


class _Batch:
    """What one batch decided; written in one transaction."""

    def __init__(self) -> None:
        self.accept: list[dict[str, Any]] = []
        self.reject: list[st.QuarantineRow] = []
        self.remove_accepted: list[str] = []
        self.resolve: list[tuple[str, str]] = []  # (record_type, record_key)


def ingest_increment(
    store: st.Store, after: int, *, run_id: str | None = None, batch_size: int = 5_000
) -> IngestReport:
    """Process every source record with `after < seq <= high watermark`; returns the counts."""
    upto = store.high_watermark()
    report = IngestReport(cursor_from=after, cursor_to=upto)
    if upto <= after:
        return report
    opted_out = _organizations(store, after, upto, report, run_id)

    # interactions that are new (or changed) in this increment, with all their feedback
    for rows in store.iter_source("interaction", after, upto, batch_size):
        batch = _Batch()
        with store.engine.connect() as conn:
            feedback_by_id = store.feedback_for(conn, [r.id for r in rows])
        for row in rows:
            report.records_in["interaction"] += 1
            _process_interaction(row, feedback_by_id.get(row.id, []), after, upto, opted_out, batch, report,
                                 count_interaction=True)
        _write(store, batch, run_id, report)

    # new feedback on interactions outside this increment, and feedback for unknown interactions
    for rows in store.iter_source("feedback", after, upto, batch_size):
        batch = _Batch()
        ids = sorted({r.interaction_id for r in rows if r.interaction_id})
        with store.engine.connect() as conn:
            parents = {
                r.id: r
                for chunk in st.chunks(ids, 900)
                for r in conn.execute(sa.select(st.interactions).where(st.interactions.c.id.in_(chunk)))
            }
            in_increment = {i for i, p in parents.items() if after < p.seq <= upto}
            stale = [i for i in parents if i not in in_increment]
            feedback_by_id = store.feedback_for(conn, stale) if stale else {}
        for row in rows:
            if row.interaction_id in in_increment:
                continue  # counted with its interaction above
            if row.interaction_id not in parents:
                report.records_in["feedback"] += 1
                _reject(batch, report, "feedback", row.key, "unknown_interaction",
                        f"feedback for interaction {row.interaction_id!r}, which the source does not have",
                        row.record)
        for interaction_id in stale:
            _process_interaction(parents[interaction_id], feedback_by_id.get(interaction_id, []), after, upto,
                                 opted_out, batch, report, count_interaction=False)
        _write(store, batch, run_id, report)
    return report


def _organizations(store: st.Store, after: int, upto: int, report: IngestReport, run_id: str | None) -> set[str]:
    """Validate new organizations; purge accepted rows of tenants that opted out. Returns the opted-out set."""
    batch = _Batch()
    newly_opted_out: list[str] = []
    opted_out: set[str] = set()
    for row in store.organizations_all():
        is_new = after < row.seq <= upto
        if is_new:
            report.records_in["organization"] += 1
        try:
            org = validate_organization(json.loads(row.record))
        except ContractError as exc:
            opted_out.add(row.org_id)  # privacy first: a tenant whose record we cannot read is not trained on
            if is_new:
                _reject(batch, report, "organization", row.org_id, exc.rejection.reason, exc.rejection.detail, row.record)
            continue
        if org["training_opt_out"]:
            opted_out.add(org["org_id"])
            if is_new:
                newly_opted_out.append(org["org_id"])
                report.excluded_opt_out["organization"] += 1
        elif is_new:
            report.accepted["organization"] += 1
            batch.resolve.append(("organization", row.org_id))
    with store.engine.begin() as conn:
        if newly_opted_out:
            for chunk in st.chunks(newly_opted_out, 900):
                report.purged_opt_out += conn.execute(
                    st.accepted.delete().where(st.accepted.c.org_id.in_(chunk))
                ).rowcount or 0
    _write(store, batch, run_id, report)
    return opted_out


def _process_interaction(
    row: sa.Row,
    feedback_rows: Iterable[sa.Row],
    after: int,
    upto: int,
    opted_out: set[str],
    batch: _Batch,
    report: IngestReport,
    *,
    count_interaction: bool,
) -> None:
    new_feedback = [f for f in feedback_rows if after < f.seq <= upto]
    old_feedback = [f for f in feedback_rows if not after < f.seq <= upto]
    if new_feedback:
        report.records_in["feedback"] += len(new_feedback)
    try:
        interaction = validate_interaction(json.loads(row.record))
    except ContractError as exc:
        batch.remove_accepted.append(row.id)
        if count_interaction:
            _reject(batch, report, "interaction", row.id, exc.rejection.reason, exc.rejection.detail, row.record)
        for f in new_feedback:
            _reject(batch, report, "feedback", f.key, "interaction_quarantined",
                    f"its interaction {row.id!r} was quarantined ({exc.rejection.reason})", f.record)
        return
    if interaction["org_id"] in opted_out:
        batch.remove_accepted.append(row.id)
        if count_interaction:
            report.excluded_opt_out["interaction"] += 1
        if new_feedback:
            report.excluded_opt_out["feedback"] += len(new_feedback)
        return
    events = []
    for f in [*old_feedback, *new_feedback]:
        is_new = after < f.seq <= upto
        try:
            event = validate_feedback(json.loads(f.record))
        except ContractError as exc:
            if is_new:
                _reject(batch, report, "feedback", f.key, exc.rejection.reason, exc.rejection.detail, f.record)
            continue
        events.append(event)
        batch.resolve.append(("feedback", f.key))
        if is_new:
            report.accepted["feedback"] += 1
    events.sort(key=lambda e: (e["occurred_at"], e["kind"]))
    interaction["feedback"] = events
    if count_interaction:
        report.accepted["interaction"] += 1
    batch.resolve.append(("interaction", row.id))
    # the row changed when its latest feedback came: readers of `accepted_seq > watermark` (scored_examples,
    # the retraining sensor) must see an earlier interaction that late feedback made an example
    changed_at = max([row.seq, *(f.seq for f in new_feedback)])
    batch.accept.append(st.accepted_row(interaction, changed_at))
    if len(report.preview) < PREVIEW_ROWS:
        report.preview.append(
            {
                "id": interaction["id"],
                "org_id": interaction["org_id"],
                "task": interaction["task"],
                "turns": len(interaction["messages"]),
                "response_chars": len(interaction["response"]),
                "format": interaction["response_format"],
                "feedback": ", ".join(sorted({e["kind"] for e in events})) or "—",
            }
        )


def _reject(batch: _Batch, report: IngestReport, record_type: str, key: str, reason: str, detail: str,
            raw: str | None) -> None:
    batch.reject.append(st.QuarantineRow(STAGE, record_type, key, reason, detail, raw))
    report.quarantined[reason] += 1
    report.quarantined_by_type[record_type] += 1


def _write(store: st.Store, batch: _Batch, run_id: str | None, report: IngestReport) -> None:
    with store.engine.begin() as conn:
        if batch.remove_accepted:
            for chunk in st.chunks(batch.remove_accepted, 900):
                conn.execute(st.accepted.delete().where(st.accepted.c.id.in_(chunk)))
        store.upsert_accepted(conn, batch.accept)
        if batch.reject:
            store.quarantine_rows(conn, batch.reject, run_id=run_id)
        for record_type in ("interaction", "feedback", "organization"):
            keys = [k for t, k in batch.resolve if t == record_type]
            for chunk in st.chunks(keys, 900):
                report.resolved += conn.execute(
                    st.quarantine.delete().where(
                        st.quarantine.c.stage == STAGE,
                        st.quarantine.c.record_type == record_type,
                        st.quarantine.c.record_key.in_(chunk),
                    )
                ).rowcount or 0
