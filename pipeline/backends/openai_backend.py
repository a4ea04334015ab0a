"""OpenAI fine-tuning (also Azure OpenAI and OpenAI-compatible providers) behind `FineTuneBackend`.

`submit` uploads the training (and validation) file with `purpose="fine-tune"`, waits a bounded
time until each file is `processed`, and creates the job with `method` supervised or dpo, its
hyper-parameters ("auto" unless the target sets them), `suffix`, `seed`, `validation_file` and
`metadata` holding the target and dataset version. It never waits for training: the job-status
sensor calls `status` until the job ends, then `result`.

Paying twice is what this module is built to prevent:

* Before uploading anything, `submit` looks for this (target, dataset version)'s job: jobs listed
  with the metadata filter `metadata[flywheel_target]=…&metadata[flywheel_dataset_version]=…` and
  checked again on this side (a provider that ignores the filter returns every job; the scan stops
  after `job_lookup_limit`). A live (validating_files, queued, running, paused) or succeeded job is
  re-attached to; a failed or cancelled one does not block a new submission. A provider that drops
  job metadata is covered too: a job whose `training_file` is this version's uploaded file counts.
* Uploads are named after the target, version and the file's sha256, and a processed file of that
  name is reused, so a re-submit after a crash between upload and job creation uploads nothing.
* Creating a job and uploading a file are POSTs that the SDK would retry blindly on a 5xx or a lost
  connection (OpenAI takes no idempotency key), which could create a second paid job when only the
  answer was lost. Those two calls run with the SDK's retries off; on an ambiguous failure the
  backend first looks for what the lost request may have created, and retries only if it finds
  nothing. Reads (status, events, checkpoints, listings) use the SDK's own retries (`max_retries`).

Other providers: `base_url` points the official SDK elsewhere.
* Azure OpenAI: `base_url="https://<resource>.openai.azure.com/openai/v1/"` (the v1 API, no
  `api-version` needed) and `api_key` = the Azure resource key (`dg.EnvVar("AZURE_OPENAI_API_KEY")`);
  `base_model` is the Azure model name that supports fine-tuning in your region.
* OpenAI-compatible providers that implement `/files` and `/fine_tuning/jobs`: their base URL, their
  key. Prices for models outside `pipeline/core/prices.yaml` give no cost (None), never a guess.

`api_key` is never logged or put in metadata; pass it as `dg.EnvVar("OPENAI_API_KEY")`.
"""

from __future__ import annotations

import hashlib
import random
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import Field, PrivateAttr

from pipeline.backends.base import (
    FineTuneBackend,
    FineTuneRequest,
    JobError,
    JobState,
    JobStatus,
    TrainedModel,
)
from pipeline.core.pricing import training_cost_usd

META_TARGET = "flywheel_target"
META_VERSION = "flywheel_dataset_version"
META_METHOD = "flywheel_method"
META_SHA = "flywheel_train_sha256"

#: provider statuses of a job that is still going; "paused" exists in the API and is not an end
LIVE_STATUSES = frozenset({"validating_files", "queued", "running", "paused"})
REATTACH_STATUSES = LIVE_STATUSES | {"succeeded"}
#: Flywheel method -> OpenAI `method.type`, and back
METHOD_TYPES = {"sft": "supervised", "dpo": "dpo"}
FLYWHEEL_METHODS = {"supervised": "sft", "dpo": "dpo", "reinforcement": "reinforcement"}
#: the hyper-parameters OpenAI accepts per method, all "auto" unless a target sets them
HYPERPARAMETERS = {
    "sft": ("n_epochs", "batch_size", "learning_rate_multiplier"),
    "dpo": ("n_epochs", "batch_size", "learning_rate_multiplier", "beta"),
}
_INT_PARAMS = {"n_epochs", "batch_size"}
METRIC_KEYS = (
    "step",
    "total_steps",
    "train_loss",
    "train_mean_token_accuracy",
    "valid_loss",
    "valid_mean_token_accuracy",
    "full_valid_loss",
    "full_valid_mean_token_accuracy",
)
MAX_SERVER_RETRY_DELAY_S = 60.0


class OpenAIBackendError(RuntimeError):
    """OpenAI refused or could not do what the backend asked; the message says what and why."""


class FileProcessingError(OpenAIBackendError):
    """An uploaded file failed OpenAI's processing (or did not finish in time)."""


class JobNotSucceededError(OpenAIBackendError):
    """`result` was asked of a job that has not succeeded."""


# ------------------------------------------------------------------ pure helpers


def openai_hyperparameters(method: str, given: dict[str, Any]) -> dict[str, Any]:
    """The hyper-parameters of an OpenAI job: the target's values, "auto" for the rest.

    Raises ValueError for a method OpenAI does not train here, an unknown key, or a bad value.
    """
    if method not in HYPERPARAMETERS:
        raise ValueError(
            f"the openai backend trains methods {sorted(HYPERPARAMETERS)}, not {method!r}: "
            "set the target's backend to sentence_transformers for embeddings"
        )
    allowed = HYPERPARAMETERS[method]
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ValueError(
            f"hyper-parameter(s) {unknown} are not OpenAI {method} hyper-parameters; allowed: {list(allowed)}"
        )
    resolved: dict[str, Any] = {}
    for key in allowed:
        value = given.get(key, "auto")
        if value == "auto":
            resolved[key] = "auto"
            continue
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        if not numeric or value <= 0 or (key in _INT_PARAMS and int(value) != value):
            kind = "a positive integer" if key in _INT_PARAMS else "a positive number"
            raise ValueError(f"hyper-parameter {key}={value!r}: expected 'auto' or {kind}")
        resolved[key] = int(value) if key in _INT_PARAMS else float(value)
    return resolved


def method_body(method: str, hyperparameters: dict[str, Any]) -> dict[str, Any]:
    """The `method` argument of `fine_tuning.jobs.create` for a Flywheel method."""
    kind = METHOD_TYPES[method]
    return {"type": kind, kind: {"hyperparameters": dict(hyperparameters)}}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def upload_name(target: str, dataset_version: str, role: str, sha256: str) -> str:
    """The name a file is uploaded under: the same content for the same version has the same name."""
    safe_version = re.sub(r"[^A-Za-z0-9._-]", "-", dataset_version)
    return f"flywheel__{target}__{safe_version}__{role}__{sha256[:16]}.jsonl"


def default_suffix(target: str) -> str:
    """A model-name suffix from the target name (OpenAI allows up to 64 characters)."""
    return re.sub(r"[^a-z0-9-]+", "-", target.lower()).strip("-")[:64] or "flywheel"


def job_metadata(request: FineTuneRequest, train_sha256: str) -> dict[str, str]:
    """The job's metadata: how a re-run finds this dataset version's job."""
    return {
        META_TARGET: request.target,
        META_VERSION: request.dataset_version[:512],
        META_METHOD: request.method,
        META_SHA: train_sha256[:64],
    }


def is_our_job(job: dict[str, Any], target: str, dataset_version: str, file_ids: set[str]) -> bool:
    """This job trains this (target, dataset version): by metadata, or (no metadata) by training file."""
    metadata = job.get("metadata") or {}
    if metadata:
        return metadata.get(META_TARGET) == target and metadata.get(META_VERSION) == dataset_version
    return job.get("training_file") in file_ids


def merge_metrics(events: list[dict[str, Any]], checkpoints: list[dict[str, Any]]) -> dict[str, Any]:
    """The latest value of each training metric, from metric events' `data` and checkpoints' `metrics`.

    `token_accuracy` is the best accuracy measured: full validation, else validation, else training.
    """
    rows: dict[float, dict[str, Any]] = {}
    for event in events:
        data = event.get("data")
        if event.get("type") == "metrics" and isinstance(data, dict) and data.get("step") is not None:
            rows.setdefault(float(data["step"]), {}).update({k: v for k, v in data.items() if v is not None})
    for checkpoint in checkpoints:
        metrics = dict(checkpoint.get("metrics") or {})
        step = metrics.get("step") if metrics.get("step") is not None else checkpoint.get("step_number")
        if step is None:
            continue
        metrics["step"] = step
        rows.setdefault(float(step), {}).update({k: v for k, v in metrics.items() if v is not None})
    merged: dict[str, Any] = {}
    for step in sorted(rows):
        for key in METRIC_KEYS:
            if key in rows[step]:
                merged[key] = rows[step][key]
    if "step" in merged:
        merged["step"] = int(merged["step"])
    for key in ("full_valid_mean_token_accuracy", "valid_mean_token_accuracy", "train_mean_token_accuracy"):
        if key in merged:
            merged["token_accuracy"] = merged[key]
            break
    return merged


def loss_curve(events: list[dict[str, Any]], max_points: int = 200) -> list[dict[str, Any]]:
    """(step, train_loss, valid_loss) from metric events, thinned to at most `max_points`."""
    points = [
        {k: e["data"].get(k) for k in ("step", "train_loss", "valid_loss")}
        for e in events
        if e.get("type") == "metrics"
        and isinstance(e.get("data"), dict)
        and e["data"].get("step") is not None
    ]
    points.sort(key=lambda p: p["step"])
    if len(points) > max_points:
        stride = len(points) / max_points
        points = [points[int(i * stride)] for i in range(max_points - 1)] + [points[-1]]
    return points


def _iso(timestamp: int | None) -> str | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC).isoformat()


def job_status(
    job: dict[str, Any], events: list[dict[str, Any]], checkpoints: list[dict[str, Any]]
) -> JobStatus:
    """A JobStatus from a `fine_tuning.job` object, its events and checkpoints (oldest first)."""
    provider_status = job.get("status")
    try:
        state = JobState(provider_status)
    except ValueError:  # "paused", or a status newer than this code: not an end, shown as-is in details
        state = JobState.QUEUED if provider_status == "paused" else JobState.RUNNING
    method_type = (job.get("method") or {}).get("type") or "supervised"
    method = FLYWHEEL_METHODS.get(method_type, method_type)
    trained_tokens = job.get("trained_tokens")
    cost = None
    if trained_tokens is not None:
        cost = training_cost_usd("openai", job.get("model", ""), method, int(trained_tokens))
    error = None
    if job.get("error") and (job["error"].get("code") or job["error"].get("message")):
        err = job["error"]
        error = JobError(
            code=err.get("code") or "unknown", message=err.get("message") or "", param=err.get("param")
        )
    hyperparameters = ((job.get("method") or {}).get(method_type) or {}).get("hyperparameters")
    return JobStatus(
        job_id=job["id"],
        state=state,
        backend="openai",
        result_model=job.get("fine_tuned_model"),
        trained_tokens=trained_tokens,
        cost_usd=cost,
        error=error,
        metrics=merge_metrics(events, checkpoints),
        events=[
            {
                "id": e.get("id"),
                "created_at": _iso(e.get("created_at")),
                "level": e.get("level"),
                "type": e.get("type"),
                "message": e.get("message"),
                "data": e.get("data") or None,
            }
            for e in events
        ],
        checkpoints=[
            {
                "id": c.get("id"),
                "step": c.get("step_number"),
                "model": c.get("fine_tuned_model_checkpoint"),
                "created_at": _iso(c.get("created_at")),
                "metrics": {k: v for k, v in (c.get("metrics") or {}).items() if v is not None},
            }
            for c in checkpoints
        ],
        created_at=_iso(job.get("created_at")),
        finished_at=_iso(job.get("finished_at")),
        details={
            "provider_status": provider_status,
            "model": job.get("model"),
            "method": method,
            "hyperparameters": hyperparameters or job.get("hyperparameters"),
            "training_file": job.get("training_file"),
            "validation_file": job.get("validation_file"),
            "suffix": job.get("suffix") or job.get("user_provided_suffix"),
            "seed": job.get("seed"),
            "metadata": job.get("metadata") or {},
            "estimated_finish": _iso(job.get("estimated_finish")),
            "result_files": job.get("result_files") or [],
            "loss_curve": loss_curve(events),
            "cost_note": None
            if cost is not None or trained_tokens is None
            else f"no price for openai {job.get('model')} {method} in prices.yaml",
        },
    )


def retry_delay(headers: Any, attempt: int) -> float:
    """Seconds to wait before retry `attempt` (0-based): the server's retry-after(-ms), else backoff."""
    if headers is not None:
        for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
            value = headers.get(name)
            try:
                delay = float(value) / divisor if value is not None else None
            except ValueError:
                delay = None
            if delay is not None and 0 < delay <= MAX_SERVER_RETRY_DELAY_S:
                return delay
    return min(0.5 * 2**attempt, 8.0) * (1 - 0.25 * random.random())


# ------------------------------------------------------------------ the resource


class OpenAIBackend(FineTuneBackend):
    """Fine-tunes through OpenAI's API (or Azure OpenAI / a compatible provider via base_url)."""

    api_key: str = Field(repr=False, description="API key; pass dg.EnvVar('OPENAI_API_KEY'). Never logged.")
    base_url: str | None = Field(
        default=None,
        description="None: api.openai.com. Azure: https://<resource>.openai.azure.com/openai/v1/ ; "
        "or a compatible provider's /v1 URL.",
    )
    organization: str | None = Field(default=None, description="OpenAI organization id (optional).")
    project: str | None = Field(default=None, description="OpenAI project id (optional).")
    max_retries: int = Field(default=5, ge=0, description="Retries on 408/409/429/5xx and lost connections.")
    timeout: float = Field(default=60.0, gt=0, description="Seconds per HTTP request.")
    file_processing_timeout_s: float = Field(
        default=600.0, gt=0, description="How long submit waits for an upload to be processed."
    )
    file_poll_interval_s: float = Field(
        default=2.0, gt=0, description="Poll interval while a file processes."
    )
    job_lookup_limit: int = Field(default=200, ge=1, description="Recent jobs scanned when re-attaching.")
    file_lookup_limit: int = Field(
        default=1000, ge=1, description="Recent files scanned for a reusable upload."
    )
    max_events: int = Field(
        default=1000, ge=1, description="Newest events (and checkpoints) read per status."
    )

    _client: Any = PrivateAttr(default=None)

    @property
    def name(self) -> str:
        return "openai"

    # -------------------------------------------------------------- client
    def client(self) -> Any:
        """The `openai.OpenAI` client (imported on first use: the SDK costs ~0.4 s to import)."""
        if self._client is None:
            import openai

            self._client = openai.OpenAI(
                api_key=self.api_key,
                base_url=self.base_url,
                organization=self.organization,
                project=self.project,
                max_retries=self.max_retries,
                timeout=self.timeout,
            )
        return self._client

    # -------------------------------------------------------------- the interface
    def submit(self, request: FineTuneRequest) -> JobStatus:
        """Re-attach to this dataset version's live or succeeded job, else upload and create one."""
        hyperparameters = openai_hyperparameters(request.method, request.hyperparameters)
        paths = {"train": Path(request.train_file)}
        if request.validation_file:
            paths["validation"] = Path(request.validation_file)
        for role, path in paths.items():
            if not path.is_file():
                raise FileNotFoundError(
                    f"{role} file for {request.target} {request.dataset_version} not found: {path}"
                )
        shas = {role: file_sha256(path) for role, path in paths.items()}
        names = {
            role: upload_name(request.target, request.dataset_version, role, sha)
            for role, sha in shas.items()
        }
        metadata = job_metadata(request, shas["train"])

        reusable = self._find_files(set(names.values()))
        existing = self._find_job(request.target, request.dataset_version, {f.id for f in reusable.values()})
        if existing is not None:
            status = job_status(existing.model_dump(), [], [])
            status.details.update(reattached=True, uploaded=0, reused_files=0)
            return status

        file_ids, uploaded = {}, 0
        for role, path in paths.items():
            file = reusable.get(names[role])
            if file is None:
                file = self._upload(path, names[role])
                uploaded += 1
            file_ids[role] = self._wait_processed(file).id

        kwargs: dict[str, Any] = {
            "model": request.base_model,
            "training_file": file_ids["train"],
            "method": method_body(request.method, hyperparameters),
            "suffix": request.suffix or default_suffix(request.target),
            "seed": request.seed,
            "metadata": metadata,
        }
        if "validation" in file_ids:
            kwargs["validation_file"] = file_ids["validation"]
        job = self._post_once(
            lambda client: client.fine_tuning.jobs.create(**kwargs),
            find=lambda: self._find_job(request.target, request.dataset_version, {file_ids["train"]}),
            what=f"create the fine-tuning job for {request.target} {request.dataset_version}",
        )
        status = job_status(job.model_dump(), [], [])
        status.details.update(reattached=False, uploaded=uploaded, reused_files=len(paths) - uploaded)
        return status

    def status(self, job_id: str) -> JobStatus:
        """The job, its events (all pages, newest `max_events`) and checkpoints, mapped to a JobStatus."""
        client = self.client()
        job = self._call(lambda: client.fine_tuning.jobs.retrieve(job_id), f"read job {job_id}")
        events = self._call(
            lambda: self._newest(client.fine_tuning.jobs.list_events(job_id, limit=100)),
            f"list events of {job_id}",
        )
        checkpoints = self._call(
            lambda: self._newest(client.fine_tuning.jobs.checkpoints.list(job_id, limit=100)),
            f"list checkpoints of {job_id}",
        )
        return job_status(job.model_dump(), events, checkpoints)

    def cancel(self, job_id: str) -> JobStatus:
        """Cancel a live job; a job that already ended is left as it is."""
        import openai

        client = self.client()
        job = self._call(lambda: client.fine_tuning.jobs.retrieve(job_id), f"read job {job_id}")
        if job.status not in LIVE_STATUSES:
            status = self.status(job_id)
            status.details["cancel"] = f"not sent: the job had already ended as {job.status}"
            return status
        try:
            client.fine_tuning.jobs.cancel(job_id)
        except openai.BadRequestError:
            # a retried cancel whose first answer was lost finds the job cancelled already
            if client.fine_tuning.jobs.retrieve(job_id).status in LIVE_STATUSES:
                raise
        status = self.status(job_id)
        status.details["cancel"] = "sent"
        return status

    def result(self, job_id: str) -> TrainedModel:
        """The fine-tuned model id of a succeeded job; raises JobNotSucceededError otherwise."""
        status = self.status(job_id)
        if status.state != JobState.SUCCEEDED or not status.result_model:
            why = f": {status.error.code}: {status.error.message}" if status.error else ""
            raise JobNotSucceededError(
                f"OpenAI job {job_id} is {status.details.get('provider_status')}, not succeeded{why}; "
                "the result exists only once the job succeeds"
            )
        return TrainedModel(
            job_id=job_id, model=status.result_model, backend="openai", metrics=status.metrics
        )

    # -------------------------------------------------------------- lookups
    def find_job(self, target: str, dataset_version: str) -> Any | None:
        """The newest live or succeeded job of this (target, dataset version), or None."""
        return self._find_job(target, dataset_version, set())

    def _find_job(self, target: str, dataset_version: str, file_ids: set[str]) -> Any | None:
        client = self.client()

        def scan():
            pages = client.fine_tuning.jobs.list(
                metadata={META_TARGET: target, META_VERSION: dataset_version}, limit=100
            )
            for seen, job in enumerate(pages, start=1):  # newest first, every page
                if job.status in REATTACH_STATUSES and is_our_job(
                    job.model_dump(), target, dataset_version, file_ids
                ):
                    return job
                if seen >= self.job_lookup_limit:
                    break
            return None

        return self._call(scan, "list fine-tuning jobs")

    def _find_files(self, names: set[str]) -> dict[str, Any]:
        """Newest uploaded-or-processed fine-tune file per wanted name."""
        client = self.client()

        def scan():
            found: dict[str, Any] = {}
            pages = client.files.list(
                purpose="fine-tune", order="desc", limit=min(self.file_lookup_limit, 10_000)
            )
            for seen, file in enumerate(pages, start=1):
                if (
                    file.filename in names
                    and file.filename not in found
                    and file.status in ("uploaded", "processed")
                ):
                    found[file.filename] = file
                if len(found) == len(names) or seen >= self.file_lookup_limit:
                    break
            return found

        return self._call(scan, "list files")

    # -------------------------------------------------------------- uploads
    def _upload(self, path: Path, name: str) -> Any:
        data = path.read_bytes()
        return self._post_once(
            lambda client: client.files.create(file=(name, data, "application/jsonl"), purpose="fine-tune"),
            find=lambda: self._find_files({name}).get(name),
            what=f"upload {path.name} as {name}",
        )

    def _wait_processed(self, file: Any) -> Any:
        client = self.client()
        deadline = time.monotonic() + self.file_processing_timeout_s
        while file.status != "processed":
            if file.status == "error":
                raise FileProcessingError(
                    f"OpenAI could not process {file.filename} ({file.id}): "
                    f"{file.status_details or 'no details'}; fix the training file "
                    "(training_file's checks should have caught this) and re-run"
                )
            if time.monotonic() >= deadline:
                raise FileProcessingError(
                    f"{file.filename} ({file.id}) is still {file.status} after "
                    f"{self.file_processing_timeout_s:.0f}s; re-run later: "
                    "the uploaded file is reused, not uploaded again"
                )
            time.sleep(self.file_poll_interval_s)
            file = self._call(lambda file_id=file.id: client.files.retrieve(file_id), f"read file {file.id}")
        return file

    # -------------------------------------------------------------- calls
    def _post_once(self, call, *, find, what: str) -> Any:
        """A POST that must take effect once: SDK retries off; after an ambiguous failure, look first."""
        import openai

        client = self.client().with_options(max_retries=0)
        for attempt in range(self.max_retries + 1):
            try:
                return call(client)
            except (openai.RateLimitError, openai.ConflictError) as exc:  # refused: nothing was done
                error, headers = exc, exc.response.headers
            except (openai.InternalServerError, openai.APIConnectionError) as exc:  # maybe done, answer lost
                error = exc
                headers = getattr(getattr(exc, "response", None), "headers", None)
                found = find()
                if found is not None:
                    return found
            except openai.APIStatusError as exc:
                raise OpenAIBackendError(f"OpenAI refused to {what}: {_describe(exc)}") from exc
            if attempt < self.max_retries:
                time.sleep(retry_delay(headers, attempt))
        raise OpenAIBackendError(
            f"could not {what} after {self.max_retries + 1} attempts: {_describe(error)}"
        ) from error

    def _call(self, fn, what: str) -> Any:
        """A read with the SDK's own retries; a refusal becomes a clear error."""
        import openai

        try:
            return fn()
        except openai.APIStatusError as exc:
            raise OpenAIBackendError(f"OpenAI refused to {what}: {_describe(exc)}") from exc

    def _newest(self, pages) -> list[dict[str, Any]]:
        """The newest `max_events` items of a newest-first paginated listing, oldest first."""
        items = []
        for item in pages:
            items.append(item.model_dump())
            if len(items) >= self.max_events:
                break
        return items[::-1]


def _describe(exc: Exception) -> str:
    """An SDK error as 'HTTP 400 code=…, param=…: message' (the request id when there is one)."""
    status = getattr(exc, "status_code", None)
    body = getattr(exc, "body", None)
    message = body.get("message") if isinstance(body, dict) else None
    parts = [f"HTTP {status}" if status else type(exc).__name__]
    if getattr(exc, "code", None):
        parts.append(f"code={exc.code}")
    if getattr(exc, "param", None):
        parts.append(f"param={exc.param}")
    request_id = getattr(exc, "request_id", None)
    text = " ".join(parts) + f": {message or exc}"
    return text + (f" (request {request_id})" if request_id else "")
