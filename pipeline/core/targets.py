"""Training targets: which interactions feed a model and how it is trained.

Targets are declared in one YAML file that a data engineer edits (`targets.yaml` at the project
root, or the file `FLYWHEEL_TARGETS` names). Adding a target is adding an entry there. The file is
validated strictly when the code location loads: a typo or a wrong type fails the load with the
file, line and field named, rather than training the wrong model.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TARGETS_FILE = PROJECT_ROOT / "targets.yaml"
TARGET_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
#: the fewest evaluation items that may promote a model, unless a target says otherwise
DEFAULT_MIN_EVAL_ITEMS = 30
#: org_ids that can stand in a family member's partition key `<family>/<org_id>` (and in a folder name)
MEMBER_ORG_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,127}$")
MEMBER_SEPARATOR = "/"

Method = Literal["sft", "dpo", "embedding"]
Backend = Literal["openai", "huggingface", "sentence_transformers"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScoringConfig(_Strict):
    """Weights of the 0..10 quality score; defaults follow the page-builder seed."""

    base: float = 0.0
    json_valid: float = 3.0
    json_invalid: float = -3.0
    thumbs_up: float = 3.0
    thumbs_down: float = -3.0
    accepted: float = 2.0
    accepted_with_edits: float = 1.0
    rejected: float = -3.0
    abandoned: float = -2.0
    regenerated: float = -2.0
    conversation_continued: float = 1.0
    #: a rating normalised to 0..1 adds `(r - 0.5) * 2 * rating` (so ±rating at the ends)
    rating: float = 2.0
    #: an edit changing at most this share of the response is light, above it heavy
    light_edit_max_share: float = 0.2
    light_edit: float = 0.0
    heavy_edit: float = -1.0
    saved: float = 3.0
    skipped: float = -1.0
    #: an item turned into a flashcard / clip: kept like a save
    snipped: float = 3.0
    #: a reviewer's label is ground truth: the example is kept at this score at least
    label_floor: float = 8.0
    #: examples scoring at least this are exported for training
    export_threshold: float = Field(5.0, ge=0, le=10)
    #: prompts whose estimated Jaccard similarity (character 5-grams) reaches this are near-duplicates;
    #: 1.0 collapses exact duplicates (after normalising case, whitespace, punctuation, digits) only
    near_duplicate_threshold: float = Field(0.8, gt=0, le=1)
    #: infer `abandoned` / `regenerated` from the log when a turn has no explicit outcome
    #: (`pipeline.curation.implicit`; an explicit outcome always wins; embedding targets infer nothing)
    infer_implicit: bool = True
    #: a turn without any feedback and no later turn in its conversation within this is abandoned
    abandon_after_minutes: float = Field(15.0, gt=0, le=7 * 24 * 60)
    #: the next turn within this asking a near-duplicate of the same prompt marks this one regenerated
    regenerate_within_minutes: float = Field(15.0, gt=0, le=24 * 60)
    #: rapidfuzz ratio (0..1) of the two normalised last user messages that counts as the same prompt
    regenerate_similarity: float = Field(0.9, gt=0, le=1)


class TrainingFileConfig(_Strict):
    validation_share: float = Field(0.1, ge=0.0, lt=0.5)
    seed: int = 42
    #: per-example token limit; the OpenAI default context of the fine-tunable chat models
    max_tokens_per_example: int = Field(16_385, gt=0)
    #: fails the cost gate when the estimated training cost exceeds it (USD)
    budget_usd: float = Field(50.0, ge=0)
    #: push each dataset version to this Hugging Face dataset repo (needs HF_TOKEN)
    push_to_hub: str | None = None


class GateConfig(_Strict):
    """Promotion gates and rollout (used by `evaluated_model` and `production_model`).

    Metrics are on a 0..1 scale, higher is better, so `margin` and `max_task_regression` are in
    the primary metric's own units (0.02 = two points of section accuracy, of chrF / 100, ...).
    """

    #: the candidate serves only if the lower bound of candidate − champion is at least this
    margin: float = Field(0.02, ge=0, le=1)
    #: share of JSON answers that parse and match the page schema, at least (json targets)
    json_validity_floor: float = Field(0.95, ge=0, le=1)
    #: a task regresses when its whole interval lies below −max_task_regression
    max_task_regression: float = Field(0.0, ge=0, le=1)
    #: fewer evaluation items than this cannot promote a model: below ~30 the 95% interval covers
    #: the truth less often than it says (82-88% at 10 items, bench/bootstrap_coverage.py)
    min_eval_items: int = Field(DEFAULT_MIN_EVAL_ITEMS, ge=2)
    #: at most this many items are evaluated per model (the first ones of a fixed, seeded order)
    max_eval_items: int = Field(200, ge=1)
    #: the interval's confidence level, resamples and seed of the paired bootstrap
    confidence: float = Field(0.95, gt=0.5, lt=1)
    bootstrap_resamples: int = Field(2_000, ge=100)
    seed: int = 0
    #: a frozen evaluation set a team curates (JSONL, the held-out items' form), relative to the
    #: targets file; used `beside` the held-out split (default) or `instead` of it
    eval_set: str | None = None
    eval_set_mode: Literal["beside", "instead"] = "beside"
    #: a passing candidate becomes the challenger at `canary_share` (true), or champion at once (false)
    canary: bool = True
    canary_share: float = Field(0.1, gt=0, lt=1)
    #: the shares the canary advances through; the first is `canary_share`, the last 1.0 (champion)
    canary_steps: tuple[float, ...] = (0.1, 0.5, 1.0)

    @model_validator(mode="before")
    @classmethod
    def _steps_from_share(cls, data: Any) -> Any:
        """A target that sets only `canary_share` advances from it through the default later steps."""
        if isinstance(data, dict) and "canary_share" in data and "canary_steps" not in data:
            share = data["canary_share"]
            if isinstance(share, int | float) and not isinstance(share, bool):
                data = {**data, "canary_steps": (share, *(s for s in (0.5, 1.0) if s > share))}
        return data

    @model_validator(mode="after")
    def _coherent(self) -> GateConfig:
        steps = self.canary_steps
        if not steps or any(not 0 < s <= 1 for s in steps) or any(a >= b for a, b in zip(steps, steps[1:], strict=False)):
            raise ValueError("canary_steps must be increasing shares in (0, 1]")
        if steps[-1] != 1.0:
            raise ValueError("canary_steps must end at 1.0 (the challenger becomes the champion)")
        if steps[0] != self.canary_share:
            raise ValueError(f"canary_steps must start at canary_share ({self.canary_share})")
        if self.min_eval_items > self.max_eval_items:
            raise ValueError(
                f"min_eval_items ({self.min_eval_items}) is above max_eval_items ({self.max_eval_items}): no evaluation "
                "could ever promote a model; lower min_eval_items too (knowing that a small evaluation decides by luck)"
            )
        if self.eval_set is not None and not self.eval_set.endswith(".jsonl"):
            raise ValueError("eval_set must name a JSONL file (ending in .jsonl)")
        if self.eval_set is None and self.eval_set_mode == "instead":
            raise ValueError("eval_set_mode 'instead' needs an eval_set")
        return self

    def eval_set_path(self, source: Path | None = None) -> Path | None:
        """The frozen evaluation set's path; a relative one is resolved against the folder of `source`
        (the targets file it was declared in; default: the active targets file)."""
        if self.eval_set is None:
            return None
        path = Path(self.eval_set).expanduser()
        return path if path.is_absolute() else ((source or targets_file()).parent / path).resolve()


class EvaluationConfig(_Strict):
    """How `evaluated_model` runs the target's models: the same inputs and decoding for all.

    Which items and how many, and the bootstrap, are promotion settings: see `GateConfig`.
    """

    #: json: answers are page JSON (parse rate, schema validity, section accuracy); text: chrF
    #: (SFT only; DPO targets are judged on preference accuracy, embedding targets on rankings)
    output: Literal["text", "json"] = "text"
    #: new tokens per generated answer
    max_new_tokens: int = Field(256, ge=1, le=8192)
    #: prompts per generation batch on our hardware
    batch_size: int = Field(8, ge=1)
    #: hosted calls in flight at once
    concurrency: int = Field(4, ge=1, le=64)

#: online metrics an experiment can judge on; each is a 0/1 outcome per interaction, averaged per user
#: (latency_ms is a number: the mean per user). See pipeline/experiments/metrics.py.
OnlineMetric = Literal[
    "accepted_rate", "approval_rate", "save_rate", "thumbs_up_rate",
    "thumbs_down_rate", "regenerate_rate", "abandon_rate", "invalid_json_rate", "latency_ms",
]


class OnlineConfig(_Strict):
    """The online experiment: what people did with each variant's answers, and when the canary moves."""

    #: the metric the challenger must improve to reach 100% (higher is better)
    primary: OnlineMetric = "accepted_rate"
    #: metrics that must not get worse (lower is better); a significantly worse one rolls back
    guardrails: tuple[OnlineMetric, ...] = ("thumbs_down_rate", "regenerate_rate", "abandon_rate", "invalid_json_rate")
    #: type-I error of each anytime-valid test (the chance a challenger with no effect is promoted is below this)
    alpha: float = Field(0.05, gt=0, lt=0.5)
    #: the sample-ratio-mismatch test's alpha: a split this unlikely under the configured shares stops the experiment
    srm_alpha: float = Field(0.001, gt=0, lt=0.5)
    #: each step lasts at least this long and has at least this many users per variant before it can advance
    min_days_per_step: float = Field(3.0, ge=0)
    min_users_per_variant: int = Field(200, ge=2)
    #: prior scale of the anytime-valid t-test (savvi's phi): the standardized effect size it is tuned to detect
    prior_scale: float = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _coherent(self) -> OnlineConfig:
        if self.primary in self.guardrails:
            raise ValueError(f"online.primary {self.primary!r} is also a guardrail: a metric is one or the other")
        if self.primary in HARMFUL_METRICS:
            raise ValueError(f"online.primary {self.primary!r} is a metric where lower is better; choose a guardrail "
                             "for it and a success rate as primary")
        bad = [g for g in self.guardrails if g not in HARMFUL_METRICS]
        if bad:
            raise ValueError(f"online.guardrails {bad} are success rates (higher is better); guardrails are harms: "
                             f"{sorted(HARMFUL_METRICS)}")
        return self


HARMFUL_METRICS = frozenset({"thumbs_down_rate", "regenerate_rate", "abandon_rate", "invalid_json_rate", "latency_ms"})


class PerTenant(_Strict):
    """A target that is a *family*: one model per tenant (org_id) that qualifies, with the family's settings."""

    #: only tenants whose organization record has one of these plans; omitted means every plan
    plans: tuple[str, ...] | None = None
    #: a tenant qualifies with at least this many examples at the target's export threshold;
    #: omitted means the target's own `min_examples`
    min_examples: int | None = Field(None, ge=1)

    @field_validator("plans")
    @classmethod
    def _plans(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and not value:
            raise ValueError("list at least one plan, or omit 'plans' for every plan")
        return value


class Target(_Strict):
    name: str
    description: str = ""
    tasks: tuple[str, ...]
    #: only these tenants (a per-tenant model); omitted means every tenant
    tenants: tuple[str, ...] | None = None
    exclude_tenants: tuple[str, ...] = ()
    method: Method = "sft"
    backend: Backend
    base_model: str
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    min_examples: int = Field(50, ge=1)
    retrain_threshold: int = Field(500, ge=1)
    #: the model in service is stale (check `model_in_service_fresh`) once it has served longer than this
    freshness_days: float = Field(14.0, gt=0)
    scoring: ScoringConfig = ScoringConfig()
    training_file: TrainingFileConfig = TrainingFileConfig()
    gates: GateConfig = GateConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    #: the online experiment that moves a challenger along gates.canary_steps (online_experiment)
    online: OnlineConfig = OnlineConfig()
    #: a family: one model per qualifying tenant, keyed `<name>/<org_id>` (see pipeline/core/families.py)
    per_tenant: PerTenant | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not TARGET_NAME.match(value):
            raise ValueError("a target name is lower-case letters, digits and '_', starting with a letter")
        return value

    @field_validator("tasks")
    @classmethod
    def _tasks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("a target needs at least one task")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> Target:
        if self.method == "embedding" and self.backend != "sentence_transformers":
            raise ValueError("method 'embedding' trains with backend 'sentence_transformers'")
        if self.backend == "sentence_transformers" and self.method != "embedding":
            raise ValueError("backend 'sentence_transformers' takes method 'embedding'")
        if self.tenants is not None and set(self.tenants) & set(self.exclude_tenants):
            raise ValueError("a tenant cannot be both in 'tenants' and in 'exclude_tenants'")
        return self

    @property
    def tenant_scoped(self) -> bool:
        """Whether this model reads named tenants only (a `tenants:` list, or a family member)."""
        return self.tenants is not None

    @property
    def is_family(self) -> bool:
        return self.per_tenant is not None

    @property
    def qualifying_examples(self) -> int:
        """How many examples at the export threshold a tenant needs to become a member of this family."""
        assert self.per_tenant is not None, f"{self.name} is not a family"
        return self.per_tenant.min_examples or self.min_examples

    @property
    def family(self) -> str | None:
        """The family a member belongs to (`avatar_chat` for `avatar_chat/avatar_luna`); None for other targets."""
        return self.name.split(MEMBER_SEPARATOR, 1)[0] if MEMBER_SEPARATOR in self.name else None

    @property
    def tenant(self) -> str | None:
        """The one tenant of a family member; None for other targets."""
        return self.tenants[0] if self.family is not None and self.tenants else None

    def member(self, org_id: str) -> Target:
        """The model of one tenant of this family: the family's settings, reading `org_id` only."""
        if self.per_tenant is None:
            raise ValueError(f"target {self.name!r} is not a family (it has no 'per_tenant:')")
        if not member_org_id_ok(org_id):
            raise ValueError(f"org_id {org_id!r} cannot be part of a partition key: {MEMBER_ORG_ID.pattern}")
        if org_id in self.exclude_tenants or (self.tenants is not None and org_id not in self.tenants):
            raise ValueError(f"tenant {org_id!r} is excluded from family {self.name!r} in the targets file")
        return self.model_copy(update={"name": member_key(self.name, org_id), "tenants": (org_id,), "per_tenant": None})

    def takes(self, org_id: str, task: str) -> bool:
        """Whether an interaction of this tenant and task feeds this target."""
        if task not in self.tasks or org_id in self.exclude_tenants:
            return False
        return self.tenants is None or org_id in self.tenants


def member_key(family: str, org_id: str) -> str:
    """The partition key of one family member: `<family>/<org_id>`, e.g. `avatar_chat/avatar_luna`."""
    return f"{family}{MEMBER_SEPARATOR}{org_id}"


def member_org_id_ok(org_id: str) -> bool:
    """Whether an org_id can be part of a partition key and a folder name (no '/', no '..', no spaces)."""
    return bool(MEMBER_ORG_ID.match(org_id)) and ".." not in org_id


class TargetsFileError(ValueError):
    """The targets file is malformed; the message names the file, line and field."""


def targets_file() -> Path:
    return Path(os.environ.get("FLYWHEEL_TARGETS", DEFAULT_TARGETS_FILE)).expanduser().resolve()


def parse_targets(text: str, source: str = "targets.yaml") -> dict[str, Target]:
    """Parse and validate a targets document; raises `TargetsFileError` naming line and field."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise TargetsFileError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict) or not isinstance(data.get("targets"), dict) or not data["targets"]:
        raise TargetsFileError(f"{source}:1: the file needs a top-level 'targets:' mapping with at least one target")
    unknown = set(data) - {"targets", "defaults"}
    if unknown:
        raise TargetsFileError(f"{source}:{_line(node, [sorted(unknown)[0]])}: unknown top-level key {sorted(unknown)[0]!r}")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise TargetsFileError(f"{source}:{_line(node, ['defaults'])}: 'defaults' must be a mapping")
    targets: dict[str, Target] = {}
    for name, body in data["targets"].items():
        if not isinstance(body, dict):
            raise TargetsFileError(f"{source}:{_line(node, ['targets', name])}: target {name!r} must be a mapping")
        merged = _deep_merge(defaults, body)
        try:
            targets[str(name)] = Target(name=str(name), **merged)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = [str(p) for p in err["loc"]]
            path = ["targets", name, *loc] if loc and loc[0] != "name" else ["targets", name]
            line = _line(node, path)
            field = ".".join(loc) or "(target)"
            raise TargetsFileError(
                f"{source}:{line}: target {name!r}, field '{field}': {err['msg']}"
            ) from None
    return targets


def _deep_merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "hyperparameters":
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _line(node: yaml.Node | None, path: list[Any]) -> int:
    """The 1-based line of the deepest node along `path` that exists in the YAML tree."""
    line = 1 if node is None else node.start_mark.line + 1
    current = node
    for part in path:
        if not isinstance(current, yaml.MappingNode):
            break
        for key_node, value_node in current.value:
            if str(key_node.value) == str(part):
                line = key_node.start_mark.line + 1
                current = value_node
                break
        else:
            break
    return line


@lru_cache(maxsize=8)
def _load_cached(path: str, mtime: float) -> dict[str, Target]:
    file = Path(path)
    if not file.exists():
        raise TargetsFileError(f"{path}: the targets file does not exist (set FLYWHEEL_TARGETS to its path)")
    return parse_targets(file.read_text(encoding="utf-8"), source=str(file))


def load_targets(path: Path | None = None) -> dict[str, Target]:
    """The declared targets by name (cached until the file changes)."""
    file = (path or targets_file()).resolve()
    mtime = file.stat().st_mtime if file.exists() else 0.0
    return _load_cached(str(file), mtime)


def get_target(name: str) -> Target:
    """The target a partition key names: a fixed target (`page_builder`) or a family member (`avatar_chat/org_1`)."""
    return resolve_target(load_targets(), name)


def resolve_target(targets: dict[str, Target], key: str) -> Target:
    family_name, sep, org_id = key.partition(MEMBER_SEPARATOR)
    if family_name not in targets:
        raise KeyError(f"unknown training target {key!r}; declared: {', '.join(sorted(targets))}")
    target = targets[family_name]
    if sep:
        if not target.is_family:
            raise KeyError(f"{key!r}: target {family_name!r} is not a family (no 'per_tenant:'), so it has no members")
        try:
            return target.member(org_id)
        except ValueError as exc:
            raise KeyError(f"{key!r}: {exc}") from None
    if target.is_family:
        raise KeyError(f"{key!r} is a family: its partitions are its members, '{family_name}/<org_id>'")
    return target
