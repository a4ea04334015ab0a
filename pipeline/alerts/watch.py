"""What the on-call sensor pages about: Dagster's event log and the serving history since a cursor, as alerts.

Three sources, each read from a storage id on, so a tick reads only what is new:

- **runs that ended** (`RUN_SUCCESS` / `RUN_FAILURE` status changes): each run's own check
  evaluations and materializations are read together, once it ended, so one run gives one
  coherent set of messages: a failed ERROR check (one message per asset and target, naming every
  failed check), a refused candidate (`evaluated_model` decided `keep` or `base`; its failed gates are named
  in that one message), and a run failure — unless a blocking check failed in it, which already
  says why it failed;
- **runless check evaluations** (a check reported from outside a run, `instance.report_runless_asset_event`;
  Flywheel's own sensors judge checks in runs), read from the run-less event log (run id ''), where every report lands even when the check-execution table
  refuses a second row for the same partition on SQLite;
- **the serving history** (`fw_production_history`): promotions, rollbacks and retirements,
  whether `production_model`, the `flywheel` CLI or the partitions sensor recorded them.

A failed ERROR check alerts once per episode: its (asset, check, target) stays in the cursor's
`failing` set until an evaluation passes, so a stale model or a stuck job evaluated every tick
pages once. Every alert has a stable key, and the last keys sent are kept in the cursor too. An
alert the webhook did not take stays in the cursor and is retried first by the next ticks.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import dagster as dg

from pipeline.alerts.messages import Alert, asset_link, run_link
from pipeline.finetune.settings import STUCK_CHECK

if TYPE_CHECKING:
    from pipeline.core.store import Store

#: records read per source per tick; the rest is read by the next tick
PAGE = 200
#: alert keys remembered (a key is never sent twice while it is remembered)
SENT_KEYS = 1_000
#: undelivered alerts kept for the next ticks, and in how many ticks each is tried before it is dropped
MAX_PENDING = 50
MAX_TICKS = 5
#: the freshness check on production_model (a stale model in service pages once per episode)
FRESH_CHECK = "model_in_service_fresh"
CHECK_KINDS = {STUCK_CHECK: "job_stuck", FRESH_CHECK: "model_stale"}
HISTORY_KINDS = {"promote_challenger": "promoted", "promote_champion": "promoted", "rollback": "rolled_back",
                 "retire": "retired", "advance": "advanced", "stop": "experiment_stopped"}
#: the decisions of `evaluated_model` that refuse its candidate (`base`: no fine-tuned champion yet)
REFUSALS = ("keep", "base")
ALL_TARGETS = "all targets"
MAX_DETAIL = 700


@dataclass
class Cursor:
    """Where each source was read to, the checks failing now (alerted once), and the keys sent."""

    runs: int = 0
    runless: int = 0
    history: int = 0
    failing: set[str] = field(default_factory=set)
    sent: list[str] = field(default_factory=list)
    #: alerts not delivered yet (the webhook was down), with the ticks tried: retried first by the next tick
    pending: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps({"runs": self.runs, "runless": self.runless, "history": self.history,
                           "failing": sorted(self.failing), "sent": self.sent[-SENT_KEYS:],
                           "pending": self.pending[-MAX_PENDING:]}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> Cursor | None:
        """The cursor, or None for none (or one this version cannot read: the sensor then starts from now)."""
        if not text:
            return None
        try:
            data = json.loads(text)
            pending = [p for p in data.get("pending", []) if Alert(**p["alert"])]  # validates each
            return cls(int(data["runs"]), int(data["runless"]), int(data["history"]), set(data.get("failing", [])),
                       list(data.get("sent", [])), pending)
        except (ValueError, KeyError, TypeError):
            return None


def deliver(new: list[Alert], cursor: Cursor, send: Callable[[Alert], bool], *,
            max_ticks: int = MAX_TICKS) -> tuple[int, list[str]]:
    """Send what is pending, then `new`; what fails stays pending in `cursor` for the next tick.

    After the first failure in a tick the rest wait (no tick spends its time on a webhook that is down);
    an alert tried in `max_ticks` ticks is dropped, and said so. Returns (delivered, notes).
    """
    queue = [(Alert(**p["alert"]), int(p["ticks"])) for p in cursor.pending] + [(a, 0) for a in new]
    delivered, notes, pending, down = 0, [], [], False
    for alert, ticks in queue:
        if not down and send(alert):
            delivered += 1
            continue
        down = True
        if ticks + 1 >= max_ticks:
            notes.append(f"{alert.kind} alert for {alert.target} ({alert.title}) dropped: not delivered in "
                         f"{max_ticks} ticks")
        else:
            pending.append({"alert": alert.as_dict(), "ticks": ticks + 1})
    if len(pending) > MAX_PENDING:
        notes.append(f"{len(pending) - MAX_PENDING} undelivered alert(s) dropped: more than {MAX_PENDING} pending")
    cursor.pending = pending[-MAX_PENDING:]
    return delivered, notes


@dataclass
class Tick:
    alerts: list[Alert]
    cursor: Cursor
    notes: list[str] = field(default_factory=list)


def _status_changes(instance: dg.DagsterInstance, event_type, after: int, limit: int) -> list:
    return list(instance.fetch_run_status_changes(
        dg.RunStatusChangeRecordsFilter(event_type, after_storage_id=after), limit=limit, ascending=True).records)


def _runless_checks(instance: dg.DagsterInstance, after: int, limit: int) -> list:
    from dagster._core.events import DagsterEventType
    from dagster._core.storage.event_log.base import EventLogCursor

    cursor = EventLogCursor.from_storage_id(after).to_string() if after else None
    return list(instance.event_log_storage.get_records_for_run(
        "", cursor=cursor, of_type=DagsterEventType.ASSET_CHECK_EVALUATION, limit=limit, ascending=True).records)


def _newest_runless(instance: dg.DagsterInstance) -> int:
    from dagster._core.events import DagsterEventType

    records = instance.event_log_storage.get_records_for_run(
        "", of_type=DagsterEventType.ASSET_CHECK_EVALUATION, limit=1, ascending=False).records
    return records[0].storage_id if records else 0


def history_since(store: Store, after: int, limit: int = PAGE) -> list[dict[str, Any]]:
    """Serving-history rows with an id above `after`, oldest first (JSON columns decoded)."""
    import sqlalchemy as sa

    from pipeline.core.store import production_history

    query = (sa.select(production_history).where(production_history.c.id > after)
             .order_by(production_history.c.id).limit(limit))
    with store.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(query)]
    for row in rows:
        for key in ("evaluation", "champion", "challenger"):
            row[key] = json.loads(row[key]) if row.get(key) else None
    return rows


def _newest_history(store: Store) -> int:
    import sqlalchemy as sa

    from pipeline.core.store import production_history

    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.max(production_history.c.id))).scalar() or 0)


def start_cursor(instance: dg.DagsterInstance, store: Store) -> Cursor:
    """A cursor at now: the first tick does not page about what happened before the sensor ran."""
    from dagster._core.events import DagsterEventType as T

    newest = [r.storage_id for t in (T.RUN_SUCCESS, T.RUN_FAILURE)
              for r in instance.fetch_run_status_changes(t, limit=1, ascending=False).records]
    return Cursor(runs=max(newest, default=0), runless=_newest_runless(instance), history=_newest_history(store))


def _clip(text: str, limit: int = MAX_DETAIL) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _check_state_key(evaluation) -> str:
    return f"{evaluation.asset_key.to_user_string()}/{evaluation.check_name}|{evaluation.partition or ''}"


def _is_error(evaluation) -> bool:
    return evaluation.severity == dg.AssetCheckSeverity.ERROR


def _check_alert(evaluations: list, run_id: str | None, key: str, base: str | None) -> Alert:
    """One message for the failed checks of one asset and target (in one run, or one runless report)."""
    first = evaluations[0]
    asset, target = first.asset_key.to_user_string(), first.partition or ALL_TARGETS
    names = [e.check_name for e in evaluations]
    kind = CHECK_KINDS.get(first.check_name, "gate_failed") if len(evaluations) == 1 else "gate_failed"
    gate = "blocking gate" if all(e.blocking for e in evaluations) else "check"
    title = (f"{asset} {gate} {names[0]} failed" if len(names) == 1
             else f"{asset}: {len(names)} {gate}s failed: {', '.join(names)}")
    detail = " ".join(f"{e.check_name}: {_clip(e.description or 'no description', 400)}" for e in evaluations)
    if any(e.blocking for e in evaluations):
        detail += f" Nothing downstream of {asset} is built from this version for {target}."
    link = run_link(run_id, base) if run_id else asset_link(asset, base)
    return Alert(kind, target, title, _clip(detail, 1_500), run_id, link, key)  # type: ignore[arg-type]


def _failure_text(entry) -> str:
    """Why a run failed: the first failed step's own description (a `dg.Failure`), else its error's first line."""
    data = entry.dagster_event.event_specific_data
    step = getattr(data, "first_step_failure_event", None)
    if step is not None:
        step_data = step.event_specific_data
        user = getattr(step_data, "user_failure_data", None)
        if user is not None and user.description:
            return f"step {step.step_key}: {user.description}"
        error = getattr(step_data, "error", None)
        if error is not None:
            return f"step {step.step_key}: {error.message.strip().splitlines()[0]}"
    error = getattr(data, "error", None)
    if error is not None:
        return error.message.strip().splitlines()[0]
    return entry.message or "the run failed"


def _run_alerts(instance: dg.DagsterInstance, record, cursor: Cursor, base: str | None) -> list[Alert]:
    from dagster._core.events import DagsterEventType as T

    entry = record.event_log_entry
    run_id = entry.run_id
    run = instance.get_run_by_id(run_id)
    tags = run.tags if run else {}
    events = instance.all_logs(run_id, of_type={T.ASSET_CHECK_EVALUATION, T.ASSET_MATERIALIZATION})
    failed: dict[tuple[str, str | None], list] = {}
    refused: dict[str, Any] = {}
    blocked = False
    for event in events:
        data = event.dagster_event.event_specific_data
        if event.dagster_event.event_type == T.ASSET_MATERIALIZATION:
            materialization = data.materialization
            decision = materialization.metadata.get("decision")
            if (materialization.asset_key.to_user_string() == "evaluated_model"
                    and getattr(decision, "value", decision) in REFUSALS):
                refused[materialization.partition or ALL_TARGETS] = materialization
            continue
        evaluation = data
        state = _check_state_key(evaluation)
        if evaluation.passed:
            cursor.failing.discard(state)
            continue
        if not _is_error(evaluation):
            continue
        blocked = blocked or bool(evaluation.blocking)
        if state in cursor.failing:
            continue  # still failing since the last alert: once per episode
        cursor.failing.add(state)
        failed.setdefault((evaluation.asset_key.to_user_string(), evaluation.partition), []).append(evaluation)
    alerts = []
    for target, materialization in refused.items():
        gates = [e.check_name for e in failed.pop(("evaluated_model", materialization.partition), [])]
        reason = materialization.metadata.get("decision_reason")
        model = materialization.metadata.get("candidate_model")
        what = _clip(str(getattr(reason, "value", reason) or "the candidate did not pass its gates"), 1_200)
        if gates:
            what += f" Failed: {', '.join(gates)}."
        name = getattr(model, "value", model) or "the candidate"
        champion = materialization.metadata.get("champion_model")
        stays = f"{getattr(champion, 'value', champion)} stays" if champion else "the champion stays"
        alerts.append(Alert("refused", target, f"{name} refused; {stays}", what, run_id,
                            run_link(run_id, base), f"refused:{run_id}:{target}"))
    for (asset, partition), evaluations in failed.items():
        alerts.append(_check_alert(evaluations, run_id, f"check:{run_id}:{asset}:{partition or ''}", base))
    if entry.dagster_event.event_type == T.RUN_FAILURE and not blocked:
        target = tags.get("dagster/partition") or ALL_TARGETS
        job = run.job_name if run else entry.job_name
        alerts.append(Alert("run_failed", target, f"run of {job} failed", _clip(_failure_text(entry), 1_200), run_id,
                            run_link(run_id, base), f"run_failed:{run_id}"))
    return alerts


def _runless_alert(record, cursor: Cursor, base: str | None) -> Alert | None:
    evaluation = record.event_log_entry.dagster_event.event_specific_data
    state = _check_state_key(evaluation)
    if evaluation.passed:
        cursor.failing.discard(state)
        return None
    if not _is_error(evaluation) or state in cursor.failing:
        return None
    cursor.failing.add(state)
    return _check_alert([evaluation], None, f"runless:{record.storage_id}", base)


def _history_alert(row: dict[str, Any], base: str | None) -> Alert | None:
    kind = HISTORY_KINDS.get(row["action"])
    if kind is None:
        return None
    evaluation = row.get("evaluation") or {}
    run_id = evaluation.get("run_id") or None
    model = row.get("model") or "?"
    champion = (row.get("champion") or {}).get("model", "?")
    if row["action"] == "promote_challenger":
        title = f"{model} promoted to challenger at {row['challenger_share']:.0%}"
    elif row["action"] == "promote_champion":
        title = f"{model} promoted to champion"
    elif row["action"] == "rollback":
        title = f"{model} rolled back; {champion} serves"
    elif row["action"] == "advance":
        title = f"{model} advanced to {row['challenger_share']:.0%} of users"
    elif row["action"] == "stop":
        title = f"experiment stopped: {model} taken out of traffic; {champion} serves"
    else:
        title = f"{model} retired; {champion} serves"
    what = f"by {row['by']} at {row['at']}: {row['reason']}"
    cmp = evaluation.get("vs_champion") or {}
    if cmp.get("difference") is not None and evaluation.get("primary"):
        low, high = cmp.get("low"), cmp.get("high")
        interval = f" [{low:+.3f}, {high:+.3f}]" if low is not None and high is not None else ""
        what += f" ({evaluation['primary']}: candidate − champion {cmp['difference']:+.3f}{interval})"
    link = run_link(run_id, base) if run_id else asset_link(
        "online_experiment" if row["action"] in ("advance", "stop") or row["by"] == "online_experiment"
        else "production_model", base)
    return Alert(kind, row["target"], title, _clip(what, 1_200), run_id, link, f"history:{row['id']}")  # type: ignore[arg-type]


def collect(instance: dg.DagsterInstance, store: Store, cursor: Cursor | None, *, base: str | None = None,
            page: int = PAGE) -> Tick:
    """The alerts since `cursor` and the cursor after them (no cursor: start from now, no alerts)."""
    from dagster._core.events import DagsterEventType as T

    if cursor is None:
        start = start_cursor(instance, store)
        return Tick([], start, ["first tick: alerts start from now (nothing before is paged)"])
    nxt = Cursor(cursor.runs, cursor.runless, cursor.history, set(cursor.failing), list(cursor.sent),
                 list(cursor.pending))
    alerts: list[Alert] = []
    notes: list[str] = []

    failures = _status_changes(instance, T.RUN_FAILURE, cursor.runs, page)
    successes = _status_changes(instance, T.RUN_SUCCESS, cursor.runs, page)
    ended = sorted(failures + successes, key=lambda r: r.storage_id)
    # a full page of one kind: stop at its last record, so no record of the other kind before it is skipped
    full = [batch[-1].storage_id for batch in (failures, successes) if len(batch) == page]
    if full:
        ended = [r for r in ended if r.storage_id <= min(full)]
    for record in ended:
        try:
            alerts += _run_alerts(instance, record, nxt, base)
        except Exception as exc:  # noqa: BLE001 - one unreadable run must not stop the others' alerts
            notes.append(f"run {record.event_log_entry.run_id}: could not be read for alerts ({type(exc).__name__}: {exc})")
        nxt.runs = record.storage_id

    for record in _runless_checks(instance, cursor.runless, page):
        alert = _runless_alert(record, nxt, base)
        if alert is not None:
            alerts.append(alert)
        nxt.runless = record.storage_id

    for row in history_since(store, cursor.history, page):
        alert = _history_alert(row, base)
        if alert is not None:
            alerts.append(alert)
        nxt.history = int(row["id"])

    sent = set(nxt.sent)
    fresh = []
    for alert in alerts:
        if alert.key in sent:
            notes.append(f"{alert.key}: already sent")
            continue
        sent.add(alert.key)
        nxt.sent.append(alert.key)
        fresh.append(alert)
    nxt.sent = nxt.sent[-SENT_KEYS:]
    return Tick(fresh, nxt, notes)
