"""`fine_tune_job` through Dagster: gates across runs, training in the step, hosted submission, the sensor, cancel."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from pipeline.backends.base import FineTuneBackend, FineTuneRequest, JobState, JobStatus, TrainedModel
from pipeline.backends.huggingface.backend import HuggingFaceBackend
from pipeline.backends.openai.backend import OpenAIBackend
from pipeline.backends.resource import FineTuneBackends
from pipeline.backends.sentence_transformers.backend import SentenceTransformersBackend
from pipeline.core.resources import StoreResource
from pipeline.core.targets import get_target
from pipeline.defs.cancel_fine_tune_job import cancel_fine_tune_job
from pipeline.defs.fine_tune_job import fine_tune_job, fine_tune_job_not_stuck
from pipeline.defs.fine_tune_sensors import evaluate_tick, fine_tune_job_status_sensor
from pipeline.finetune import registry
from pipeline_tests.defs_helpers import add_target_partitions
from pipeline_tests.finetune_helpers import counting_backend_class, write_triplet_manifest
from pipeline_tests.gate_helpers import approve_anonymized, record_materialization

TARGET = "signal_relevance"


class FakeHosted(SentenceTransformersBackend):
    """A hosted backend double: accepts a job, reports it running, then succeeded (no provider involved)."""

    polls: int = 0

    @property
    def trains_locally(self) -> bool:
        return False

    def validate(self, request: FineTuneRequest) -> None:
        pass

    def submit(self, request: FineTuneRequest) -> JobStatus:
        return JobStatus(job_id=f"hosted-{request.dataset_version}", state=JobState.QUEUED, backend=self.name)

    def status(self, job_id: str) -> JobStatus:
        return JobStatus(job_id=job_id, state=JobState.SUCCEEDED, backend=self.name, result_model="ft:model-1",
                         metrics={"train_loss": 0.5})

    def cancel(self, job_id: str) -> JobStatus:
        return JobStatus(job_id=job_id, state=JobState.CANCELLED, backend=self.name)

    def result(self, job_id: str) -> TrainedModel:
        return TrainedModel(job_id=job_id, model="ft:model-1", backend=self.name)


def resources(store_url: str, st: FineTuneBackend | None = None) -> dict:
    return {
        "store": StoreResource(url=store_url),
        "backends": FineTuneBackends(openai=OpenAIBackend(api_key=""), huggingface=HuggingFaceBackend(),
                                     sentence_transformers=st or SentenceTransformersBackend()),
    }


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def approve_version(instance, version: str, *, training_checks=True, anonymized_checks=True, **kw) -> dict:
    """A training-file version on disk and, in Dagster's records, its gates (and its anonymized upstream's)."""
    manifest = write_triplet_manifest(TARGET, version, **kw)
    upstream = approve_anonymized(instance, TARGET, checks_pass=anonymized_checks)
    record_materialization(instance, "training_file", TARGET, version,
                           {"dataset_version": version, "anonymized_storage_id": dg.MetadataValue.int(upstream)},
                           checks_pass=training_checks)
    return manifest


def materialize(instance, store_url: str, **kw) -> dg.ExecuteInProcessResult:
    add_target_partitions(instance, TARGET)
    return dg.materialize([fine_tune_job], partition_key=TARGET, resources=resources(store_url, **kw),
                          raise_on_error=False, instance=instance)


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    return " ".join(str(e.event_specific_data.error) for e in result.all_events if e.is_step_failure)


def test_without_a_training_file_the_step_says_what_to_materialize(instance, tmp_path):
    result = materialize(instance, f"sqlite:///{tmp_path / 's.db'}")
    assert not result.success
    assert "training_file has no materialization for 'signal_relevance'" in failure_text(result)


def test_a_version_that_failed_a_gate_is_never_trained(instance, tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    approve_version(instance, "v1", training_checks={"training_file_tokens_and_size": False})
    result = materialize(instance, url)
    text = failure_text(result)
    assert not result.success and "blocking check training_file_tokens_and_size failed" in text
    assert "version 'v1'" in text and "(run " in text and "re-materialize training_file" in text
    assert registry.list_jobs(StoreResource(url=url).get()) == []  # nothing submitted, nothing trained
    # the step was not retried: a refused gate is not a flaky failure
    assert sum(1 for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY") == 0


def test_an_upstream_anonymized_failure_refuses_the_training_file_built_on_it(instance, tmp_path):
    approve_version(instance, "v1", anonymized_checks={"residual_pii_zero": False})
    text = failure_text(materialize(instance, f"sqlite:///{tmp_path / 's.db'}"))
    assert "blocking check residual_pii_zero failed on anonymized_dataset" in text


def test_a_check_that_never_ran_counts_as_not_passed(instance, tmp_path):
    write_triplet_manifest(TARGET, "v1")
    instance.report_runless_asset_event(dg.AssetMaterialization(
        asset_key="training_file", partition=TARGET, tags={"dagster/data_version": "v1"}))
    text = failure_text(materialize(instance, f"sqlite:///{tmp_path / 's.db'}"))
    assert "blocking check training_file_format was never evaluated" in text and "a run skipped it" in text


def test_a_backend_refusal_fails_with_what_to_fix(instance, tmp_path):
    import os

    manifest = approve_version(instance, "v1", n_train=4, n_valid=2)
    os.remove(manifest["files"]["embedding_triplets"]["train"])
    text = failure_text(materialize(instance, f"sqlite:///{tmp_path / 's.db'}"))
    assert "FileNotFoundError" in text and "materialize training_file" in text and "check the training file" in text


def test_the_graph_runs_training_in_a_pooled_retried_step():
    ops = {node.name: node.definition for node in fine_tune_job.node_def.nodes}
    assert set(ops) == {"fine_tune_request", "train_locally", "submit_hosted", "record_fine_tune_job"}
    assert ops["train_locally"].pool == "local_training" and ops["submit_hosted"].pool == "hosted_submission"
    assert ops["train_locally"].retry_policy.max_retries == 2
    spec = fine_tune_job.specs_by_key[dg.AssetKey("fine_tune_job")]
    assert spec.group_name == "training" and spec.owners == ["team:ml-platform"]
    assert [d.asset_key.to_user_string() for d in spec.deps] == ["training_file"]


def test_local_training_runs_in_the_step_records_progress_and_reattaches(instance, tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    approve_version(instance, "v1", n_train=5, n_valid=2)
    result = materialize(instance, url, st=counting_backend_class()(trainer="count"))
    assert result.success
    [mat] = result.asset_materializations_for_node("fine_tune_job")
    meta = mat.metadata
    assert meta["status"].value == "succeeded" and meta["metrics"].value == {"lines": 5}
    assert meta["attached_to_existing_job"].value is False and meta["training_peak_rss_mb"].value > 0
    logs = [e.message for e in instance.all_logs(result.run_id) if e.user_message]
    assert any("running" in m for m in logs) and any("succeeded" in m for m in logs)
    store = StoreResource(url=url).get()
    [row] = registry.list_jobs(store, TARGET)
    assert row["details"]["backend_details"]["run_id"] == result.run_id and registry.trained_in_step(row)
    assert registry.list_live(store) == [] and registry.list_ended_since(store, None) == []  # not the sensor's
    again = materialize(instance, url, st=counting_backend_class()(trainer="failing"))
    assert again.success  # re-attached: the failing trainer never ran
    assert again.asset_materializations_for_node("fine_tune_job")[0].metadata["attached_to_existing_job"].value


def test_a_failed_attempt_is_retried_and_resumes_from_its_checkpoint(instance, tmp_path):
    approve_version(instance, "v1", n_train=3, n_valid=1)
    result = materialize(instance, f"sqlite:///{tmp_path / 's.db'}", st=counting_backend_class()(trainer="flaky"))
    assert result.success
    assert sum(1 for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY") == 1
    meta = result.asset_materializations_for_node("fine_tune_job")[0].metadata
    assert meta["metrics"].value == {"resumed_from": 2}


def test_a_deterministic_training_error_is_not_retried(instance, tmp_path):
    approve_version(instance, "v1", n_train=3, n_valid=1)
    result = materialize(instance, f"sqlite:///{tmp_path / 's.db'}", st=counting_backend_class()(trainer="failing"))
    assert not result.success and "training cannot start: ValueError" in failure_text(result)
    assert sum(1 for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY") == 0


def test_hosted_submission_returns_then_the_sensor_reports_the_end_once(instance, tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    approve_version(instance, "v1", n_train=3, n_valid=1)
    hosted = FakeHosted()
    result = materialize(instance, url, st=hosted)
    assert result.success
    steps = {e.step_key: e.event_type_value for e in result.all_events if e.event_type_value in ("STEP_SUCCESS", "STEP_SKIPPED")}
    assert steps["fine_tune_job.train_locally"] == "STEP_SKIPPED" and steps["fine_tune_job.submit_hosted"] == "STEP_SUCCESS"
    assert result.asset_materializations_for_node("fine_tune_job")[0].metadata["status"].value == "queued"

    with dg.build_sensor_context(instance=instance, resources=resources(url, st=hosted)) as ctx:
        tick = fine_tune_job_status_sensor(ctx)
    [event] = tick.asset_events
    assert isinstance(event, dg.AssetMaterialization) and event.partition == TARGET
    assert event.metadata["status"].value == "succeeded" and event.metadata["result_model"].value == "ft:model-1"
    with dg.build_sensor_context(instance=instance, cursor=tick.cursor, resources=resources(url, st=hosted)) as ctx:
        assert not fine_tune_job_status_sensor(ctx).asset_events  # reported once


def test_a_local_job_is_cancelled_by_terminating_its_run(instance, tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    store = StoreResource(url=url).get()
    request = FineTuneRequest(target=TARGET, dataset_version="v1", method="embedding", base_model="m",
                              train_file="t", validation_file=None)
    registry.record_job(store, JobStatus(job_id="local-st-x", state=JobState.RUNNING, backend="sentence_transformers",
                                         details={"in_step": True, "run_id": "no-such-run"}), request)
    result = cancel_fine_tune_job.execute_in_process(
        run_config={"ops": {"cancel_fine_tune_job_op": {"config": {"job_id": "local-st-x"}}}},
        resources=resources(url), instance=instance,
    )
    # its run is gone (not running): the row is closed as cancelled, with why
    assert result.output_for_node("cancel_fine_tune_job_op") == "cancelled"
    row = registry.get_job(store, "local-st-x")
    assert row["status"] == "cancelled" and "was not running" in row["details"]["events"][-1]["message"]


def test_cancel_job_of_an_unknown_id_asks_for_the_backend(instance, tmp_path):
    result = cancel_fine_tune_job.execute_in_process(
        run_config={"ops": {"cancel_fine_tune_job_op": {"config": {"job_id": "ftjob-nope"}}}},
        resources=resources(f"sqlite:///{tmp_path / 's.db'}"), raise_on_error=False, instance=instance,
    )
    assert not result.success
    assert "not in the model registry; set config 'backend'" in failure_text(result)


def test_a_silent_hosted_job_alerts_then_clears_when_it_ends(tmp_path, instance):
    """Stuck, then cleared: each is a run that judges fine_tune_job_not_stuck alone, twice on one partition.

    (Two runless reports for one check and partition fail on Dagster's SQLite storage: the clearing tick
    would fail. In runs, the same partition is judged as often as it changes.)
    """
    from pipeline.definitions import defs
    from pipeline.defs.fine_tune_sensors import stuck_check_request

    url = f"sqlite:///{tmp_path / 's.db'}"
    store = StoreResource(url=url).get()
    request = FineTuneRequest(target=TARGET, dataset_version="v1", method="embedding", base_model="m",
                              train_file="t", validation_file=None)
    registry.record_job(store, JobStatus(job_id="hosted-v1", state=JobState.RUNNING, backend="sentence_transformers"),
                        request)
    add_target_partitions(instance, TARGET)

    class StillRunning(FakeHosted):
        def status(self, job_id: str) -> JobStatus:
            return JobStatus(job_id=job_id, state=JobState.RUNNING, backend=self.name)

    def judge(state: str, cursor) -> dg.AssetCheckEvaluation:
        # as the daemon launches the sensor's request: the check alone, with the limits the sensor judged by
        run = stuck_check_request(TARGET, "hosted-v1", state, cursor, {"flywheel/max_queued_s": "600",
                                                                      "flywheel/max_silent_s": "0"})
        assert run.asset_selection == [] and run.asset_check_keys == [fine_tune_job_not_stuck.check_key]
        job = defs.resolve_job_def("record_fine_tune_job_run").get_subset(
            asset_selection=set(), asset_check_selection=set(run.asset_check_keys))
        result = job.execute_in_process(instance=instance, partition_key=run.partition_key, tags=run.tags,
                                        resources=resources(url))
        assert result.success and result.get_asset_materialization_events() == []
        [evaluation] = result.get_asset_check_evaluations()
        return evaluation

    later = datetime.now(UTC) + timedelta(hours=3)
    tick = evaluate_tick(store, {"sentence_transformers": StillRunning()}, None, targets={TARGET},
                         max_queued_s=600, max_silent_s=600, now=later)
    assert tick.asset_events == [] and tick.stuck_runs == [(TARGET, "hosted-v1", "stuck")]
    stuck = judge("stuck", json.dumps(tick.cursor))
    assert not stuck.passed and stuck.severity == dg.AssetCheckSeverity.ERROR and stuck.partition == TARGET
    assert "hosted-v1" in stuck.description
    cleared = evaluate_tick(store, {"sentence_transformers": FakeHosted()}, tick.cursor, targets={TARGET},
                            max_queued_s=600, max_silent_s=600)
    assert [type(e).__name__ for e in cleared.asset_events] == ["AssetMaterialization"]
    assert cleared.stuck_runs == [(TARGET, "hosted-v1", "cleared")] and cleared.cursor["stuck"] == []
    assert judge("cleared", json.dumps(cleared.cursor)).passed  # the second evaluation of the partition


@pytest.mark.slow
def test_sentence_transformers_trains_for_real_in_the_step(instance, tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    approve_version(instance, "v1", n_train=40, n_valid=12)
    result = materialize(instance, url)
    assert result.success
    meta = result.asset_materializations_for_node("fine_tune_job")[0].metadata
    assert meta["status"].value == "succeeded" and meta["model_path"].value.endswith("/model")
    assert 0 <= meta["metric_mrr@10"].value <= 1 and meta["metrics"].value["base_ndcg@10"] is not None
    row = registry.list_jobs(StoreResource(url=url).get(), TARGET)[0]
    batch = get_target(TARGET).hyperparameters["batch_size"]
    assert row["trained_tokens"] > 0 and row["metrics"]["steps"] == math.ceil(40 / batch) and row["cost_usd"] == 0.0


def test_the_shipped_kubernetes_tags_give_only_the_training_step_a_gpu():
    """FLYWHEEL_TRAINING_STEP_TAGS=deploy/k8s/training_step_tags.yaml puts the GPU request on train_locally alone."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    code = (
        "import json; from pipeline.defs.fine_tune_job import fine_tune_job; "
        "print(json.dumps({n.name: dict(n.definition.tags) for n in fine_tune_job.node_def.nodes}))"
    )
    env = {**os.environ, "FLYWHEEL_TRAINING_STEP_TAGS": str(root / "deploy/k8s/training_step_tags.yaml")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env, cwd=root)
    tags = json.loads(out.stdout.strip().splitlines()[-1])
    k8s = json.loads(tags["train_locally"]["dagster-k8s/config"])  # Dagster stores a dict tag as JSON text
    assert k8s["container_config"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert all("dagster-k8s/config" not in t for name, t in tags.items() if name != "train_locally")
