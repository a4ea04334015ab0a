"""`on_call_alerts`: one sensor that pages on-call from Dagster's event log and the serving history.

One sensor reads everything (rather than a `run_failure_sensor` beside a check sensor) so that the
messages of one run are deduplicated across kinds: a run failed by a blocking gate gives the gate's
message, not a second "run failed", and a refused candidate one message naming its failed gates.
The logic is in `pipeline.alerts.watch`; delivery in `pipeline.alerts.notifier`. An alert that
cannot be sent is logged and the tick still succeeds; it waits in the cursor and the next ticks
retry it (up to 5 ticks, at most 50 waiting), so a webhook down for a minute loses nothing.
"""

import os

import dagster as dg

from pipeline.alerts.notifier import WebhookNotifier
from pipeline.core.resources import StoreResource

DEFAULT_INTERVAL_S = 30


def interval_seconds() -> int:
    """`FLYWHEEL_ALERT_SENSOR_SECONDS` (default 30): how often the sensor reads what is new."""
    raw = os.environ.get("FLYWHEEL_ALERT_SENSOR_SECONDS", "")
    try:
        value = int(raw) if raw.strip() else DEFAULT_INTERVAL_S
    except ValueError:
        raise ValueError(f"FLYWHEEL_ALERT_SENSOR_SECONDS must be a whole number of seconds, not {raw!r}") from None
    if value < 1:
        raise ValueError(f"FLYWHEEL_ALERT_SENSOR_SECONDS must be at least 1, not {value}")
    return value


@dg.sensor(
    minimum_interval_seconds=interval_seconds(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Pages on-call (Slack-compatible webhook) once per failed gate, failed run, refused candidate, "
                "promotion, rollback, retirement, stuck job and stale model, with a link to the run.",
)
def on_call_alerts(context: dg.SensorEvaluationContext, notifier: WebhookNotifier,
                   store: StoreResource) -> dg.SensorResult:
    from pipeline.alerts.redaction import scrub
    from pipeline.alerts.watch import Cursor, collect, deliver

    tick = collect(context.instance, store.get(), Cursor.from_json(context.cursor))
    secrets = notifier.secrets()
    for note in tick.notes:
        context.log.info(scrub(note, secrets))
    tried = len(tick.alerts) + len(tick.cursor.pending)
    delivered, dropped = deliver(tick.alerts, tick.cursor, lambda alert: notifier.send(alert, context.log))
    for note in dropped:
        context.log.error(scrub(note, secrets))
    if not tried:
        summary = tick.notes[0] if tick.notes else "nothing new to alert on"
    else:
        summary = f"{tried} alert(s), {delivered} delivered" + (
            f"; {len(tick.cursor.pending)} kept for the next tick" if tick.cursor.pending else "")
    return dg.SensorResult(skip_reason=summary, cursor=tick.cursor.to_json())
