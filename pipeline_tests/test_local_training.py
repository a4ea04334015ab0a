"""The in-step runner of local training: status as it goes, failures recorded then raised, resume, idempotence."""

from __future__ import annotations

import json

import pytest

from pipeline.backends import local_training
from pipeline.backends.base import FineTuneRequest, JobState
from pipeline_tests.finetune_helpers import count_train, failing_train, flaky_train


def _request(tmp_path, lines: int = 3) -> FineTuneRequest:
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps({"i": i}) + "\n" for i in range(lines)), encoding="utf-8")
    return FineTuneRequest(target="t", dataset_version="v1", method="embedding", base_model="m",
                           train_file=str(train), validation_file=None)


def test_a_run_records_progress_and_its_result(tmp_path):
    seen = []
    status = local_training.run_local_training(tmp_path / "job", "count", count_train, _request(tmp_path, 4), "st",
                                               on_progress=seen.append)
    assert status.state is JobState.SUCCEEDED and status.metrics == {"lines": 4}
    assert status.details["in_step"] and status.details["attempt"] == 1
    assert status.details["resources"]["peak_rss_mb"] > 0 and status.cost_usd == 0.0
    # every report reached the caller (the step logs them), in order, ending on the last step
    assert [s.state for s in seen[:2]] == [JobState.RUNNING, JobState.RUNNING]
    assert [s.metrics.get("step") for s in seen[1:]] == [1, 2, 3, 4]
    on_disk = local_training.read_status(tmp_path / "job")
    assert on_disk["state"] == "succeeded" and json.loads((tmp_path / "job" / "request.json").read_text())["trainer"] == "count"


def test_a_failure_is_recorded_then_raised_for_the_retry_policy(tmp_path):
    seen = []
    with pytest.raises(ValueError, match="no usable rows"):
        local_training.run_local_training(tmp_path / "job", "failing", failing_train, _request(tmp_path), "st",
                                          on_progress=seen.append)
    status = local_training.to_job_status(local_training.read_status(tmp_path / "job"), "st")
    assert status.state is JobState.FAILED and status.error.code == "ValueError"
    assert "no usable rows" in status.error.message and seen[-1].state is JobState.FAILED


def test_the_next_attempt_resumes_from_the_checkpoint_in_the_same_folder(tmp_path):
    job = tmp_path / "job"
    with pytest.raises(RuntimeError, match="out of memory"):
        local_training.run_local_training(job, "flaky", flaky_train, _request(tmp_path), "st")
    first = local_training.read_status(job)
    assert first["state"] == "failed" and first["checkpoints"][0]["step"] == 2
    status = local_training.run_local_training(job, "flaky", flaky_train, _request(tmp_path), "st")
    assert status.state is JobState.SUCCEEDED and status.metrics == {"resumed_from": 2}
    assert status.details["attempt"] == 2


def test_an_interrupt_is_recorded_as_cancelled(tmp_path):
    def interrupted(request, job_dir, report):
        report({"step": 1})
        raise KeyboardInterrupt  # what Dagster raises in a step whose run is terminated

    with pytest.raises(KeyboardInterrupt):
        local_training.run_local_training(tmp_path / "job", "x", interrupted, _request(tmp_path), "st")
    status = local_training.read_status(tmp_path / "job")
    assert status["state"] == "cancelled" and status["error"]["code"] == "interrupted"


def test_a_succeeded_job_is_not_trained_again(tmp_path):
    job = tmp_path / "job"
    local_training.run_local_training(job, "count", count_train, _request(tmp_path), "st")
    again = local_training.run_local_training(job, "failing", failing_train, _request(tmp_path), "st")
    assert again.state is JobState.SUCCEEDED and again.details["attempt"] == 1


def test_a_trainer_without_a_model_path_fails_with_the_reason(tmp_path):
    with pytest.raises(TypeError, match="not a dict with 'model_path'"):
        local_training.run_local_training(tmp_path / "job", "bad", lambda r, d, rep: {"x": 1}, _request(tmp_path), "st")
    assert local_training.read_status(tmp_path / "job")["error"]["code"] == "TypeError"


def test_nothing_in_the_package_starts_a_process_of_its_own():
    """Training is Dagster's to place: no Popen, no fork, no detached session anywhere in pipeline/."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "pipeline"
    offenders = [
        str(path.relative_to(root)) for path in root.rglob("*.py")
        if any(word in path.read_text(encoding="utf-8")
               for word in ("subprocess.Popen", "start_new_session", "os.fork(", "os.setsid", "multiprocessing.Process("))
    ]
    assert offenders == []
