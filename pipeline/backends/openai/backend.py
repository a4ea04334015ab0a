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

import time
from pathlib import Path
from typing import Any

from pydantic import Field, PrivateAttr

from pipeline.backends.base import (
    FineTuneBackend,
    FineTuneRequest,
    JobState,
    JobStatus,
    TrainedModel,
)
from pipeline.backends.openai.protocol import (
    LIVE_STATUSES,
    META_TARGET,
    META_VERSION,
    REATTACH_STATUSES,
    FileProcessingError,
    JobNotSucceededError,
    OpenAIBackendError,
    default_suffix,
    file_sha256,
    is_our_job,
    job_metadata,
    job_status,
    method_body,
    openai_hyperparameters,
    retry_delay,
    upload_name,
)

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
