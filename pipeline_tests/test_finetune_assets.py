"""`fine_tune_job` with `dg.materialize`, the job-status sensor through `build_sensor_context`, cancel."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from pipeline.backends.base import FineTuneBackend, FineTuneRequest, JobStatus, TrainedModel
from pipeline.core.resources import StoreResource
from pipeline.finetune import (
    FINETUNE_ASSETS,
    FINETUNE_CHECKS,
    FINETUNE_JOBS,
    FINETUNE_SENSORS,
    SentenceTransformersBackend,
    registry,
)
from pipeline.finetune.lifecycle import cancel_job, wait_for_jobs
from pipeline.finetune.sensors import evaluate_tick
from pipeline_tests.finetune_helpers import write_triplet_manifest

TARGET = "signal_relevance"


class UnusedBackend(FineTuneBackend):
    """Stands in for a backend this test does not exercise: any call is a test failure."""

    label: str = "unused"

    @property
    def name(self) -> str:
        return self.label

    def submit(self, request: FineTuneRequest) -> JobStatus:
        raise AssertionError(f"{self.label} backend must not be called")

    def status(self, job_id: str) -> JobStatus:
        raise AssertionError(f"{self.label} backend must not be called")

    def cancel(self, job_id: str) -> JobStatus:
        raise AssertionError(f"{self.label} backend must not be called")

    def result(self, job_id: str) -> TrainedModel:
        raise AssertionError(f"{self.label} backend must not be called")


def resources(store_url: str, st_backend: FineTuneBackend | None = None) -> dict:
    return {
        "store": StoreResource(url=store_url),
        "openai_backend": UnusedBackend(label="openai"),
        "huggingface_backend": UnusedBackend(label="huggingface"),
        "sentence_transformers_backend": st_backend or SentenceTransformersBackend(),
    }


def materialize(store_url: str, **kw) -> dg.ExecuteInProcessResult:
    return dg.materialize(FINETUNE_ASSETS, partition_key=TARGET, resources=resources(store_url, **kw),
                          raise_on_error=False)


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    return " ".join(str(e.event_specific_data.error) for e in result.all_events if e.is_step_failure)


def test_without_a_training_file_the_step_says_what_to_materialize(tmp_path):
    result = materialize(f"sqlite:///{tmp_path / 's.db'}")
    assert not result.success
    assert "materialize training_file for it first" in failure_text(result)


def test_a_backend_refusal_fails_with_what_to_fix(tmp_path):
    manifest = write_triplet_manifest(TARGET, "v1", n_train=4, n_valid=2)
    import os

    os.remove(manifest["files"]["embedding_triplets"]["train"])
    result = materialize(f"sqlite:///{tmp_path / 's.db'}")
    text = failure_text(result)
    assert "sentence_transformers backend could not start the job" in text
    assert "check the training file" in text and "re-materialize this partition" in text


def test_definitions_pieces_load_together(tmp_path):
    defs = dg.Definitions(assets=FINETUNE_ASSETS, asset_checks=FINETUNE_CHECKS, sensors=FINETUNE_SENSORS,
                          jobs=FINETUNE_JOBS, resources=resources(f"sqlite:///{tmp_path / 's.db'}"))
    graph = defs.resolve_asset_graph()
    node = graph.get(dg.AssetKey("fine_tune_job"))
    assert node.group_name == "training" and node.owners == ["team:ml-platform"]
    assert [k.to_user_string() for k in node.parent_keys] == ["training_file"]
    assert {c.name for c in graph.asset_check_keys} == {"fine_tune_job_not_stuck"}
    sensor = defs.resolve_sensor_def("fine_tune_job_status_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING and sensor.minimum_interval_seconds == 60
    assert defs.resolve_job_def("cancel_fine_tune_job") is not None


def test_cancel_job_of_an_unknown_id_asks_for_the_backend(tmp_path):
    job = FINETUNE_JOBS[0]
    result = job.execute_in_process(
        run_config={"ops": {"cancel_fine_tune_job_op": {"config": {"job_id": "ftjob-nope"}}}},
        resources=resources(f"sqlite:///{tmp_path / 's.db'}"), raise_on_error=False,
    )
    assert not result.success
    assert "not in the model registry; set config 'backend'" in failure_text(result)


@pytest.mark.slow
def test_submit_then_sensor_reports_the_trained_model(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    write_triplet_manifest(TARGET, "v1", n_train=40, n_valid=12)
    result = materialize(url)
    assert result.success
    [mat] = result.asset_materializations_for_node("fine_tune_job")
    meta = mat.metadata
    job_id = meta["job_id"].value
    assert meta["backend"].value == "sentence_transformers" and meta["dataset_version"].value == "v1"
    assert meta["status"].value in ("queued", "running") and meta["attached_to_existing_job"].value is False
    assert meta["hyperparameters"].value == {"epochs": 1, "batch_size": 32, "learning_rate": 2e-5}
    assert f"| job_id | {job_id} |" in meta["registry_row"].value

    store = StoreResource(url=url).get()
    again = materialize(url)  # a second click re-attaches to the live job
    assert again.asset_materializations_for_node("fine_tune_job")[0].metadata["job_id"].value == job_id
    assert again.asset_materializations_for_node("fine_tune_job")[0].metadata["attached_to_existing_job"].value
    assert len(registry.list_jobs(store, TARGET)) == 1

    with dg.instance_for_test() as instance:
        sensor = FINETUNE_SENSORS[0]
        ctx = dg.build_sensor_context(instance=instance, resources=resources(url))
        tick = sensor(ctx)
        assert not tick.asset_events  # still training: nothing to report yet
        cursor = tick.cursor
        statuses = wait_for_jobs(store, {"sentence_transformers": SentenceTransformersBackend()}, timeout_s=180,
                                 poll_s=0.5)
        assert [s.state.value for s in statuses] == ["succeeded"]
        ctx = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources(url))
        tick = sensor(ctx)
        [event] = tick.asset_events
        assert isinstance(event, dg.AssetMaterialization) and event.partition == TARGET
        assert event.metadata["status"].value == "succeeded"
        assert event.metadata["model_path"].value.endswith("/model")
        assert 0 <= event.metadata["metric_mrr@10"].value <= 1
        assert event.metadata["metrics"].value["base_ndcg@10"] is not None
        ctx = dg.build_sensor_context(instance=instance, cursor=tick.cursor, resources=resources(url))
        assert not sensor(ctx).asset_events  # reported once

    row = registry.get_job(store, job_id)
    assert row["status"] == "succeeded" and row["result_model"] and row["trained_tokens"] > 0
    assert row["metrics"]["steps"] == 2 and row["cost_usd"] == 0.0 and row["finished_at"]
    done = materialize(url)  # the version already has its model: re-attach, do not train again
    assert done.asset_materializations_for_node("fine_tune_job")[0].metadata["status"].value == "succeeded"


@pytest.mark.slow
def test_stuck_job_alerts_then_cancel_clears_it(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    write_triplet_manifest(TARGET, "v1", n_train=40, n_valid=12)
    assert materialize(url).success
    store = StoreResource(url=url).get()
    [row] = registry.list_live(store)
    backends = {"sentence_transformers": SentenceTransformersBackend()}
    later = datetime.now(UTC) + timedelta(hours=3)
    tick = evaluate_tick(store, backends, None, targets={TARGET}, max_queued_s=600, max_silent_s=600, now=later)
    [alert] = tick.asset_events
    assert isinstance(alert, dg.AssetCheckEvaluation) and not alert.passed
    assert alert.check_name == "fine_tune_job_not_stuck" and alert.partition == TARGET
    assert row["job_id"] in alert.description and "cancel job" in alert.description
    assert any("fine_tune_job_not_stuck" not in e and row["job_id"] in e for e in tick.errors)
    assert registry.get_job(store, row["job_id"])["details"]["stuck"]["alerts"] == 1
    assert tick.cursor["stuck"] == [row["job_id"]]

    # the Dagster job cancels it through the same backend resource
    result = FINETUNE_JOBS[0].execute_in_process(
        run_config={"ops": {"cancel_fine_tune_job_op": {"config": {"job_id": row["job_id"]}}}},
        resources=resources(url),
    )
    assert result.output_for_node("cancel_fine_tune_job_op") == "cancelled"
    assert registry.get_job(store, row["job_id"])["status"] == "cancelled"
    cleared = evaluate_tick(store, backends, tick.cursor, targets={TARGET}, max_queued_s=600, max_silent_s=600)
    kinds = sorted(type(e).__name__ for e in cleared.asset_events)
    assert kinds == ["AssetCheckEvaluation", "AssetMaterialization"]
    check = next(e for e in cleared.asset_events if isinstance(e, dg.AssetCheckEvaluation))
    assert check.passed and cleared.cursor["stuck"] == []
    mat = next(e for e in cleared.asset_events if isinstance(e, dg.AssetMaterialization))
    assert mat.metadata["status"].value == "cancelled"
    # a cancelled version is not re-attached: the next materialization starts a new attempt
    assert cancel_job(store, backends["sentence_transformers"], row["job_id"]).state.value == "cancelled"
    assert json.loads(json.dumps(cleared.cursor)) == cleared.cursor


def test_reattach_refreshes_a_live_row_and_resubmits_a_dead_job(tmp_path):
    from pipeline.backends import local_jobs
    from pipeline.backends.sentence_transformers_backend import JOB_PREFIX, local_job_id
    from pipeline.core.artifacts import jobs_dir
    from pipeline.core.targets import get_target
    from pipeline.finetune.lifecycle import build_request, submit_or_attach
    from pipeline_tests.finetune_helpers import wait_terminal

    manifest = write_triplet_manifest(TARGET, "v1", n_train=8, n_valid=4)
    request = build_request(get_target(TARGET), manifest)
    backend = SentenceTransformersBackend()
    store = StoreResource(url=f"sqlite:///{tmp_path / 's.db'}").get()
    # the job's worker dies mid-training; the registry still says running (no poll since)
    job_dir = jobs_dir(TARGET) / local_job_id(JOB_PREFIX, request)
    local_jobs.launch(job_dir, "pipeline_tests.finetune_helpers:dying_train", request)
    assert wait_terminal(lambda: local_jobs.read_status(job_dir))["error"]["code"] == "worker_died"
    registry.record_job(store, JobStatus(job_id=job_dir.name, state="running", backend="sentence_transformers"),
                        request)
    row, attached = submit_or_attach(store, backend, request)
    try:
        assert not attached and row["job_id"] == job_dir.name
        assert row["status"] in ("queued", "running") and row["details"]["backend_details"]["attempt"] == 2
    finally:
        backend.cancel(job_dir.name)
    # a job the backend cannot find keeps its last known row (the backend's outage is not ours to fix here)
    registry.record_job(store, JobStatus(job_id="local-st-gone", state="running", backend="sentence_transformers"),
                        FineTuneRequest(**{**request.as_dict(), "dataset_version": "v2"}))
    row, attached = submit_or_attach(store, backend, FineTuneRequest(**{**request.as_dict(), "dataset_version": "v2"}))
    assert attached and row["job_id"] == "local-st-gone"
