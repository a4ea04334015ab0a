"""OpenAIBackend with the real `openai` SDK against the loopback OpenAI server.

Every test drives the SDK over HTTP on 127.0.0.1: uploads are multipart, listings paginate, and the
SDK's own retry logic answers the injected 429s and 500s. Retry backoff is kept short by the fake's
`retry-after-ms` headers and by shrinking the SDK's backoff constants.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from pipeline.backends.base import FineTuneRequest, JobState
from pipeline.backends.openai.backend import OpenAIBackend
from pipeline.backends.openai.protocol import (
    FileProcessingError,
    JobNotSucceededError,
    OpenAIBackendError,
    is_our_job,
    job_status,
    merge_metrics,
    openai_hyperparameters,
    upload_name,
)
from pipeline.core.pricing import training_cost_usd
from pipeline_tests.fakes.openai_server import FakeOpenAIServer

MODEL = "gpt-4.1-mini-2025-04-14"
FILES = "POST /v1/files"
CREATE = "POST /v1/fine_tuning/jobs"


@pytest.fixture(autouse=True)
def _short_sdk_backoff(monkeypatch, tmp_path):
    import openai._base_client as base_client

    monkeypatch.setattr(base_client, "INITIAL_RETRY_DELAY", 0.01)
    monkeypatch.setattr(base_client, "MAX_RETRY_DELAY", 0.02)
    monkeypatch.setenv("FLYWHEEL_HOME", str(tmp_path / "home"))


@pytest.fixture
def server():
    with FakeOpenAIServer() as fake:
        yield fake


def make_backend(fake: FakeOpenAIServer, **overrides) -> OpenAIBackend:
    config = {
        "api_key": fake.api_key,
        "base_url": fake.base_url,
        "max_retries": 3,
        "timeout": 10.0,
        "file_poll_interval_s": 0.01,
        "file_processing_timeout_s": 5.0,
    }
    config.update(overrides)
    return OpenAIBackend(**config)


@pytest.fixture
def backend(server):
    return make_backend(server)


def chat_lines(n: int, offset: int = 0) -> list[str]:
    return [
        json.dumps(
            {
                "messages": [
                    {"role": "system", "content": "You review landing pages."},
                    {"role": "user", "content": f"Review page {i}: hero, pricing and footer."},
                    {
                        "role": "assistant",
                        "content": f"Page {i}: the pricing table hides the annual discount.",
                    },
                ]
            }
        )
        for i in range(offset, offset + n)
    ]


def dpo_lines(n: int) -> list[str]:
    return [
        json.dumps(
            {
                "input": {"messages": [{"role": "user", "content": f"Roast my startup idea #{i}"}]},
                "preferred_output": [
                    {"role": "assistant", "content": f"Idea {i} is Uber for umbrellas. Bold."}
                ],
                "non_preferred_output": [{"role": "assistant", "content": "That is a bad idea."}],
            }
        )
        for i in range(n)
    ]


def write_version(tmp_path: Path, version: str, lines: list[str], validation: list[str] | None = None):
    folder = tmp_path / "data" / version
    folder.mkdir(parents=True, exist_ok=True)
    train = folder / "train.jsonl"
    train.write_text("\n".join(lines) + "\n", encoding="utf-8")
    valid = None
    if validation is not None:
        valid = folder / "validation.jsonl"
        valid.write_text("\n".join(validation) + "\n", encoding="utf-8")
    return train, valid


def sft_request(tmp_path, version="v001", n=20, validation=5, lines=None, **kw) -> FineTuneRequest:
    """A ux_review SFT request on `n` chat examples (or these `lines`) and `validation` held-out ones."""
    train, valid = write_version(
        tmp_path, version, lines or chat_lines(n), chat_lines(validation, offset=1000) if validation else None
    )
    fields = {
        "target": "ux_review",
        "dataset_version": version,
        "method": "sft",
        "base_model": MODEL,
        "train_file": str(train),
        "validation_file": str(valid) if valid else None,
        "hyperparameters": {"n_epochs": 3},
        "seed": 7,
    }
    fields.update(kw)
    return FineTuneRequest(**fields)


# ------------------------------------------------------------------ pure functions


def test_hyperparameters_default_to_auto_and_reject_what_openai_would():
    assert openai_hyperparameters("sft", {}) == {
        "n_epochs": "auto",
        "batch_size": "auto",
        "learning_rate_multiplier": "auto",
    }
    assert openai_hyperparameters("dpo", {"beta": 0.1, "n_epochs": 2}) == {
        "n_epochs": 2,
        "batch_size": "auto",
        "learning_rate_multiplier": "auto",
        "beta": 0.1,
    }
    with pytest.raises(ValueError, match="beta"):
        openai_hyperparameters("sft", {"beta": 0.1})
    with pytest.raises(ValueError, match="positive integer"):
        openai_hyperparameters("sft", {"n_epochs": 2.5})
    with pytest.raises(ValueError, match="positive number"):
        openai_hyperparameters("sft", {"learning_rate_multiplier": -1})
    with pytest.raises(ValueError, match="sentence_transformers"):
        openai_hyperparameters("embedding", {})


def test_merge_metrics_takes_the_latest_value_of_each_metric():
    events = [
        {"type": "metrics", "data": {"step": 1, "train_loss": 2.0, "train_mean_token_accuracy": 0.5}},
        {"type": "message", "data": {}},
        {"type": "metrics", "data": {"step": 4, "train_loss": 1.0, "valid_loss": 1.2}},
    ]
    checkpoints = [
        {
            "step_number": 4,
            "metrics": {
                "step": 4.0,
                "full_valid_loss": 1.1,
                "full_valid_mean_token_accuracy": 0.8,
                "train_loss": None,
            },
        }
    ]
    merged = merge_metrics(events, checkpoints)
    assert merged == {
        "step": 4,
        "train_loss": 1.0,
        "train_mean_token_accuracy": 0.5,
        "valid_loss": 1.2,
        "full_valid_loss": 1.1,
        "full_valid_mean_token_accuracy": 0.8,
        "token_accuracy": 0.8,
    }
    assert merge_metrics([], []) == {}


def test_is_our_job_uses_metadata_else_the_training_file():
    meta = {"flywheel_target": "t", "flywheel_dataset_version": "v1"}
    assert is_our_job({"metadata": meta, "training_file": "f"}, "t", "v1", set())
    assert not is_our_job({"metadata": meta, "training_file": "f"}, "t", "v2", {"f"})
    assert is_our_job({"metadata": None, "training_file": "f"}, "t", "v2", {"f"})
    assert not is_our_job({"metadata": None, "training_file": "g"}, "t", "v2", {"f"})


def test_importing_the_backend_does_not_import_the_sdk():
    code = "import sys, pipeline.backends.openai.backend; print('openai' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------------ submission


def test_sft_submission_uploads_both_files_and_sends_the_job_body(server, backend, tmp_path):
    request = sft_request(tmp_path)
    status = backend.submit(request)

    assert status.state == JobState.VALIDATING and not status.terminal
    assert status.details["reattached"] is False and status.details["uploaded"] == 2
    uploads = server.bodies(FILES)
    assert [u["purpose"] for u in uploads] == ["fine-tune", "fine-tune"]
    names = [u["file"][0] for u in uploads]
    assert names[0].startswith("flywheel__ux_review__v001__train__") and "__validation__" in names[1]
    assert uploads[0]["file"][1] == Path(request.train_file).read_bytes()

    (body,) = server.bodies(CREATE)
    files = {f["filename"]: f["id"] for f in server.files.values()}
    assert body == {
        "model": MODEL,
        "training_file": files[names[0]],
        "validation_file": files[names[1]],
        "method": {
            "type": "supervised",
            "supervised": {
                "hyperparameters": {"n_epochs": 3, "batch_size": "auto", "learning_rate_multiplier": "auto"}
            },
        },
        "suffix": "ux-review",
        "seed": 7,
        "metadata": {
            "flywheel_target": "ux_review",
            "flywheel_dataset_version": "v001",
            "flywheel_method": "sft",
            "flywheel_train_sha256": body["metadata"]["flywheel_train_sha256"],
        },
    }
    assert len(body["metadata"]["flywheel_train_sha256"]) == 64
    # the file was polled until processed before the job was created
    assert server.count("GET /v1/files/{id}") >= 2
    assert all(r.headers["authorization"] == f"Bearer {server.api_key}" for r in server.requests)


def test_dpo_submission_sends_beta_in_the_dpo_method(server, backend, tmp_path):
    train, _ = write_version(tmp_path, "v7", dpo_lines(12))
    request = FineTuneRequest(
        target="roast_voice",
        dataset_version="v7",
        method="dpo",
        base_model=MODEL,
        train_file=str(train),
        validation_file=None,
        hyperparameters={"beta": 0.25},
        suffix="roast",
    )
    status = backend.submit(request)
    (body,) = server.bodies(CREATE)
    assert body["method"] == {
        "type": "dpo",
        "dpo": {
            "hyperparameters": {
                "n_epochs": "auto",
                "batch_size": "auto",
                "learning_rate_multiplier": "auto",
                "beta": 0.25,
            }
        },
    }
    assert body["suffix"] == "roast" and "validation_file" not in body
    server.advance(status.job_id, "succeeded")
    done = backend.status(status.job_id)
    assert done.state == JobState.SUCCEEDED and done.details["method"] == "dpo"
    assert done.details["hyperparameters"]["beta"] == 0.25
    assert done.cost_usd == training_cost_usd("openai", MODEL, "dpo", done.trained_tokens) > 0


# ------------------------------------------------------------------ lifecycle


def test_full_lifecycle_events_checkpoints_metrics_tokens_and_cost(server, backend, tmp_path):
    # 40 examples, batch 1, 3 epochs: 120 steps, so events span several pages of 100
    job_id = backend.submit(
        sft_request(tmp_path, n=40, hyperparameters={"n_epochs": 3, "batch_size": 1})
    ).job_id

    server.advance(job_id, "queued")
    assert backend.status(job_id).state == JobState.QUEUED
    server.advance(job_id, "running")
    server.train(job_id, 5)
    running = backend.status(job_id)
    assert running.state == JobState.RUNNING and running.metrics["step"] == 5
    assert running.metrics["total_steps"] == 120 and running.metrics["train_loss"] > 0
    assert running.trained_tokens is None and running.cost_usd is None and running.result_model is None

    server.advance(job_id, "succeeded")
    done = backend.status(job_id)
    job = server.jobs[job_id]
    assert done.state == JobState.SUCCEEDED and done.terminal
    assert done.result_model == job.obj["fine_tuned_model"] and done.result_model.startswith(f"ft:{MODEL}:")
    assert done.trained_tokens == job.obj["trained_tokens"] > 0
    assert done.cost_usd == round(done.trained_tokens * 5.00 / 1_000_000, 4)
    # every event, across pages, oldest first
    assert len(done.events) == len(job.events) > 100
    assert [e["id"] for e in done.events] == [e["id"] for e in job.events]
    assert done.events[-1]["message"] == "The job has successfully completed"
    assert server.count("GET /v1/fine_tuning/jobs/{id}/events") >= 2
    # one checkpoint per epoch, with validation metrics
    assert [c["step"] for c in done.checkpoints] == [40, 80, 120]
    assert done.checkpoints[-1]["metrics"]["full_valid_loss"] > 0
    assert done.metrics["step"] == 120
    assert done.metrics["full_valid_loss"] == job.checkpoints[-1]["metrics"]["full_valid_loss"]
    assert done.metrics["train_loss"] < running.metrics["train_loss"]
    assert done.metrics["token_accuracy"] == done.metrics["full_valid_mean_token_accuracy"]
    assert done.created_at and done.finished_at and done.details["loss_curve"][-1]["step"] == 120

    model = backend.result(job_id)
    assert model.model == done.result_model and model.backend == "openai" and model.metrics["step"] == 120


def test_step_per_poll_policy_walks_the_states(tmp_path):
    with FakeOpenAIServer(auto_advance=True) as fake:
        backend = make_backend(fake)
        job_id = backend.submit(sft_request(tmp_path)).job_id
        seen = [backend.status(job_id).state for _ in range(4)]
    assert seen == [JobState.QUEUED, JobState.RUNNING, JobState.SUCCEEDED, JobState.SUCCEEDED]


def test_failed_job_surfaces_code_message_and_param(server, backend, tmp_path):
    job_id = backend.submit(sft_request(tmp_path)).job_id
    server.advance(job_id, "running")
    server.fail(job_id, code="quota_exceeded", message="Training would exceed your quota.", param=None)
    status = backend.status(job_id)
    assert status.state == JobState.FAILED and status.terminal
    assert (status.error.code, status.error.message, status.error.param) == (
        "quota_exceeded",
        "Training would exceed your quota.",
        None,
    )
    with pytest.raises(JobNotSucceededError, match="quota_exceeded"):
        backend.result(job_id)


def test_examples_in_the_wrong_format_fail_the_job_at_validation(server, backend, tmp_path):
    lines = chat_lines(12)
    lines[3] = json.dumps({"messages": [{"role": "user", "content": "no answer here"}]})
    request = sft_request(tmp_path, "v2", validation=0, lines=lines)
    job_id = backend.submit(request).job_id
    server.advance(job_id, "queued")
    status = backend.status(job_id)
    assert status.state == JobState.FAILED
    assert status.error.code == "invalid_training_file" and status.error.param == "training_file"
    assert "Example 4" in status.error.message


def test_a_file_that_fails_processing_surfaces_its_error(server, backend, tmp_path):
    lines = chat_lines(12)
    lines[5] = '{"messages": [oops'
    request = sft_request(tmp_path, "v3", validation=0, lines=lines)
    with pytest.raises(FileProcessingError, match="Line 6"):
        backend.submit(request)
    assert server.count(CREATE) == 0


def test_too_few_examples_is_refused_with_the_reason(server, backend, tmp_path):
    request = sft_request(tmp_path, "v4", validation=0, lines=chat_lines(5))
    with pytest.raises(OpenAIBackendError, match="invalid_n_examples.*at least 10"):
        backend.submit(request)
    assert server.jobs == {}


def test_a_wrong_key_is_a_clear_error_that_does_not_show_the_key(server, tmp_path):
    backend = make_backend(server, api_key="sk-wrong-secret-value")
    with pytest.raises(OpenAIBackendError, match="HTTP 401") as info:
        backend.submit(sft_request(tmp_path))
    assert "sk-wrong-secret-value" not in str(info.value)


def test_cancel_stops_a_live_job_and_leaves_an_ended_one(server, backend, tmp_path):
    job_id = backend.submit(sft_request(tmp_path)).job_id
    server.advance(job_id, "running")
    status = backend.cancel(job_id)
    assert status.state == JobState.CANCELLED and status.details["cancel"] == "sent"
    again = backend.cancel(job_id)
    assert again.state == JobState.CANCELLED and "already ended" in again.details["cancel"]
    assert server.count("POST /v1/fine_tuning/jobs/{id}/cancel") == 1
    with pytest.raises(JobNotSucceededError, match="cancelled"):
        backend.result(job_id)


# ------------------------------------------------------------------ retries


def test_retries_hold_under_429_and_500(server, backend, tmp_path):
    server.fail_next("GET /v1/fine_tuning/jobs", 1, status=429)
    server.fail_next("GET /v1/files", 1, status=500)
    server.fail_next(FILES, 2, status=429)
    server.fail_next("GET /v1/files/{id}", 1, status=500)
    server.fail_next(CREATE, 1, status=429)
    server.fail_next(CREATE, 2, status=500)
    status = backend.submit(sft_request(tmp_path, validation=0))

    assert server.count(FILES, status=429) == 2 and server.count(CREATE, status=500) == 2
    assert server.count(FILES, status=200) == 1 and len(server.files) == 1
    assert server.count(CREATE, status=200) == 1 and list(server.jobs) == [status.job_id]

    server.fail_next("GET /v1/fine_tuning/jobs/{id}", 2, status=500)
    server.fail_next("GET /v1/fine_tuning/jobs/{id}/events", 1, status=429)
    server.advance(status.job_id, "succeeded")
    assert backend.status(status.job_id).state == JobState.SUCCEEDED


def test_a_lost_answer_to_job_creation_does_not_create_a_second_job(server, backend, tmp_path):
    server.fail_next(CREATE, 1, status=500, after_processing=True)  # created, but the client sees a 500
    status = backend.submit(sft_request(tmp_path))
    assert server.count(CREATE) == 1 and list(server.jobs) == [status.job_id]


def test_a_lost_answer_to_an_upload_does_not_upload_twice(server, backend, tmp_path):
    server.fail_next(FILES, 1, status=502, after_processing=True)
    backend.submit(sft_request(tmp_path, validation=0))
    assert server.count(FILES) == 1 and len(server.files) == 1 and len(server.jobs) == 1


def test_retries_give_up_with_a_clear_error(server, backend, tmp_path):
    server.fail_next(CREATE, 10, status=500)
    with pytest.raises(OpenAIBackendError, match="after 4 attempts.*HTTP 500"):
        backend.submit(sft_request(tmp_path))
    assert server.jobs == {}


# ------------------------------------------------------------------ idempotence


def test_submitting_twice_makes_one_job_and_one_set_of_uploads(server, backend, tmp_path):
    request = sft_request(tmp_path)
    first = backend.submit(request)
    second = backend.submit(request)
    assert second.job_id == first.job_id and second.details["reattached"] is True
    assert server.count(FILES) == 2 and server.count(CREATE) == 1

    server.advance(first.job_id, "succeeded")
    third = make_backend(server).submit(request)  # a fresh resource, as in a new run
    assert third.job_id == first.job_id and third.state == JobState.SUCCEEDED
    assert server.count(FILES) == 2 and server.count(CREATE) == 1

    other = backend.submit(sft_request(tmp_path, version="v002"))
    assert other.job_id != first.job_id and len(server.jobs) == 2


def test_a_crash_between_upload_and_job_creation_reuses_the_uploads(server, backend, tmp_path, monkeypatch):
    request = sft_request(tmp_path)

    def crash(self, call, *, find, what):
        if what.startswith("create"):
            raise SystemExit("worker killed before the job was created")
        return original(self, call, find=find, what=what)

    original = OpenAIBackend._post_once
    monkeypatch.setattr(OpenAIBackend, "_post_once", crash)
    with pytest.raises(SystemExit):
        backend.submit(request)
    assert server.count(FILES) == 2 and server.jobs == {}
    monkeypatch.setattr(OpenAIBackend, "_post_once", original)

    status = backend.submit(request)
    again = backend.submit(request)
    assert status.details["uploaded"] == 0 and status.details["reused_files"] == 2
    assert again.job_id == status.job_id and len(server.jobs) == 1
    assert server.count(FILES) == 2 and server.count(CREATE) == 1


@pytest.mark.parametrize("ending", ["failed", "cancelled"])
def test_a_failed_or_cancelled_job_allows_a_new_one(server, backend, tmp_path, ending):
    request = sft_request(tmp_path)
    first = backend.submit(request).job_id
    server.advance(first, ending)
    second = backend.submit(request)
    assert second.job_id != first and second.details["reattached"] is False
    assert second.details["uploaded"] == 0 and server.count(FILES) == 2  # the processed files are reused
    assert backend.submit(request).job_id == second.job_id


def test_idempotence_holds_on_a_provider_without_job_metadata(tmp_path):
    with FakeOpenAIServer(metadata_support=False) as fake:
        backend = make_backend(fake)
        request = sft_request(tmp_path)
        first = backend.submit(request)
        assert first.details["metadata"] == {}
        assert backend.submit(request).job_id == first.job_id
        other = backend.submit(sft_request(tmp_path, version="v002", n=21))
        assert other.job_id != first.job_id and len(fake.jobs) == 2


def test_upload_names_are_stable_per_version_and_content():
    assert (
        upload_name("t", "v 1/x", "train", "ab" * 32) == "flywheel__t__v-1-x__train__abababababababab.jsonl"
    )


# ------------------------------------------------------------------ as a Dagster resource


def test_the_resource_reads_its_key_from_the_environment(server, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", server.api_key)
    request = sft_request(tmp_path)

    @dg.asset
    def submitted(openai_backend: OpenAIBackend) -> dg.MaterializeResult:
        status = openai_backend.submit(request)
        return dg.MaterializeResult(metadata={"job_id": status.job_id})

    resource = OpenAIBackend(
        api_key=dg.EnvVar("OPENAI_API_KEY"),
        base_url=server.base_url,
        file_poll_interval_s=0.01,
        max_retries=1,
    )
    result = dg.materialize([submitted], resources={"openai_backend": resource})
    assert result.success
    (job_id,) = server.jobs
    materialization = result.asset_materializations_for_node("submitted")[0]
    assert materialization.metadata["job_id"].value == job_id


def test_job_status_maps_paused_and_models_without_a_price():
    job = {
        "id": "ftjob-1",
        "status": "paused",
        "model": "some-compatible-model",
        "method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2}}},
        "trained_tokens": None,
        "created_at": 1_700_000_000,
    }
    paused = job_status(job, [], [])
    assert paused.state == JobState.QUEUED and not paused.terminal
    assert paused.details["provider_status"] == "paused" and paused.details["hyperparameters"] == {
        "n_epochs": 2
    }
    assert paused.created_at == "2023-11-14T22:13:20+00:00"

    done = job_status(
        {**job, "status": "succeeded", "trained_tokens": 12_345, "fine_tuned_model": "ft:x"}, [], []
    )
    assert done.state == JobState.SUCCEEDED and done.result_model == "ft:x"
    assert done.cost_usd is None and "no price" in done.details["cost_note"]
    priced = job_status({**job, "model": MODEL, "status": "succeeded", "trained_tokens": 1_000_000}, [], [])
    assert priced.cost_usd == 5.0 and priced.details["cost_note"] is None
