"""The Hugging Face backend: LoRA fine-tuning with transformers + PEFT + TRL, here or on Hub hardware.

Local (default): the job trains inside the `fine_tune_job` asset's `train_locally` step
(`local_training`, trainer `train.train`) under `FLYWHEEL_HOME/<target>/jobs/local-hf-…/`, on the
GPU when there is one and on the CPU otherwise; a retried step resumes from the last checkpoint.
Remote (`remote=True`): the same trainer runs on Hugging Face hardware through the Jobs API
(`HfApi.run_job`), submitted by the asset and polled by the job-status sensor; `remote`
documents what is uploaded and how results come back, and the local job folder keeps the record
(`remote.json`) and, after `result`, the downloaded adapter.

Either way the job id is derived from the target, dataset version, base model, method,
hyper-parameters and seed: asking for the same request again re-attaches to the live or
succeeded job instead of training (and paying) twice; a failed or cancelled one starts a new
attempt. The Hub token (`token`, from `dg.EnvVar("HF_TOKEN")`) is set in the training step's
environment or passed as a Jobs secret; it is never written to disk, logged, or put in metadata.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pipeline.backends import local_training
from pipeline.backends.base import (
    FineTuneBackend,
    FineTuneRequest,
    JobError,
    JobState,
    JobStatus,
    TrainedModel,
)
from pipeline.backends.huggingface.remote import DEFAULT_IMAGE
from pipeline.backends.sentence_transformers.backend import find_local_job, local_job_id, require_files
from pipeline.core.artifacts import jobs_dir
from pipeline.core.canonical import now_iso

LOCAL_PREFIX = "local-hf-"
REMOTE_PREFIX = "remote-hf-"
REMOTE_RECORD = "remote.json"

#: Jobs API stage -> Flywheel job state
STAGE_STATE = {
    "SCHEDULING": JobState.QUEUED,
    "RUNNING": JobState.RUNNING,
    "COMPLETED": JobState.SUCCEEDED,
    "ERROR": JobState.FAILED,
    "CANCELED": JobState.CANCELLED,
    "DELETED": JobState.CANCELLED,
}
LIVE_OR_DONE = ("SCHEDULING", "RUNNING", "COMPLETED")


@contextlib.contextmanager
def _scoped_env(**values: str | None) -> Iterator[None]:
    """Set environment variables for the duration of a block (the trainer reads HF_TOKEN for pushes)."""
    saved = {k: os.environ.get(k) for k in values}
    try:
        for key, value in values.items():
            if value:
                os.environ[key] = value
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class HuggingFaceBackend(FineTuneBackend):
    """LoRA SFT/DPO with TRL on this machine (GPU or CPU), or on Hugging Face hardware through the Jobs API."""

    token: str | None = None  # dg.EnvVar("HF_TOKEN"): pushes, private base models, remote jobs
    endpoint: str | None = None  # Hub URL (mirrors, tests); None: huggingface_hub's default / HF_ENDPOINT
    push_to_hub_repo: str | None = None  # e.g. "acme/flywheel-{target}"; None: keep the model local
    hub_private: bool = True
    merge_adapters: bool = False  # also save the LoRA merged into a full model
    remote: bool = False  # train through the Jobs API instead of on this machine
    remote_flavor: str = "a10g-small"
    remote_image: str = DEFAULT_IMAGE  # any image with Python >= 3.11 and uv
    remote_timeout: str = "4h"
    remote_namespace: str | None = None  # None: the token's user
    remote_repo: str | None = None  # private dataset repo for job inputs/outputs; None: <namespace>/flywheel-jobs
    remote_price_per_hour_usd: float | None = None  # the flavor's price, for the job's cost; None: unknown
    home: str = ""  # where the target folders live; empty: FLYWHEEL_HOME

    @property
    def name(self) -> str:
        return "huggingface"

    # ------------------------------------------------------------------ shared
    def _jobs_root(self, target: str) -> Path:
        return Path(self.home) / target / "jobs" if self.home else jobs_dir(target)

    def _options(self, request: FineTuneRequest) -> dict[str, Any]:
        repo = self.push_to_hub_repo.format(target=request.target) if self.push_to_hub_repo else None
        return {"merge_adapters": self.merge_adapters, "push_to_hub_repo": repo,
                "hub_private": self.hub_private, "endpoint": self.endpoint}

    def _api(self) -> Any:
        from huggingface_hub import HfApi

        return HfApi(endpoint=self.endpoint or None, token=self.token or None)

    def validate(self, request: FineTuneRequest) -> None:
        """Fail in the submitting step, with the reason, on what would fail the job later."""
        from pipeline.backends.huggingface import models as hf_models
        from pipeline.backends.huggingface.config import HFHyperparameters

        if request.method not in ("sft", "dpo"):
            raise ValueError(f"the huggingface backend trains sft or dpo, not {request.method!r}")
        HFHyperparameters.from_dict(request.hyperparameters)
        require_files(request)
        hf_models.resolve(request.base_model)
        if self.push_to_hub_repo and "/" not in self._options(request)["push_to_hub_repo"]:
            raise ValueError(f"push_to_hub_repo must be 'namespace/name', got {self.push_to_hub_repo!r}")

    @property
    def trains_locally(self) -> bool:
        return not self.remote

    def job_dir(self, request: FineTuneRequest) -> Path:
        prefix = REMOTE_PREFIX if self.remote else LOCAL_PREFIX
        return self._jobs_root(request.target) / local_job_id(prefix, request)

    def train(self, request: FineTuneRequest, on_progress: Callable[[JobStatus], None] | None = None) -> JobStatus:
        """Train the LoRA adapter in this process (the `train_locally` step); resumes from the last checkpoint."""
        from pipeline.backends.huggingface.config import HFOptions
        from pipeline.backends.huggingface.train import train

        if self.remote:
            raise NotImplementedError("this huggingface backend trains remotely (remote=True): use submit()")
        self.validate(request)
        job_dir = self.job_dir(request)
        job_dir.mkdir(parents=True, exist_ok=True)
        HFOptions(**self._options(request)).write(job_dir)
        with _scoped_env(HF_TOKEN=self.token):
            return local_training.run_local_training(job_dir, "huggingface", train, request, self.name,
                                                     on_progress=on_progress)

    def submit(self, request: FineTuneRequest) -> JobStatus:
        if not self.remote:
            raise NotImplementedError(
                "the huggingface backend trains on this machine in the fine_tune_job step (train_locally); "
                "set remote: true to submit to Hugging Face Jobs"
            )
        self.validate(request)
        return self._submit_remote(request)

    def status(self, job_id: str) -> JobStatus:
        if job_id.startswith(REMOTE_PREFIX):
            return self._remote_status(find_local_job(job_id, self.home))
        return local_training.to_job_status(local_training.read_status(find_local_job(job_id, self.home)), self.name)

    def cancel(self, job_id: str) -> JobStatus:
        if not job_id.startswith(REMOTE_PREFIX):
            raise NotImplementedError(
                f"{job_id} trains inside a Dagster step: cancel it by terminating its run "
                "(the cancel_fine_tune_job job and `flywheel jobs cancel` do that)"
            )
        record = self._read_record(find_local_job(job_id, self.home))
        self._api().cancel_job(job_id=record["hub_job_id"], namespace=record["namespace"])
        return self._remote_status(find_local_job(job_id, self.home))

    def result(self, job_id: str) -> TrainedModel:
        job = self.status(job_id)
        if job.state is not JobState.SUCCEEDED or not job.result_model:
            detail = f": {job.error.code}: {job.error.message}" if job.error else ""
            raise RuntimeError(f"job {job_id} is {job.state.value}, it has no model{detail}")
        local_path = job.result_model
        job_dir = find_local_job(job_id, self.home)
        if job_id.startswith(REMOTE_PREFIX):
            local_path = self._download_outputs(job_dir, job.result_model)
            hub = job.details.get("hub") or {}
        else:
            hub = (local_training.read_status(job_dir).get("result") or {}).get("hub") or {}
        metrics = dict(job.metrics)
        if hub:
            metrics.update({"hub_repo": hub.get("repo_id"), "hub_revision": hub.get("revision")})
        return TrainedModel(job_id=job_id, model=local_path, backend=self.name, local_path=local_path,
                            metrics=metrics)

    def request_of(self, job_id: str) -> FineTuneRequest:
        """The request a job was submitted with."""
        job_dir = find_local_job(job_id, self.home)
        spec = json.loads((job_dir / local_training.REQUEST_FILE).read_text(encoding="utf-8"))
        return FineTuneRequest(**spec["request"])

    # ------------------------------------------------------------------ remote (Jobs API)
    def _read_record(self, job_dir: Path) -> dict[str, Any]:
        path = job_dir / REMOTE_RECORD
        if not path.exists():
            raise KeyError(f"{job_dir.name} has no {REMOTE_RECORD}: it was never submitted to the Jobs API")
        return json.loads(path.read_text(encoding="utf-8"))

    def _write_record(self, job_dir: Path, record: dict[str, Any]) -> None:
        local_training.write_json_atomic(job_dir / REMOTE_RECORD, record)

    def _submit_remote(self, request: FineTuneRequest) -> JobStatus:
        from huggingface_hub import get_token

        from pipeline.backends.huggingface import remote as hf_remote

        token = self.token or get_token()
        if not token:
            raise PermissionError("remote training needs a Hugging Face token: set HF_TOKEN")
        api = self._api()
        namespace = self.remote_namespace or api.whoami(token=token)["name"]
        job_id = local_job_id(REMOTE_PREFIX, request)
        job_dir = self._jobs_root(request.target) / job_id
        job_dir.mkdir(parents=True, exist_ok=True)
        record = json.loads((job_dir / REMOTE_RECORD).read_text()) if (job_dir / REMOTE_RECORD).exists() else None
        if record is not None:
            info = api.inspect_job(job_id=record["hub_job_id"], namespace=record["namespace"])
            if info.status.stage in LIVE_OR_DONE:
                return self._remote_status(job_dir)
        else:  # no local record (a lost FLYWHEEL_HOME, a crash after run_job): ask the Hub by label
            found = [j for j in api.list_jobs(labels={"flywheel-job": job_id}, namespace=namespace)
                     if j.status.stage in LIVE_OR_DONE]
            if found:
                info = max(found, key=lambda j: j.created_at.timestamp() if j.created_at else 0.0)
                self._write_record(job_dir, {
                    "hub_job_id": info.id, "namespace": namespace, "url": info.url, "attempt": 1,
                    "repo": (info.environment or {}).get("FLYWHEEL_JOB_REPO"),
                    "revision": (info.environment or {}).get("FLYWHEEL_JOB_REVISION"),
                    "reattached": True,
                })
                self._write_request(job_dir, job_id, request)
                return self._remote_status(job_dir)
        repo = self.remote_repo or f"{namespace}/flywheel-jobs"
        revision = hf_remote.upload_inputs(api, repo, job_id, request, self._options(request))
        env = {"FLYWHEEL_JOB_REPO": repo, "FLYWHEEL_JOB_REVISION": revision, "PYTHONUNBUFFERED": "1"}
        if self.endpoint:
            env["HF_ENDPOINT"] = self.endpoint
        info = api.run_job(
            image=self.remote_image,
            command=hf_remote.job_command(job_id, request.base_model),
            env=env,
            secrets={"HF_TOKEN": token},
            flavor=self.remote_flavor,
            timeout=self.remote_timeout,
            labels={"flywheel-job": job_id, "flywheel-target": request.target,
                    "flywheel-dataset-version": request.dataset_version},
            namespace=namespace,
        )
        self._write_request(job_dir, job_id, request)
        self._write_record(job_dir, {
            "hub_job_id": info.id, "namespace": namespace, "url": info.url, "repo": repo, "revision": revision,
            "flavor": self.remote_flavor, "image": self.remote_image,
            "attempt": int((record or {}).get("attempt") or 0) + 1,
            "submitted_at": now_iso(),
        })
        return self._remote_status(job_dir)

    def _write_request(self, job_dir: Path, job_id: str, request: FineTuneRequest) -> None:
        local_training.write_json_atomic(job_dir / local_training.REQUEST_FILE,
                                     {"job_id": job_id, "trainer": "huggingface-remote", "request": request.as_dict()})

    def _remote_status(self, job_dir: Path) -> JobStatus:
        from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError

        from pipeline.backends.huggingface import remote as hf_remote

        record = self._read_record(job_dir)
        api = self._api()
        info = api.inspect_job(job_id=record["hub_job_id"], namespace=record["namespace"])
        stage = str(info.status.stage)
        state = STAGE_STATE.get(stage, JobState.RUNNING)
        progress: dict[str, Any] = {}
        try:
            progress = hf_remote.last_progress(
                list(api.fetch_job_logs(job_id=info.id, namespace=record["namespace"], follow=False, tail=500))
            )
        except HfHubHTTPError:  # logs are a convenience: the stage is authoritative
            progress = {}
        error, result = None, None
        folder = hf_remote.job_folder(job_dir.name)
        if stage == "COMPLETED":
            try:
                result = self._read_output(job_dir, record, f"{folder}/output/result.json")
            except EntryNotFoundError:
                state = JobState.FAILED
                error = JobError("no_result", f"the Hub job {info.id} completed without writing "
                                 f"{folder}/output/result.json to {record['repo']}; see its logs at {info.url}")
        elif stage == "ERROR":
            try:
                err = self._read_output(job_dir, record, f"{folder}/output/error.json")["error"]
                error = JobError(err.get("code") or "remote_error", err.get("message") or "", None)
            except EntryNotFoundError:
                error = JobError("remote_error", info.status.message or f"the Hub job failed; logs: {info.url}")
        running_secs = info.durations.running_secs if info.durations else None
        cost = None
        if running_secs is not None and self.remote_price_per_hour_usd is not None:
            cost = round(running_secs / 3600.0 * self.remote_price_per_hour_usd, 4)
        metrics = {**progress, **((result or {}).get("metrics") or {})}
        if running_secs is not None:
            metrics["running_secs"] = running_secs
        record.update({"last_stage": stage, "checked_at": now_iso()})
        self._write_record(job_dir, record)
        return JobStatus(
            job_id=job_dir.name,
            state=state,
            backend=self.name,
            result_model=(result or {}).get("model_path") if state is JobState.SUCCEEDED else None,
            trained_tokens=(result or {}).get("trained_tokens"),
            cost_usd=cost,
            error=error,
            metrics=metrics,
            events=[{"at": now_iso(), "kind": "stage", "message": f"{stage}: {info.status.message or ''}"}],
            created_at=info.created_at.isoformat() if info.created_at else None,
            finished_at=info.finished_at.isoformat() if info.finished_at else None,
            details={"hub_job_id": info.id, "url": info.url, "stage": stage, "flavor": info.flavor,
                     "repo": record.get("repo"), "attempt": record.get("attempt"),
                     "hub": (result or {}).get("hub")},
        )

    def _read_output(self, job_dir: Path, record: dict[str, Any], path_in_repo: str) -> dict[str, Any]:
        from huggingface_hub import hf_hub_download

        local = hf_hub_download(record["repo"], path_in_repo, repo_type="dataset", local_dir=str(job_dir / "hub"),
                                endpoint=self.endpoint or None, token=self.token or None, force_download=True)
        return json.loads(Path(local).read_text(encoding="utf-8"))

    def _download_outputs(self, job_dir: Path, model_rel: str) -> str:
        """Download the job's `output/` folder next to the record; returns the local model folder."""
        from huggingface_hub import snapshot_download

        from pipeline.backends.huggingface import remote as hf_remote

        record = self._read_record(job_dir)
        folder = hf_remote.job_folder(job_dir.name)
        snapshot_download(record["repo"], repo_type="dataset", allow_patterns=[f"{folder}/output/*"],
                          local_dir=str(job_dir / "hub"), endpoint=self.endpoint or None,
                          token=self.token or None)
        path = job_dir / "hub" / folder / model_rel
        if not path.is_dir():
            raise FileNotFoundError(f"the remote job's model {model_rel} was not in {record['repo']}/{folder}")
        return str(path)
