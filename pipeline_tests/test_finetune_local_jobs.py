"""The local job runner: detached workers, their status files, failure, cancel, death and resume."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from pipeline.backends import local_jobs
from pipeline.backends.base import FineTuneRequest, JobState
from pipeline_tests.finetune_helpers import wait_terminal

H = "pipeline_tests.finetune_helpers"


def _request(tmp_path: Path, lines: int = 3) -> FineTuneRequest:
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps({"i": i}) + "\n" for i in range(lines)), encoding="utf-8")
    return FineTuneRequest(target="t", dataset_version="v1", method="embedding", base_model="m",
                           train_file=str(train), validation_file=None)


def test_succeeded_job_records_result_and_progress(tmp_path):
    job_dir = tmp_path / "jobs" / "local-abc"
    job_id = local_jobs.launch(job_dir, f"{H}:count_train", _request(tmp_path, lines=4))
    assert job_id == "local-abc"
    assert json.loads((job_dir / "request.json").read_text())["request"]["train_file"].endswith("train.jsonl")
    status = wait_terminal(lambda: local_jobs.read_status(job_dir))
    assert status["state"] == "succeeded", (job_dir / "log.txt").read_text()
    assert status["result"]["metrics"] == {"lines": 4}
    assert json.loads(Path(status["result"]["model_path"]).read_text()) == {"lines": 4}
    assert status["progress"]["step"] == 4
    assert [e["kind"] for e in status["events"]][-1] == "succeeded"
    job = local_jobs.to_job_status(status, "sentence_transformers")
    assert job.state is JobState.SUCCEEDED and job.metrics["lines"] == 4 and job.result_model


def test_failed_job_keeps_exception_type_and_message(tmp_path):
    job_dir = tmp_path / "local-fail"
    local_jobs.launch(job_dir, f"{H}:failing_train", _request(tmp_path))
    status = wait_terminal(lambda: local_jobs.read_status(job_dir))
    assert status["state"] == "failed"
    assert status["error"]["code"] == "ValueError"
    assert "has no usable rows" in status["error"]["message"]
    assert "ValueError" in (job_dir / "log.txt").read_text()  # the traceback is in the log


def test_unknown_trainer_fails_in_the_caller(tmp_path):
    with pytest.raises(KeyError, match="unknown trainer"):
        local_jobs.launch(tmp_path / "j", "no_such_trainer", _request(tmp_path))


def test_cancel_stops_the_process_group(tmp_path):
    job_dir = tmp_path / "local-long"
    local_jobs.launch(job_dir, f"{H}:sleepy_train", _request(tmp_path))
    wait_running = time.monotonic() + 30
    while local_jobs.read_status(job_dir).get("progress", {}).get("step") is None and time.monotonic() < wait_running:
        time.sleep(0.05)
    pid = local_jobs.read_status(job_dir)["pid"]
    status = local_jobs.cancel(job_dir)
    assert status["state"] == "cancelled"
    assert not local_jobs.worker_alive(job_dir)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    # cancelling again changes nothing; a cancelled job stays cancelled
    assert local_jobs.cancel(job_dir)["state"] == "cancelled"


def test_worker_died_then_relaunch_resumes_in_the_same_folder(tmp_path):
    job_dir = tmp_path / "local-dies"
    request = _request(tmp_path)
    local_jobs.launch(job_dir, f"{H}:dying_train", request)
    status = wait_terminal(lambda: local_jobs.read_status(job_dir))
    assert status["state"] == "failed" and status["error"]["code"] == "worker_died"
    assert "log.txt" in status["error"]["message"]
    # the file itself still says running: only the reader knows the worker is gone
    assert json.loads((job_dir / "status.json").read_text())["state"] == "running"
    # a new attempt in the same folder (here with a trainer that works)
    local_jobs.launch(job_dir, f"{H}:count_train", request)
    status = wait_terminal(lambda: local_jobs.read_status(job_dir))
    assert status["state"] == "succeeded" and status["attempt"] == 2


def test_launch_of_a_live_or_succeeded_job_is_a_no_op(tmp_path):
    job_dir = tmp_path / "local-once"
    request = _request(tmp_path)
    local_jobs.launch(job_dir, f"{H}:count_train", request)
    first = wait_terminal(lambda: local_jobs.read_status(job_dir))
    local_jobs.launch(job_dir, f"{H}:count_train", request)
    again = local_jobs.read_status(job_dir)
    assert again["state"] == "succeeded" and again["attempt"] == first["attempt"] == 1


def test_one_training_slot_queues_the_second_job_until_the_first_ends(tmp_path, monkeypatch):
    monkeypatch.setenv("FLYWHEEL_LOCAL_JOB_SLOTS", "1")
    first, second = tmp_path / "local-first", tmp_path / "local-second"
    local_jobs.launch(first, f"{H}:sleepy_train", _request(tmp_path))
    deadline = time.monotonic() + 30
    while local_jobs.read_status(first)["state"] != "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    local_jobs.launch(second, f"{H}:count_train", _request(tmp_path))
    while not any(e["kind"] == "waiting" for e in local_jobs.read_status(second)["events"]):
        assert time.monotonic() < deadline, local_jobs.read_status(second)
        time.sleep(0.05)
    assert local_jobs.read_status(second)["state"] == "queued"  # alive, waiting: not a dead worker
    local_jobs.cancel(first)
    assert wait_terminal(lambda: local_jobs.read_status(second))["state"] == "succeeded"


def test_a_bad_slot_setting_fails_the_job_with_the_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("FLYWHEEL_LOCAL_JOB_SLOTS", "two")
    job_dir = tmp_path / "local-bad-slots"
    local_jobs.launch(job_dir, f"{H}:count_train", _request(tmp_path))
    status = wait_terminal(lambda: local_jobs.read_status(job_dir))
    assert status["state"] == "failed" and "FLYWHEEL_LOCAL_JOB_SLOTS='two'" in status["error"]["message"]
