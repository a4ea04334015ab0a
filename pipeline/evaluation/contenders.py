"""The models an evaluation compares: the base model, the champion in service, and the candidate.

Each is a `Contender`: its role, backend, the model a product would call (a provider id, a Hub
id, a `pkg:` spec or a local folder) and, for our own models, the folder to load. The champion is
the base model until a candidate is promoted; the same model is never run twice in one
evaluation (a champion that is the base shares its outputs).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pipeline.core.targets import Target


@dataclass(frozen=True)
class Contender:
    role: str  # base | champion | candidate
    backend: str
    model: str
    local_path: str | None = None
    job_id: str | None = None
    dataset_version: str | None = None

    @property
    def identity(self) -> tuple[str, str, str | None]:
        """What makes two contenders the same model (their outputs would be the same)."""
        return (self.backend, self.model, self.local_path)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def base_contender(target: Target) -> Contender:
    """The base model, named as the rollout names it (a `pkg:` model by its path), so a champion that is
    the base model is the same contender and runs once."""
    from pipeline.serving.rollout import base_ref

    return ref_contender(base_ref(target), "base")


def job_contender(row: dict[str, Any], role: str = "candidate") -> Contender:
    """A model from a succeeded registry row (`fw_model_registry`); raises naming the job otherwise."""
    if row.get("status") != "succeeded" or not row.get("result_model"):
        raise ValueError(
            f"job {row.get('job_id')} of {row.get('target')} is {row.get('status')}, not succeeded with a model: "
            "evaluation judges a model once its fine-tune job has succeeded"
        )
    from pipeline.serving.rollout import ModelRef

    contender = ref_contender(ModelRef.from_job(row), role)
    if row["backend"] == "sentence_transformers" and contender.local_path is None:
        raise FileNotFoundError(f"job {row['job_id']}: model folder {row['result_model']} is gone "
                                "(was FLYWHEEL_HOME moved or cleaned?)")
    return contender


def ref_contender(ref, role: str = "champion") -> Contender:
    """The contender of a serving `ModelRef` (pipeline.serving.rollout): the base model or a trained one."""
    local = ref.model if ref.backend in ("sentence_transformers", "huggingface") and ref.job_id and Path(ref.model).exists() else None
    return Contender(role=role, backend=ref.backend, model=ref.model, local_path=local, job_id=ref.job_id,
                     dataset_version=ref.dataset_version)
