"""A loopback HTTP server that speaks OpenAI's files and fine-tuning endpoints, for tests.

The only fake the project allows: the real `openai` SDK talks to it over HTTP on 127.0.0.1, so the
client's serialisation, multipart upload, pagination and retry logic all run for real. Usage::

    with FakeOpenAIServer() as server:
        client = openai.OpenAI(api_key=server.api_key, base_url=server.base_url)
        ...
        server.advance(job_id, to="succeeded")   # the test drives the job's lifecycle
        server.fail_next("POST /v1/fine_tuning/jobs", 2, status=429)   # fault injection
        server.count("POST /v1/files")           # how many uploads arrived

What it serves, as the SDK calls it:

    POST /v1/files                          multipart: purpose, file
    GET  /v1/files                          purpose, order, limit, after
    GET  /v1/files/{id}
    POST /v1/fine_tuning/jobs               JSON body of `fine_tuning.jobs.create`
    GET  /v1/fine_tuning/jobs               limit, after, metadata[k]=v
    GET  /v1/fine_tuning/jobs/{id}
    POST /v1/fine_tuning/jobs/{id}/cancel
    GET  /v1/fine_tuning/jobs/{id}/events        limit, after (newest first)
    GET  /v1/fine_tuning/jobs/{id}/checkpoints   limit, after (newest first)

It validates what it receives as the real API does: the bearer key; the file purpose and `.jsonl`
name; each line parses as a JSON object (a file that does not turns `error` when processed, with
the line in `status_details`); at least 10 examples and a processed file of purpose `fine-tune`
when a job is created; known hyper-parameters with valid values; metadata limits; and the example
shape of the method (`messages` with an assistant turn for supervised, `input` /
`preferred_output` / `non_preferred_output` for dpo) while the job validates its files, failing the
job with `invalid_training_file` and the offending line, like the real service.

Jobs move `validating_files -> queued -> running -> succeeded | failed | cancelled` only when the
test says so (`advance`, `train`, `fail`, or the `auto_advance` step-per-poll policy), producing the
events, metric events, checkpoints with metrics, `trained_tokens` (o200k tokens of the training file
x epochs) and `fine_tuned_model` the real service produces.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import math
import random
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pipeline_tests.fakes.loopback import LoopbackServer

STATES = ["validating_files", "queued", "running", "succeeded"]
TERMINAL = {"succeeded", "failed", "cancelled"}
FILE_PURPOSES = {"assistants", "batch", "fine-tune", "vision", "user_data", "evals"}
DEFAULT_MODELS = {
    "gpt-4o-mini-2024-07-18",
    "gpt-4o-2024-08-06",
    "gpt-4.1-2025-04-14",
    "gpt-4.1-mini-2025-04-14",
    "gpt-4.1-nano-2025-04-14",
    "gpt-3.5-turbo-0125",
}
MIN_EXAMPLES = 10
#: the epochs "auto" picks, as OpenAI's data-prep guidance describes it
TARGET_EPOCHS, MIN_TARGET_EXAMPLES, MAX_TARGET_EXAMPLES = 3, 100, 25_000
MIN_DEFAULT_EPOCHS, MAX_DEFAULT_EPOCHS = 1, 25
HYPERPARAMETERS = {
    "supervised": {"n_epochs", "batch_size", "learning_rate_multiplier"},
    "dpo": {"n_epochs", "batch_size", "learning_rate_multiplier", "beta"},
}
ROUTES = [
    ("POST", re.compile(r"^/v1/files$"), "POST /v1/files"),
    ("GET", re.compile(r"^/v1/files$"), "GET /v1/files"),
    ("GET", re.compile(r"^/v1/files/(?P<id>[^/]+)$"), "GET /v1/files/{id}"),
    ("POST", re.compile(r"^/v1/fine_tuning/jobs$"), "POST /v1/fine_tuning/jobs"),
    ("GET", re.compile(r"^/v1/fine_tuning/jobs$"), "GET /v1/fine_tuning/jobs"),
    ("GET", re.compile(r"^/v1/fine_tuning/jobs/(?P<id>[^/]+)$"), "GET /v1/fine_tuning/jobs/{id}"),
    (
        "POST",
        re.compile(r"^/v1/fine_tuning/jobs/(?P<id>[^/]+)/cancel$"),
        "POST /v1/fine_tuning/jobs/{id}/cancel",
    ),
    (
        "GET",
        re.compile(r"^/v1/fine_tuning/jobs/(?P<id>[^/]+)/events$"),
        "GET /v1/fine_tuning/jobs/{id}/events",
    ),
    (
        "GET",
        re.compile(r"^/v1/fine_tuning/jobs/(?P<id>[^/]+)/checkpoints$"),
        "GET /v1/fine_tuning/jobs/{id}/checkpoints",
    ),
    ("POST", re.compile(r"^/v1/chat/completions$"), "POST /v1/chat/completions"),
]

#: the chat-completion parameters the fake accepts (the real API refuses unknown ones with a 400)
CHAT_PARAMETERS = {
    "model", "messages", "temperature", "top_p", "seed", "max_tokens", "max_completion_tokens", "n", "stop",
    "frequency_penalty", "presence_penalty", "logprobs", "top_logprobs", "user", "response_format", "stream",
}


class ApiError(Exception):
    """An error answer in OpenAI's shape: {"error": {"message", "type", "param", "code"}}."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code

    def body(self) -> dict:
        kind = {401: "invalid_authentication", 404: "invalid_request_error", 429: "rate_limit_exceeded"}
        kind_name = kind.get(self.status, "server_error" if self.status >= 500 else "invalid_request_error")
        return {"error": {"message": self.message, "type": kind_name, "param": self.param, "code": self.code}}


@dataclass
class Recorded:
    """One request the server received, and the status it answered."""

    method: str
    path: str
    route: str | None
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: Any
    status: int = 0


@dataclass
class _Fault:
    status: int
    remaining: int
    retry_after_ms: int | None
    after_processing: bool


@dataclass
class _Job:
    obj: dict
    examples: list[dict]
    n_validation: int
    total_steps: int = 0
    steps_done: int = 0
    events: list[dict] = field(default_factory=list)
    checkpoints: list[dict] = field(default_factory=list)
    rng: random.Random = field(default_factory=random.Random)


class FakeOpenAIServer(LoopbackServer):
    """OpenAI's files and fine-tuning API on 127.0.0.1, state held in memory, driven by the test."""

    def __init__(
        self,
        api_key: str = "sk-test-flywheel",
        *,
        models: set[str] | None = None,
        file_processing_polls: int = 1,
        auto_advance: bool = False,
        organization_id: str = "org-flywheel",
        metadata_support: bool = True,
    ):
        self.api_key = api_key
        self.models = set(models or DEFAULT_MODELS)
        #: a new file answers `uploaded` to this many retrieves before it is `processed`
        self.file_processing_polls = file_processing_polls
        #: each retrieve of a job moves it one state forward (validating -> queued -> running -> succeeded)
        self.auto_advance = auto_advance
        self.organization_id = organization_id
        #: False acts as a compatible provider without job metadata: it is dropped and filters ignored
        self.metadata_support = metadata_support
        self.files: dict[str, dict] = {}
        self.file_bytes: dict[str, bytes] = {}
        self.jobs: dict[str, _Job] = {}
        self.requests: list[Recorded] = []
        self._file_polls: dict[str, int] = {}
        self._faults: dict[str, list[_Fault]] = {}
        self._lock = threading.RLock()
        #: what a chat model answers: (model, messages) -> text; a test sets it to stand for a
        #: better or worse model. The default repeats the last user turn (a deterministic "model").
        self.responder = lambda model, messages: next(
            (m["content"] for m in reversed(messages) if m.get("role") == "user"), ""
        )

    # ------------------------------------------------------------------ lifecycle
    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        return type("Handler", (_Handler,), {"fake": self})

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # ------------------------------------------------------------------ test controls
    def fail_next(
        self,
        route: str,
        count: int = 1,
        *,
        status: int = 429,
        retry_after_ms: int | None = 5,
        after_processing: bool = False,
    ) -> None:
        """The next `count` requests to `route` (e.g. "POST /v1/files") answer `status`.

        429 answers carry `retry-after-ms` (and `retry-after`) so the SDK's backoff stays short.
        `after_processing=True` does the work first and then answers the error, as when a response
        is lost on the way back: the request took effect but the client cannot know it.
        """
        if route not in {name for _m, _p, name in ROUTES}:
            raise ValueError(f"unknown route {route!r}")
        with self._lock:
            self._faults.setdefault(route, []).append(_Fault(status, count, retry_after_ms, after_processing))

    def count(self, route: str, *, status: int | None = None) -> int:
        """How many requests reached `route` (answered with `status`, when given)."""
        with self._lock:
            return sum(
                1 for r in self.requests if r.route == route and (status is None or r.status == status)
            )

    def bodies(self, route: str, *, status: int = 200) -> list[Any]:
        """The bodies of the requests to `route` that were answered with `status`."""
        with self._lock:
            return [r.body for r in self.requests if r.route == route and r.status == status]

    def advance(self, job_id: str, to: str = "succeeded") -> dict:
        """Move a job forward through each state up to `to` (`failed`/`cancelled` end it from here)."""
        with self._lock:
            job = self._job(job_id)
            if to == "failed":
                self.fail(job_id)
            elif to == "cancelled":
                self._cancel(job)
            elif to not in STATES:
                raise ValueError(f"unknown state {to!r}")
            else:
                while job.obj["status"] not in TERMINAL and STATES.index(job.obj["status"]) < STATES.index(
                    to
                ):
                    self._step(job)
            return json.loads(json.dumps(job.obj))

    def train(self, job_id: str, steps: int) -> None:
        """A running job makes `steps` training steps (metric events; checkpoints at epoch ends)."""
        with self._lock:
            job = self._job(job_id)
            if job.obj["status"] != "running":
                raise ValueError(f"job {job_id} is {job.obj['status']}, not running")
            for _ in range(min(steps, job.total_steps - job.steps_done)):
                self._train_step(job)

    def fail(
        self,
        job_id: str,
        code: str = "invalid_training_file",
        message: str = "The job failed: the training file could not be read.",
        param: str | None = "training_file",
    ) -> None:
        """End a job as `failed` with this error object."""
        with self._lock:
            job = self._job(job_id)
            if job.obj["status"] in TERMINAL:
                raise ValueError(f"job {job_id} already ended as {job.obj['status']}")
            self._fail(job, code, message, param)

    # ------------------------------------------------------------------ internals
    def _now(self) -> int:
        return int(time.time())

    def _job(self, job_id: str) -> _Job:
        if job_id not in self.jobs:
            raise ApiError(
                404,
                f"Could not find fine-tune job: {job_id}",
                param="fine_tuning_job_id",
                code="fine_tune_not_found",
            )
        return self.jobs[job_id]

    def _event(
        self, job: _Job, message: str, *, level: str = "info", kind: str = "message", data=None
    ) -> None:
        job.events.append(
            {
                "object": "fine_tuning.job.event",
                "id": f"ftevent-{uuid.uuid4().hex[:24]}",
                "created_at": self._now(),
                "level": level,
                "message": message,
                "data": data if data is not None else {},
                "type": kind,
            }
        )

    def _step(self, job: _Job) -> None:
        status = job.obj["status"]
        if status == "validating_files":
            problem = _validate_examples(job.examples, job.obj["method"]["type"])
            if problem:
                self._fail(job, "invalid_training_file", problem, "training_file")
                return
            self._event(job, "Files validated, moving job to queued state")
            job.obj["status"] = "queued"
        elif status == "queued":
            job.obj["status"] = "running"
            self._event(job, "Fine-tuning job started")
            job.obj["estimated_finish"] = self._now() + 600
        elif status == "running":
            while job.steps_done < job.total_steps:
                self._train_step(job)
            self._succeed(job)

    def _train_step(self, job: _Job) -> None:
        job.steps_done += 1
        step, total = job.steps_done, job.total_steps
        progress = step / total
        train_loss = round(2.2 * math.exp(-2.0 * progress) + 0.05 + job.rng.uniform(0, 0.05), 4)
        data: dict[str, Any] = {
            "step": step,
            "train_loss": train_loss,
            "total_steps": total,
            "train_mean_token_accuracy": round(min(0.99, 0.45 + 0.5 * progress), 4),
        }
        if job.n_validation:
            data["valid_loss"] = round(train_loss + 0.08 + job.rng.uniform(0, 0.03), 4)
            data["valid_mean_token_accuracy"] = round(min(0.99, 0.42 + 0.48 * progress), 4)
        self._event(job, f"Step {step}/{total}: training loss={train_loss}", kind="metrics", data=data)
        epochs = job.obj["method"][job.obj["method"]["type"]]["hyperparameters"]["n_epochs"]
        steps_per_epoch = max(1, total // epochs)
        if step % steps_per_epoch == 0 or step == total:
            metrics = {
                k: data.get(k)
                for k in (
                    "step",
                    "train_loss",
                    "train_mean_token_accuracy",
                    "valid_loss",
                    "valid_mean_token_accuracy",
                )
            }
            if job.n_validation:
                metrics["full_valid_loss"] = round(data["valid_loss"] - 0.02, 4)
                metrics["full_valid_mean_token_accuracy"] = data["valid_mean_token_accuracy"]
            epoch = math.ceil(step / steps_per_epoch)
            job.checkpoints.append(
                {
                    "object": "fine_tuning.job.checkpoint",
                    "id": f"ftckpt_{uuid.uuid4().hex[:24]}",
                    "created_at": self._now(),
                    "fine_tuned_model_checkpoint": f"{self._model_name(job)}:ckpt-step-{step}",
                    "fine_tuning_job_id": job.obj["id"],
                    "metrics": metrics,
                    "step_number": step,
                }
            )
            self._event(job, f"Checkpoint created at step {step} (epoch {epoch})")

    def _model_name(self, job: _Job) -> str:
        suffix = job.obj.get("suffix") or ""
        return f"ft:{job.obj['model']}:{self.organization_id}:{suffix}:{job.obj['id'][-8:]}"

    def _succeed(self, job: _Job) -> None:
        epochs = job.obj["method"][job.obj["method"]["type"]]["hyperparameters"]["n_epochs"]
        job.obj["trained_tokens"] = _count_tokens(job.examples) * epochs
        job.obj["fine_tuned_model"] = self._model_name(job)
        job.obj["status"] = "succeeded"
        job.obj["finished_at"] = self._now()
        job.obj["estimated_finish"] = None
        result_file = self._store_file(
            b"step,train_loss\n", "step_metrics.csv", "fine-tune-results", "processed"
        )
        job.obj["result_files"] = [result_file["id"]]
        self._event(job, f"New fine-tuned model created: {job.obj['fine_tuned_model']}")
        self._event(job, "The job has successfully completed")

    def _fail(self, job: _Job, code: str, message: str, param: str | None) -> None:
        job.obj["status"] = "failed"
        job.obj["error"] = {"code": code, "message": message, "param": param}
        job.obj["finished_at"] = self._now()
        job.obj["estimated_finish"] = None
        self._event(job, message, level="error")

    def _cancel(self, job: _Job) -> None:
        if job.obj["status"] in TERMINAL:
            raise ApiError(
                400, f"Job {job.obj['id']} has already {job.obj['status']}.", code="invalid_job_status"
            )
        job.obj["status"] = "cancelled"
        job.obj["finished_at"] = self._now()
        job.obj["estimated_finish"] = None
        self._event(job, "Fine-tuning job cancelled")

    def _store_file(self, data: bytes, filename: str, purpose: str, status: str) -> dict:
        file_id = f"file-{uuid.uuid4().hex[:24]}"
        obj = {
            "object": "file",
            "id": file_id,
            "bytes": len(data),
            "created_at": self._now(),
            "filename": filename,
            "purpose": purpose,
            "status": status,
            "status_details": None,
            "expires_at": None,
        }
        self.files[file_id] = obj
        self.file_bytes[file_id] = data
        self._file_polls[file_id] = 0
        return obj

    # ------------------------------------------------------------------ endpoints
    def handle(self, method: str, path: str, query: list[tuple[str, str]], headers: dict, body: Any):
        """Route one request; returns (status, json body, extra headers)."""
        route, params = None, {}
        for m, pattern, name in ROUTES:
            match = pattern.match(path)
            if match and m == method:
                route, params = name, match.groupdict()
                break
        record = Recorded(method, path, route, query, headers, body)
        with self._lock:
            self.requests.append(record)
            status, payload, extra = self._dispatch(route, params, query, headers, body)
            record.status = status
        return status, payload, extra

    def _dispatch(self, route, params, query, headers, body):
        fault = None
        if route and self._faults.get(route):
            fault = self._faults[route][0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._faults[route].pop(0)
        if fault and not fault.after_processing:
            return _fault_answer(fault)
        try:
            if headers.get("authorization") != f"Bearer {self.api_key}":
                raise ApiError(401, "Incorrect API key provided.", code="invalid_api_key")
            if route is None:
                raise ApiError(404, "Invalid URL", code="unknown_url")
            handler = getattr(self, "_" + re.sub(r"\W+", "_", route.lower()).strip("_"))
            payload = handler(params, dict(query), query, body)
            status = 200
        except ApiError as exc:
            status, payload = exc.status, exc.body()
        if fault:
            return _fault_answer(fault)
        return status, payload, {}

    def _post_v1_chat_completions(self, params, q, query, body):
        if not isinstance(body, dict):
            raise ApiError(400, "We could not parse the JSON body of your request.")
        for key in body:
            if key not in CHAT_PARAMETERS:
                raise ApiError(400, f"Unrecognized request argument supplied: {key}", param=key)
        model = body.get("model")
        if not model:
            raise ApiError(400, "Missing required parameter: 'model'.", param="model")
        served = {j.obj.get("fine_tuned_model") for j in self.jobs.values() if j.obj.get("status") == "succeeded"}
        if model not in self.models and model not in served:
            raise ApiError(404, f"The model `{model}` does not exist or you do not have access to it.",
                           param="model", code="model_not_found")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages or not all(
            isinstance(m, dict) and m.get("role") in {"system", "developer", "user", "assistant", "tool"}
            and isinstance(m.get("content"), str) for m in messages
        ):
            raise ApiError(400, "Invalid 'messages': a non-empty list of {role, content} objects.", param="messages")
        if body.get("max_tokens") is not None and body.get("max_completion_tokens") is not None:
            raise ApiError(400, "max_tokens and max_completion_tokens cannot both be set.", param="max_tokens")
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise ApiError(400, "max_completion_tokens must be a positive integer.", param="max_completion_tokens")
        temperature = body.get("temperature", 1)
        if not isinstance(temperature, (int, float)) or not 0 <= temperature <= 2:
            raise ApiError(400, "temperature must be between 0 and 2.", param="temperature")
        text = str(self.responder(model, messages))
        words = text.split()
        finish = "stop"
        if limit is not None and len(words) > limit:  # one word stands for one token here
            text, finish = " ".join(words[:limit]), "length"
        prompt_tokens = sum(len(m["content"].split()) + 4 for m in messages)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": self._now(),
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None},
                         "logprobs": None, "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(text.split()),
                      "total_tokens": prompt_tokens + len(text.split())},
            "system_fingerprint": "fp_flywheel_fake",
        }

    def _post_v1_files(self, params, q, query, body):
        if not isinstance(body, dict) or "file" not in body:
            raise ApiError(400, "Missing required parameter: 'file'.", param="file")
        purpose = body.get("purpose")
        if purpose not in FILE_PURPOSES:
            raise ApiError(
                400, f"'{purpose}' is not one of {sorted(FILE_PURPOSES)} - 'purpose'", param="purpose"
            )
        filename, data = body["file"]
        if purpose == "fine-tune" and not filename.endswith(".jsonl"):
            raise ApiError(400, "Invalid file format for Fine-Tuning API. Must be .jsonl", param="file")
        return self._store_file(data, filename, purpose, "uploaded")

    def _get_v1_files(self, params, q, query, body):
        files = [f for f in self.files.values() if not q.get("purpose") or f["purpose"] == q["purpose"]]
        if q.get("order", "desc") == "desc":  # insertion order is creation order
            files.reverse()
        return _page(files, q, default_limit=10_000)

    def _get_v1_files_id(self, params, q, query, body):
        file_id = params["id"]
        if file_id not in self.files:
            raise ApiError(404, f"No such File object: {file_id}", param="id")
        obj = self.files[file_id]
        if obj["status"] == "uploaded":
            self._file_polls[file_id] += 1
            if self._file_polls[file_id] > self.file_processing_polls:
                problem = _parse_jsonl(self.file_bytes[file_id]) if obj["purpose"] == "fine-tune" else None
                obj["status"] = "error" if isinstance(problem, str) else "processed"
                obj["status_details"] = problem if isinstance(problem, str) else None
        return obj

    def _post_v1_fine_tuning_jobs(self, params, q, query, body):
        if not isinstance(body, dict):
            raise ApiError(400, "We could not parse the JSON body of your request.")
        model = body.get("model")
        if not model:
            raise ApiError(400, "Missing required parameter: 'model'.", param="model")
        if model not in self.models:
            raise ApiError(
                400,
                f"Model {model} is not available for fine-tuning or does not exist.",
                param="model",
                code="model_not_available",
            )
        known = {
            "model",
            "training_file",
            "validation_file",
            "hyperparameters",
            "method",
            "suffix",
            "seed",
            "metadata",
            "integrations",
        }
        for key in body:
            if key not in known:
                raise ApiError(400, f"Unrecognized request argument supplied: {key}", param=key)
        training = self._fine_tune_file(body.get("training_file"), "training_file")
        validation = None
        if body.get("validation_file"):
            validation = self._fine_tune_file(body["validation_file"], "validation_file")
        suffix = body.get("suffix")
        if suffix is not None and (not isinstance(suffix, str) or len(suffix) > 64):
            raise ApiError(400, "suffix must be a string of at most 64 characters", param="suffix")
        metadata = body.get("metadata") or {}
        if len(metadata) > 16 or any(
            len(k) > 64 or not isinstance(v, str) or len(v) > 512 for k, v in metadata.items()
        ):
            raise ApiError(
                400, "metadata: at most 16 string pairs, keys <= 64 chars, values <= 512", param="metadata"
            )
        method = body.get("method") or {"type": "supervised", "supervised": {}}
        kind = method.get("type")
        if kind not in HYPERPARAMETERS:
            raise ApiError(
                400,
                f"Invalid method type {kind!r}: expected one of {sorted(HYPERPARAMETERS)}",
                param="method.type",
            )
        extra = set(method) - {"type", kind}
        if extra:
            raise ApiError(
                400,
                f"method.{min(extra)} is not allowed for method type {kind!r}",
                param=f"method.{min(extra)}",
            )
        given = dict((method.get(kind) or {}).get("hyperparameters") or {})
        if body.get("hyperparameters"):
            if kind != "supervised":
                raise ApiError(
                    400,
                    "top-level hyperparameters are only accepted for supervised jobs",
                    param="hyperparameters",
                )
            given = {**body["hyperparameters"], **given}
        examples = self._examples(training)
        if len(examples) < MIN_EXAMPLES:
            raise ApiError(
                400,
                f"Training file has {len(examples)} example(s), "
                f"but must have at least {MIN_EXAMPLES} examples",
                param="training_file",
                code="invalid_n_examples",
            )
        resolved = _resolve_hyperparameters(kind, given, len(examples))
        job_id = f"ftjob-{uuid.uuid4().hex[:24]}"
        seed = body.get("seed")
        obj = {
            "object": "fine_tuning.job",
            "id": job_id,
            "model": model,
            "created_at": self._now(),
            "finished_at": None,
            "fine_tuned_model": None,
            "organization_id": self.organization_id,
            "result_files": [],
            "status": "validating_files",
            "validation_file": validation["id"] if validation else None,
            "training_file": training["id"],
            "hyperparameters": {
                k: resolved[k] for k in ("n_epochs", "batch_size", "learning_rate_multiplier")
            },
            "method": {"type": kind, kind: {"hyperparameters": resolved}},
            "trained_tokens": None,
            "error": None,
            "integrations": [],
            "seed": seed if seed is not None else random.randrange(2**31),
            "estimated_finish": None,
            "suffix": suffix,
            "metadata": (metadata or None) if self.metadata_support else None,
            "user_provided_suffix": suffix,
        }
        n_val = len(self._examples(validation)) if validation else 0
        steps = math.ceil(len(examples) / resolved["batch_size"]) * resolved["n_epochs"]
        job = _Job(obj, examples, n_val, total_steps=steps, rng=random.Random(obj["seed"]))
        self.jobs[job_id] = job
        self._event(job, f"Created fine-tuning job: {job_id}")
        self._event(
            job,
            f"Validating training file: {training['id']}"
            + (f" and validation file: {validation['id']}" if validation else ""),
        )
        return obj

    def _fine_tune_file(self, file_id, param: str) -> dict:
        if not file_id:
            raise ApiError(400, f"Missing required parameter: '{param}'.", param=param)
        obj = self.files.get(file_id)
        if obj is None:
            raise ApiError(400, f"invalid {param}: {file_id}", param=param, code="invalid_file_id")
        if obj["purpose"] != "fine-tune":
            raise ApiError(
                400,
                f"File {file_id} has purpose {obj['purpose']!r}, expected 'fine-tune'",
                param=param,
                code="invalid_file_purpose",
            )
        if obj["status"] != "processed":
            raise ApiError(
                400,
                f"File {file_id} is not ready (status {obj['status']})",
                param=param,
                code="file_not_ready",
            )
        return obj

    def _examples(self, file_obj: dict) -> list[dict]:
        parsed = _parse_jsonl(self.file_bytes[file_obj["id"]])
        return parsed if isinstance(parsed, list) else []

    def _get_v1_fine_tuning_jobs(self, params, q, query, body):
        wanted = {}
        for key, value in query if self.metadata_support else []:
            match = re.fullmatch(r"metadata\[(.+)\]", key)
            if match:
                wanted[match.group(1)] = value
        jobs = [
            j.obj
            for j in self.jobs.values()
            if all((j.obj.get("metadata") or {}).get(k) == v for k, v in wanted.items())
        ]
        return _page(list(reversed(jobs)), q, default_limit=20)

    def _get_v1_fine_tuning_jobs_id(self, params, q, query, body):
        job = self._job(params["id"])
        if self.auto_advance and job.obj["status"] not in TERMINAL:
            self._step(job)
        return job.obj

    def _post_v1_fine_tuning_jobs_id_cancel(self, params, q, query, body):
        job = self._job(params["id"])
        self._cancel(job)
        return job.obj

    def _get_v1_fine_tuning_jobs_id_events(self, params, q, query, body):
        job = self._job(params["id"])
        return _page(list(reversed(job.events)), q, default_limit=20)

    def _get_v1_fine_tuning_jobs_id_checkpoints(self, params, q, query, body):
        job = self._job(params["id"])
        return _page(list(reversed(job.checkpoints)), q, default_limit=10)


def _fault_answer(fault: _Fault):
    headers = {}
    if fault.retry_after_ms is not None:
        headers = {
            "retry-after-ms": str(fault.retry_after_ms),
            "retry-after": str(max(1, math.ceil(fault.retry_after_ms / 1000))),
        }
    error = ApiError(
        fault.status,
        "Rate limit reached for requests"
        if fault.status == 429
        else "The server had an error while processing your request.",
        code="rate_limit_exceeded" if fault.status == 429 else None,
    )
    return fault.status, error.body(), headers


def _page(items: list[dict], q: dict, *, default_limit: int) -> dict:
    """A cursor page: `after` is the id of the last item of the previous page."""
    try:
        limit = int(q.get("limit", default_limit))
    except ValueError as exc:
        raise ApiError(400, f"Invalid limit {q.get('limit')!r}", param="limit") from exc
    if limit < 1:
        raise ApiError(400, "limit must be at least 1", param="limit")
    start = 0
    if q.get("after"):
        ids = [item["id"] for item in items]
        if q["after"] not in ids:
            raise ApiError(400, f"Invalid 'after': {q['after']}", param="after")
        start = ids.index(q["after"]) + 1
    chunk = items[start : start + limit]
    return {
        "object": "list",
        "data": chunk,
        "has_more": start + limit < len(items),
        "first_id": chunk[0]["id"] if chunk else None,
        "last_id": chunk[-1]["id"] if chunk else None,
    }


def _parse_jsonl(data: bytes) -> list[dict] | str:
    """The examples of a JSONL file, or the first problem (as the file's `status_details`)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "Invalid file format: the file is not UTF-8 text."
    examples = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            return f"Invalid file format. Line {number}: not valid JSON ({exc.msg})."
        if not isinstance(value, dict):
            return f"Invalid file format. Line {number}: each line must be a JSON object."
        examples.append(value)
    if not examples:
        return "Invalid file format: the file has no examples."
    return examples


def _validate_examples(examples: list[dict], kind: str) -> str | None:
    """The first example that does not fit the method's format, as the job's error message."""
    roles = {"system", "developer", "user", "assistant", "tool", "function"}
    for number, example in enumerate(examples, start=1):
        if kind == "supervised":
            messages = example.get("messages")
            where = f"Invalid file format. Example {number}"
            if not isinstance(messages, list) or not messages:
                return f"{where}: 'messages' must be a non-empty list."
        else:
            prompt = example.get("input")
            where = f"Invalid file format. Example {number}"
            if not isinstance(prompt, dict) or not isinstance(prompt.get("messages"), list):
                return f"{where}: 'input.messages' is required for dpo."
            for key in ("preferred_output", "non_preferred_output"):
                value = example.get(key)
                if not isinstance(value, list) or not value or value[-1].get("role") != "assistant":
                    return f"{where}: '{key}' must be a list ending with an assistant message."
            messages = prompt["messages"] + example["preferred_output"]
        for message in messages:
            if not isinstance(message, dict) or message.get("role") not in roles:
                return f"{where}: a message has a missing or unrecognized role."
            if message.get("content") is None and not message.get("tool_calls"):
                return f"{where}: a message has no content."
        if not any(m.get("role") == "assistant" for m in messages):
            return f"{where}: no assistant message to learn from."
    return None


def _resolve_hyperparameters(kind: str, given: dict, n_examples: int) -> dict:
    unknown = set(given) - HYPERPARAMETERS[kind]
    if unknown:
        name = min(unknown)
        raise ApiError(
            400,
            f"Unknown hyperparameter {name!r} for method {kind!r}",
            param=f"method.{kind}.hyperparameters.{name}",
        )

    def check(name, value, kind_ok, low, high):
        if value == "auto":
            return None
        if not kind_ok(value) or not (low <= value <= high):
            raise ApiError(
                400,
                f"Invalid {name} {value!r}: expected 'auto' or a value in [{low}, {high}]",
                param=f"method.{kind}.hyperparameters.{name}",
            )
        return value

    def is_int(v):
        return isinstance(v, int) and not isinstance(v, bool)

    def is_num(v):
        return isinstance(v, int | float) and not isinstance(v, bool)

    epochs = check("n_epochs", given.get("n_epochs", "auto"), is_int, 1, 50)
    if epochs is None:
        epochs = TARGET_EPOCHS
        if n_examples * TARGET_EPOCHS < MIN_TARGET_EXAMPLES:
            epochs = min(MAX_DEFAULT_EPOCHS, math.ceil(MIN_TARGET_EXAMPLES / n_examples))
        elif n_examples * TARGET_EPOCHS > MAX_TARGET_EXAMPLES:
            epochs = max(MIN_DEFAULT_EPOCHS, MAX_TARGET_EXAMPLES // n_examples)
    batch = check("batch_size", given.get("batch_size", "auto"), is_int, 1, 256)
    if batch is None:
        batch = max(1, min(256, round(n_examples * 0.002)))
    lr = check("learning_rate_multiplier", given.get("learning_rate_multiplier", "auto"), is_num, 1e-6, 10)
    resolved = {
        "n_epochs": epochs,
        "batch_size": batch,
        "learning_rate_multiplier": lr if lr is not None else 1.8,
    }
    if kind == "dpo":
        beta = check("beta", given.get("beta", "auto"), is_num, 1e-6, 2)
        resolved["beta"] = beta if beta is not None else 0.1
    return resolved


_ENCODING = None


def _count_tokens(examples: list[dict]) -> int:
    """Tokens in the training examples (o200k, offline through bpe-openai), 3 per message of overhead."""
    global _ENCODING
    if _ENCODING is None:
        import bpe_openai

        _ENCODING = bpe_openai.get_encoding("o200k_base")
    total = 0
    for example in examples:
        messages = list(example.get("messages") or [])
        messages += list((example.get("input") or {}).get("messages") or [])
        messages += list(example.get("preferred_output") or []) + list(
            example.get("non_preferred_output") or []
        )
        for message in messages:
            content = message.get("content") or ""
            if not isinstance(content, str):
                content = json.dumps(content)
            total += 3 + len(_ENCODING.encode(content))
    return total


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOpenAIServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body leave at once: no 40 ms delayed-ACK stall

    def log_message(self, format, *args):  # keep test output quiet
        pass

    def do_GET(self):
        self._serve("GET")

    def do_POST(self):
        self._serve("POST")

    def do_DELETE(self):
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        parts = urlsplit(self.path)
        query = parse_qsl(parts.query, keep_blank_values=True)
        headers = {k.lower(): v for k, v in self.headers.items()}
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        try:
            body = _decode_body(headers.get("content-type", ""), raw)
        except ValueError as exc:
            status, payload, extra = 400, ApiError(400, str(exc)).body(), {}
        else:
            status, payload, extra = self.fake.handle(method, parts.path, query, headers, body)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("x-request-id", f"req_{uuid.uuid4().hex[:16]}")
        for key, value in extra.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)


def _decode_body(content_type: str, raw: bytes) -> Any:
    """JSON, or multipart form fields (a file field as (filename, bytes)), or None when empty."""
    if not raw:
        return None
    if content_type.startswith("application/json"):
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"We could not parse the JSON body of your request: {exc.msg}") from exc
    if content_type.startswith("multipart/form-data"):
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + raw
        )
        if not message.is_multipart():
            raise ValueError("malformed multipart body")
        fields: dict[str, Any] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True) or b""
            filename = part.get_filename()
            fields[name] = (filename, payload) if filename is not None else payload.decode("utf-8")
        return fields
    raise ValueError(f"unsupported content type {content_type!r}")
