"""The interface every fine-tune backend implements, and the job records they share.

A backend is a `dg.ConfigurableResource`. Two kinds, one interface:

- **hosted** (OpenAI, Hugging Face Jobs): `submit` returns as soon as the provider accepted the
  job; the job-status sensor calls `status` until it ends, then `result`. A step never waits on
  an outside service.
- **local** (`trains_locally`: sentence-transformers, Hugging Face on this machine): `train` runs
  the training in the calling Dagster step (compute, not waiting) and returns its final status;
  the step's pool, retry policy and run termination govern it.

Both are idempotent per (target, dataset version, settings): a version that already has a live
or succeeded job is re-attached instead of trained (and paid) twice.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

import dagster as dg


class JobState(StrEnum):
    VALIDATING = "validating_files"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


@dataclass(frozen=True)
class FineTuneRequest:
    """Everything a backend needs to train one model from one dataset version."""

    target: str
    dataset_version: str
    method: str  # sft | dpo | embedding
    base_model: str
    train_file: str  # path to the training file in the backend's format
    validation_file: str | None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    suffix: str | None = None
    seed: int = 42
    output_dir: str | None = None  # local backends write the model here

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class JobError:
    code: str
    message: str
    param: str | None = None


@dataclass
class JobStatus:
    """A backend's view of one job at one moment."""

    job_id: str
    state: JobState
    backend: str
    result_model: str | None = None  # provider model id or local path, once succeeded
    trained_tokens: int | None = None
    cost_usd: float | None = None
    error: JobError | None = None
    metrics: dict[str, Any] = field(default_factory=dict)  # train_loss, valid_loss, token_accuracy, step
    events: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    created_at: str | None = None
    finished_at: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def terminal(self) -> bool:
        return JobState(self.state).terminal


@dataclass(frozen=True)
class TrainedModel:
    """What a succeeded job produced: a provider model id or a local directory."""

    job_id: str
    model: str
    backend: str
    local_path: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)


class FineTuneBackend(dg.ConfigurableResource, ABC):
    """validate / submit or train / status / cancel / result: the whole contract between Flywheel and a trainer."""

    @property
    @abstractmethod
    def name(self) -> str: ...

    @property
    def trains_locally(self) -> bool:
        """True when `train` runs the job in the calling step; False when `submit` hands it to a provider."""
        return False

    def validate(self, request: FineTuneRequest) -> None:  # noqa: B027 - optional hook, no-op by default
        """Fail early, with the reason, on what would fail the job later (hyper-parameters, files, model)."""

    def train(self, request: FineTuneRequest, on_progress: Callable[[JobStatus], None] | None = None) -> JobStatus:
        """Local backends: train here and return the succeeded status (raises after recording a failure)."""
        raise NotImplementedError(f"the {self.name} backend is hosted: it submits jobs, it does not train in a step")

    @abstractmethod
    def submit(self, request: FineTuneRequest) -> JobStatus:
        """Start (or re-attach to) the job for this dataset version; returns without waiting."""

    @abstractmethod
    def status(self, job_id: str) -> JobStatus:
        """The job's current state, metrics, events and checkpoints."""

    @abstractmethod
    def cancel(self, job_id: str) -> JobStatus:
        """Ask the backend to stop the job; returns its state afterwards."""

    @abstractmethod
    def result(self, job_id: str) -> TrainedModel:
        """The trained model of a succeeded job; raises if the job did not succeed."""
