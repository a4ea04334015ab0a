"""On-call alerts: the Slack payload, the redaction guard, delivery to a loopback webhook, and the real sensor.

The sensor is the project's own `on_call_alerts`, ticked with `build_sensor_context` on a real
(ephemeral-on-disk) Dagster instance; the runs it reads are tiny assets built here with the
project's check names, so a tick costs milliseconds rather than a training run.
"""

from __future__ import annotations

import logging
import socket
import warnings

import dagster as dg
import pytest

from pipeline.alerts.messages import Alert, run_link, slack_payload
from pipeline.alerts.notifier import WebhookNotifier
from pipeline.alerts.redaction import scrub
from pipeline.core.resources import StoreResource
from pipeline_tests.fakes.webhook_server import FakeWebhook

TARGET = "signal_relevance"
KEY = "sk-flywheel-test-0123456789abcdef"


def _alert(**overrides) -> Alert:
    values = dict(kind="gate_failed", target=TARGET, title="anonymized_dataset blocking gate residual_pii_zero failed",
                  what_happened="3 residual e-mail addresses in 200 rows", run_id="abcd1234-0000",
                  link=run_link("abcd1234-0000"), key="k1")
    return Alert(**{**values, **overrides})


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed when the block ends: nothing listens there


# --- the message -------------------------------------------------------------------------------------


def test_slack_payload_names_the_target_what_happened_and_links_the_run(monkeypatch):
    monkeypatch.setenv("FLYWHEEL_UI_URL", "https://dagster.example.com/")
    alert = _alert(run_id="run-42", link=run_link("run-42"), what_happened="3 <addresses> & more")
    payload = slack_payload(alert)
    assert alert.link == "https://dagster.example.com/runs/run-42"
    assert TARGET in payload["text"] and "run-42" in payload["text"] and "3 <addresses>" in payload["text"]
    header, fields, what, link = payload["blocks"]
    assert header["type"] == "header" and header["text"]["text"].startswith(f"{TARGET}: ")
    assert any(TARGET in f["text"] for f in fields["fields"])
    assert what["text"]["text"] == "3 &lt;addresses&gt; &amp; more"  # no injected link or mention
    assert link["text"]["text"] == "<https://dagster.example.com/runs/run-42|View run>"


def test_ui_url_defaults_to_local_dagster_dev(monkeypatch):
    monkeypatch.delenv("FLYWHEEL_UI_URL", raising=False)
    assert run_link("r1") == "http://127.0.0.1:3000/runs/r1"


def test_an_alert_needs_a_known_kind_and_a_link():
    with pytest.raises(ValueError, match="unknown alert kind"):
        _alert(kind="oops")
    with pytest.raises(ValueError, match="link"):
        _alert(link="")


def test_scrub_removes_every_secret_value_and_a_webhook_path():
    url = "https://hooks.slack.com/services/T1/B2/secret-token-xyz"
    text = f"key {KEY} hook {url} path /services/T1/B2/secret-token-xyz short ab"
    clean = scrub(text, {"OPENAI_API_KEY": KEY, "FLYWHEEL_ALERT_WEBHOOK_URL": url, "HF_TOKEN": "ab", "UNSET": None})
    assert KEY not in clean and "secret-token-xyz" not in clean
    assert "[redacted OPENAI_API_KEY]" in clean and clean.count("[redacted FLYWHEEL_ALERT_WEBHOOK_URL]") == 2
    assert clean.endswith("short ab")  # too short to be a secret: left alone


# --- delivery ----------------------------------------------------------------------------------------


def test_delivered_once_and_the_payload_is_scrubbed(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with FakeWebhook() as hook:
        notifier = WebhookNotifier(url=hook.url, secret_variables=["OPENAI_API_KEY"])
        assert notifier.send(_alert(what_happened=f"the backend said: invalid key {KEY}")) is True
    [message] = hook.messages
    assert KEY not in str(message) and "[redacted OPENAI_API_KEY]" in message["text"]
    assert message["blocks"][0]["text"]["text"].startswith(TARGET)


def test_a_server_error_is_retried_and_delivered_once():
    with FakeWebhook(fail_first=[500]) as hook:
        notifier = WebhookNotifier(url=hook.url, backoff_s=0)
        assert notifier.send(_alert()) is True
    assert [status for status, _, _ in hook.requests] == [500, 200]
    assert len(hook.messages) == 1


def test_errors_past_the_tries_are_not_delivered_and_a_404_is_not_retried(caplog):
    with FakeWebhook(fail_first=[503, 503, 503, 503]) as hook:
        assert WebhookNotifier(url=hook.url, backoff_s=0, tries=3).send(_alert()) is False
        assert len(hook.requests) == 3 and not hook.messages
    with FakeWebhook() as hook:
        revoked = hook.url.replace(hook.path, "/services/revoked")
        assert WebhookNotifier(url=revoked, backoff_s=0).send(_alert()) is False
        assert [s for s, _, _ in hook.requests] == [404]
    assert "HTTP 404" in caplog.text and "revoked" not in caplog.text


def test_server_down_returns_false_and_logs_without_the_url(caplog):
    url = f"http://127.0.0.1:{_closed_port()}/services/T9/B9/down-token-abcdef"
    caplog.set_level(logging.DEBUG)  # urllib3's retry lines too
    assert WebhookNotifier(url=url, backoff_s=0).send(_alert()) is False
    assert "not sent" in caplog.text and "ConnectionError" in caplog.text
    assert "down-token" not in caplog.text and url not in caplog.text
    assert "Retrying" in caplog.text  # urllib3 did retry, and its lines were redacted


def test_without_a_url_alerts_are_logged_not_sent(caplog):
    assert WebhookNotifier().send(_alert()) is False
    assert "not sent: FLYWHEEL_ALERT_WEBHOOK_URL is not set" in caplog.text


def test_the_code_location_reads_the_webhook_url_through_envvar_and_treats_it_as_a_secret(monkeypatch):
    from pipeline.defs.resources import SECRET_VARIABLES, notifier_resource

    assert "FLYWHEEL_ALERT_WEBHOOK_URL" in SECRET_VARIABLES
    monkeypatch.delenv("FLYWHEEL_ALERT_WEBHOOK_URL", raising=False)
    assert notifier_resource().url == ""
    monkeypatch.setenv("FLYWHEEL_ALERT_WEBHOOK_URL", "http://127.0.0.1:9/services/x")
    assert isinstance(notifier_resource().url, dg.EnvVar)


# --- the sensor --------------------------------------------------------------------------------------

PARTS = dg.StaticPartitionsDefinition([TARGET, "page_builder"])
OUTCOME: dict[str, bool] = {}


@dg.asset(name="anonymized_dataset", partitions_def=PARTS)
def fake_anonymized() -> None:
    """A stand-in for the real asset: the sensor only reads its check's evaluation."""


with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.PreviewWarning)

    @dg.asset_check(asset="anonymized_dataset", name="residual_pii_zero", blocking=True, partitions_def=PARTS)
    def fake_pii_gate() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=OUTCOME.get("pii", False), severity=dg.AssetCheckSeverity.ERROR,
                                   description="3 residual e-mail addresses remain; see the runbook")

    @dg.asset_check(asset="anonymized_dataset", name="min_examples_met", blocking=True, partitions_def=PARTS)
    def fake_min_gate() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=OUTCOME.get("min", True), severity=dg.AssetCheckSeverity.ERROR,
                                   description="12 examples, 20 needed")

    @dg.asset_check(asset="production_model", name="model_in_service_fresh", partitions_def=PARTS)
    def fake_fresh() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=OUTCOME.get("fresh", False), severity=dg.AssetCheckSeverity.ERROR,
                                   description="the champion is 40 days old; the window is 30 days")

    @dg.asset_check(asset="evaluated_model", name="candidate_beats_champion", blocking=True, partitions_def=PARTS)
    def fake_beats() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.ERROR,
                                   description="interval [-0.02, +0.04] is below the margin 0.01")


@dg.asset(name="after_anonymized", partitions_def=PARTS, deps=["anonymized_dataset"])
def fake_downstream() -> None:
    """Skipped when the blocking gate fails."""


@dg.asset(name="production_model", partitions_def=PARTS)
def fake_production() -> None:
    """Its freshness check is what the sensor reads."""


@dg.asset(name="evaluated_model", partitions_def=PARTS)
def fake_evaluated() -> dg.MaterializeResult:
    """A refused candidate, as the real asset records it."""
    return dg.MaterializeResult(metadata={"decision": OUTCOME.get("decision", "keep"), "candidate_model": "ft-model-7",
                                          "champion_model": "base-minilm",
                                          "decision_reason": "1 gate(s) failed, the champion stays."})


@dg.asset(name="broken", partitions_def=PARTS)
def fake_broken() -> None:
    """Fails the run with a clear description."""
    raise dg.Failure(description="the store at FLYWHEEL_SOURCE_URL refused the connection")


@pytest.fixture
def instance(tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as inst:
        yield inst


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_instance(request, tmp_path):
    """The same test on Dagster's run-sharded SQLite storage and on its Postgres storage (one event table)."""
    if request.param == "sqlite":
        yield request.getfixturevalue("instance")
        return
    url = request.getfixturevalue("postgres_url")
    with dg.instance_for_test(temp_dir=str(tmp_path), overrides={"storage": {"postgres": {"postgres_url": url}}}) as inst:
        yield inst


def _tick(instance, cursor, url):
    from pipeline.defs.alerts import on_call_alerts

    resources = {"notifier": WebhookNotifier(url=url, backoff_s=0), "store": StoreResource()}
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources) as context:
        result = on_call_alerts(context)
    return result


def _run(instance, assets, partition=TARGET):
    return dg.materialize(assets, instance=instance, partition_key=partition, raise_on_error=False)


def test_a_failed_blocking_gate_pages_once_naming_target_and_check_with_a_link(any_instance, monkeypatch):
    monkeypatch.setenv("FLYWHEEL_UI_URL", "http://dagster.test")
    OUTCOME.clear()
    with FakeWebhook() as hook:
        first = _tick(any_instance, None, hook.url)
        assert not hook.messages, "the first tick starts from now"
        run = _run(any_instance, [fake_anonymized, fake_pii_gate, fake_min_gate, fake_downstream])
        assert not run.success  # the blocking gate failed the run
        second = _tick(any_instance, first.cursor, hook.url)
        [message] = hook.messages  # the gate, and no second "run failed" message for the same run
        assert "residual_pii_zero" in message["text"] and TARGET in message["text"]
        assert "3 residual e-mail addresses" in message["text"]
        assert f"<http://dagster.test/runs/{run.run_id}|View run>" in str(message["blocks"])
        from pipeline.alerts.watch import Cursor

        assert Cursor.from_json(second.cursor).runs > Cursor.from_json(first.cursor).runs  # read past the run
        third = _tick(any_instance, second.cursor, hook.url)
        assert len(hook.messages) == 1, "a second tick sends nothing"
        # the same gate failing again on the next run: still the same episode, no new page
        _run(any_instance, [fake_anonymized, fake_pii_gate, fake_min_gate])
        fourth = _tick(any_instance, third.cursor, hook.url)
        assert len(hook.messages) == 1
        # it passes, then fails again: a new episode pages again
        OUTCOME["pii"] = True
        _run(any_instance, [fake_anonymized, fake_pii_gate, fake_min_gate])
        fifth = _tick(any_instance, fourth.cursor, hook.url)
        assert len(hook.messages) == 1
        OUTCOME["pii"] = False
        _run(any_instance, [fake_anonymized, fake_pii_gate, fake_min_gate])
        _tick(any_instance, fifth.cursor, hook.url)
        assert len(hook.messages) == 2


def test_two_failed_gates_of_one_asset_and_target_are_one_message(instance):
    OUTCOME.clear()
    OUTCOME["min"] = False
    with FakeWebhook() as hook:
        cursor = _tick(instance, None, hook.url).cursor
        _run(instance, [fake_anonymized, fake_pii_gate, fake_min_gate])
        _tick(instance, cursor, hook.url)
    [message] = hook.messages
    assert "residual_pii_zero" in message["text"] and "min_examples_met" in message["text"]
    assert "12 examples, 20 needed" in message["text"]


def test_a_run_failure_pages_with_its_description(instance):
    with FakeWebhook() as hook:
        cursor = _tick(instance, None, hook.url).cursor
        run = _run(instance, [fake_broken], partition="page_builder")
        _tick(instance, cursor, hook.url)
    [message] = hook.messages
    assert message["text"].startswith(":x: run failed: page_builder")
    assert "refused the connection" in message["text"] and run.run_id in str(message["blocks"])


@pytest.mark.parametrize("decision", ["keep", "base"])
def test_a_refused_candidate_is_one_message_naming_its_failed_gate(instance, decision):
    OUTCOME.clear()
    OUTCOME["decision"] = decision  # "base": refused while no fine-tuned champion serves yet
    with FakeWebhook() as hook:
        cursor = _tick(instance, None, hook.url).cursor
        _run(instance, [fake_evaluated, fake_beats])
        _tick(instance, cursor, hook.url)
    [message] = hook.messages
    assert message["text"].startswith(":hand: candidate refused: signal_relevance: ft-model-7 refused; base-minilm stays")
    assert "candidate_beats_champion" in message["text"]


def test_a_stale_model_alerts_once_per_episode(instance):
    OUTCOME.clear()
    with FakeWebhook() as hook:
        cursor = _tick(instance, None, hook.url).cursor
        for _ in range(3):  # evaluated in every run, stale every time
            _run(instance, [fake_production, fake_fresh])
            cursor = _tick(instance, cursor, hook.url).cursor
        [message] = hook.messages
        assert message["text"].startswith(":warning: model in service is stale: signal_relevance")
        OUTCOME["fresh"] = True
        _run(instance, [fake_production, fake_fresh])
        cursor = _tick(instance, cursor, hook.url).cursor
        OUTCOME["fresh"] = False
        _run(instance, [fake_production, fake_fresh])
        _tick(instance, cursor, hook.url)
        assert len(hook.messages) == 2


def test_a_stuck_job_reported_runless_pages_once(any_instance):
    def report(passed: bool, partition: str = TARGET) -> None:
        try:  # SQLite refuses a second check-execution row per partition; the event is logged all the same
            any_instance.report_runless_asset_event(dg.AssetCheckEvaluation(
                asset_key=dg.AssetKey("fine_tune_job"), check_name="fine_tune_job_not_stuck", passed=passed,
                partition=partition, description="openai job ftjob-1 is queued for 3 h"))
        except Exception:  # noqa: BLE001
            pass

    with FakeWebhook() as hook:
        cursor = _tick(any_instance, None, hook.url).cursor
        report(False)
        cursor = _tick(any_instance, cursor, hook.url).cursor
        report(False)
        cursor = _tick(any_instance, cursor, hook.url).cursor
        [message] = hook.messages
        assert message["text"].startswith(":hourglass: fine-tune job stuck: signal_relevance")
        assert "/assets/fine_tune_job" in str(message["blocks"])
        report(True)
        report(False)
        _tick(any_instance, cursor, hook.url)
        assert len(hook.messages) == 2


def test_promotion_and_rollback_page_once_each_and_history_before_the_sensor_does_not(any_instance):
    from pipeline.core.targets import get_target
    from pipeline.evaluation.decision import Decision
    from pipeline.serving import production
    from pipeline.serving.rollout import ModelRef

    store = StoreResource().get()
    target = get_target(TARGET)
    old = ModelRef("/models/old", target.backend, "job-old", "v-old")
    production.record_decision(store, target, Decision("promote_champion", "before the sensor"), candidate=old,
                               by="test")
    with FakeWebhook() as hook:
        cursor = _tick(any_instance, None, hook.url).cursor
        new = ModelRef("/models/new", target.backend, "job-new", "v-new")
        production.record_decision(store, target, Decision("promote_champion", "beats the champion by 0.05"),
                                   candidate=new, by="production_model", evaluation={"run_id": "run-77"})
        cursor = _tick(any_instance, cursor, hook.url).cursor
        [promoted] = hook.messages
        assert promoted["text"].startswith(":rocket: model promoted: signal_relevance: /models/new promoted to champion")
        assert "beats the champion by 0.05" in promoted["text"] and "/runs/run-77" in promoted["text"]
        cursor = _tick(any_instance, cursor, hook.url).cursor
        assert len(hook.messages) == 1
        production.rollback(store, target, by="alice", reason="complaints from tenant acme")
        _tick(any_instance, cursor, hook.url)
        rolled = hook.messages[-1]
        assert len(hook.messages) == 2 and rolled["text"].startswith(":rewind: model rolled back: signal_relevance")
        assert "complaints from tenant acme" in rolled["text"] and "/assets/production_model" in rolled["text"]


def test_webhook_down_does_not_fail_the_tick_and_the_cursor_moves_on(instance, caplog, capfd):
    OUTCOME.clear()
    url = f"http://127.0.0.1:{_closed_port()}/services/T1/B1/tick-token-abcdef"
    cursor = _tick(instance, None, url).cursor
    _run(instance, [fake_anonymized, fake_pii_gate])
    result = _tick(instance, cursor, url)
    assert result.cursor != cursor and "0 delivered" in result.skip_reason.skip_message
    logged = caplog.text + capfd.readouterr().err  # the tick's log goes to Dagster's console handler
    assert "gate_failed alert for signal_relevance" in logged and "not sent" in logged
    assert "tick-token" not in logged
    with FakeWebhook() as hook:  # the webhook is back: the waiting alert goes out once, then nothing more
        again = _tick(instance, result.cursor, hook.url)
        assert len(hook.messages) == 1 and "residual_pii_zero" in hook.messages[0]["text"]
        _tick(instance, again.cursor, hook.url)
        assert len(hook.messages) == 1


def test_undelivered_alerts_wait_and_are_dropped_after_the_last_tick():
    from pipeline.alerts.watch import Cursor, deliver

    alerts = [_alert(key=f"k{i}") for i in range(3)]
    cursor, tries = Cursor(), []

    def down(alert):
        tries.append(alert.key)
        return False

    assert deliver(alerts, cursor, down, max_ticks=2) == (0, [])
    assert tries == ["k0"], "after the first failure the rest wait: the tick does not hang on a dead webhook"
    assert [p["alert"]["key"] for p in cursor.pending] == ["k0", "k1", "k2"]
    cursor = Cursor.from_json(cursor.to_json())  # it survives the cursor
    delivered, notes = deliver([], cursor, down, max_ticks=2)
    assert delivered == 0 and len(notes) == 3 and "dropped" in notes[0] and cursor.pending == []


def test_a_cursor_from_another_version_restarts_from_now(instance):
    from pipeline.alerts.watch import Cursor

    assert Cursor.from_json("{not json") is None and Cursor.from_json('{"runs": "x"}') is None
    cursor = Cursor(runs=3, runless=4, history=5, failing={"a/b|c"}, sent=["k"])
    assert Cursor.from_json(cursor.to_json()) == cursor
