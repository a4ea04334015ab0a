"""The rollout record the product reads: which model serves a target, and to what share of users.

One JSON file per target, `FLYWHEEL_HOME/rollouts/<target>.json`, written atomically (readers
see the old or the new file, never half of one) each time `production_model`, `flywheel promote`
or `flywheel rollback` changes what serves; the table `fw_rollouts` holds the same row. The format
(`schema_version` 1):

    {
      "schema_version": 1,
      "target": "page_builder",
      "rollout_id": "ro_3f9c2a7d41b0",          # changes whenever champion, challenger or share change
      "champion":   {"model": "/…/jobs/local-…/model", "backend": "huggingface",
                     "job_id": "local-…", "dataset_version": "v-…"},
      "challenger": {"model": "…", "backend": "…", "job_id": "…", "dataset_version": "…"} | null,
      "challenger_share": 0.1,                  # 0 when there is no challenger
      "updated_at": "2026-12-02T08:00:00.123456Z"
    }

`model` is what the product calls: a local path or a provider model id. The base model (nothing
promoted yet) has `job_id` and `dataset_version` null.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ModelRef:
    """A model that can serve: what to call (`model`), through which backend, trained by which job on which data."""

    model: str
    backend: str
    job_id: str | None = None
    dataset_version: str | None = None

    @property
    def is_base(self) -> bool:
        return self.job_id is None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, where: str = "model") -> ModelRef:
        if not isinstance(data, dict):
            raise ValueError(f"{where}: expected an object with model, backend, job_id, dataset_version")
        missing = [k for k in ("model", "backend") if not isinstance(data.get(k), str) or not data.get(k)]
        if missing:
            raise ValueError(f"{where}: field(s) {', '.join(missing)} missing or not text")
        unknown = set(data) - {"model", "backend", "job_id", "dataset_version"}
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        return cls(data["model"], data["backend"], data.get("job_id"), data.get("dataset_version"))

    @classmethod
    def from_job(cls, row: dict[str, Any]) -> ModelRef:
        """The trained model of a model-registry row (`pipeline.finetune.registry.get_job`); it must have succeeded."""
        if row.get("status") != "succeeded":
            raise ValueError(
                f"job {row.get('job_id')!r} of target {row.get('target')!r} is {row.get('status')!r}, not succeeded: "
                "only a finished model can serve"
            )
        if not row.get("result_model"):
            raise ValueError(f"job {row.get('job_id')!r} succeeded but recorded no result_model")
        return cls(row["result_model"], row["backend"], row["job_id"], row["dataset_version"])


def base_ref(target: Any) -> ModelRef:
    """The target's base model as a servable reference (a `pkg:` model resolved to its local path)."""
    from pipeline.backends.packaged_models import is_packaged, resolve_base_model

    model = resolve_base_model(target.base_model) if is_packaged(target.base_model) else target.base_model
    return ModelRef(model, target.backend)


@dataclass(frozen=True)
class Rollout:
    """What serves a target now: the champion, an optional challenger and its share of users."""

    target: str
    rollout_id: str
    champion: ModelRef
    challenger: ModelRef | None
    challenger_share: float
    updated_at: str

    def __post_init__(self) -> None:
        if self.challenger is None and self.challenger_share != 0:
            raise ValueError(f"rollout {self.rollout_id}: challenger_share is {self.challenger_share} but there is no challenger")
        if self.challenger is not None and not 0 < self.challenger_share < 1:
            raise ValueError(f"rollout {self.rollout_id}: challenger_share must be in (0, 1), not {self.challenger_share}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "target": self.target,
            "rollout_id": self.rollout_id,
            "champion": self.champion.as_dict(),
            "challenger": None if self.challenger is None else self.challenger.as_dict(),
            "challenger_share": self.challenger_share,
            "updated_at": self.updated_at,
        }

    @classmethod
    def from_dict(cls, data: Any, where: str = "rollout") -> Rollout:
        if not isinstance(data, dict):
            raise ValueError(f"{where}: not a JSON object")
        if data.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"{where}: schema_version {data.get('schema_version')!r}, this code reads {SCHEMA_VERSION}")
        for key in ("target", "rollout_id", "updated_at"):
            if not isinstance(data.get(key), str):
                raise ValueError(f"{where}: field {key!r} missing or not text")
        share = data.get("challenger_share")
        if not isinstance(share, int | float) or isinstance(share, bool):
            raise ValueError(f"{where}: field 'challenger_share' missing or not a number")
        challenger = data.get("challenger")
        try:
            return cls(
                target=data["target"],
                rollout_id=data["rollout_id"],
                champion=ModelRef.from_dict(data.get("champion"), f"{where}: champion"),
                challenger=None if challenger is None else ModelRef.from_dict(challenger, f"{where}: challenger"),
                challenger_share=float(share),
                updated_at=data["updated_at"],
            )
        except ValueError as exc:
            message = str(exc)
            raise ValueError(message if message.startswith(where) else f"{where}: {message}") from None


def rollouts_dir(home: Path | None = None) -> Path:
    from pipeline.core.settings import flywheel_home

    path = (home or flywheel_home()) / "rollouts"
    path.mkdir(parents=True, exist_ok=True)
    return path


def rollout_path(target: str, home: Path | None = None) -> Path:
    """`FLYWHEEL_HOME/rollouts/<target>.json` (`rollouts/<family>/<org_id>.json` for a family member)."""
    return rollouts_dir(home) / f"{target}.json"


def write_rollout_file(rollout: Rollout, home: Path | None = None) -> Path:
    """Write the target's rollout file atomically; returns its path."""
    from pipeline.core.artifacts import write_atomic

    path = rollout_path(rollout.target, home)
    path.parent.mkdir(parents=True, exist_ok=True)  # a family member's file sits in its family's folder
    write_atomic(path, json.dumps(rollout.as_dict(), indent=2, sort_keys=True) + "\n")
    return path


def read_rollout_file(path: Path) -> Rollout:
    """Parse and validate one rollout file; errors name the file and the field."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    return Rollout.from_dict(data, str(path))
