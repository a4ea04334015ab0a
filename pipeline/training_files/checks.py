"""Blocking checks on `training_file`: nothing reaches a paid backend unless all of them pass.

The checks are partitioned like the asset (one result per target in the UI). Dagster 1.13 marks a
`partitions_def` on an asset check as a preview feature and warns at import; the warning is
silenced here, for these definitions only, on purpose.
"""

from typing import Any

import dagster as dg

from pipeline.backends.huggingface_backend import HuggingFaceBackend
from pipeline.core.artifacts import read_manifest
from pipeline.core.partitions import target_check
from pipeline.core.targets import get_target
from pipeline.training_files import validate
from pipeline.training_files.assets import training_file


def _blocking_check(fn):
    """A blocking, partitioned asset check on training_file (ERROR severity on failure)."""
    return target_check(asset=training_file, blocking=True)(fn)


def _result(gate: validate.GateResult, version: str) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=gate.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=gate.description,
        metadata={"dataset_version": version, **gate.metadata},
    )


@_blocking_check
def training_file_format(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    """Every record of every format passes the OpenAI cookbook's format checks, DPO and TRL rules."""
    manifest = read_manifest(context.partition_key)
    return _result(validate.format_gate(manifest), manifest["dataset_version"])


@_blocking_check
def training_file_no_duplicates_or_overlap(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    """No duplicate examples, and no prompt in both the training and the validation file."""
    manifest = read_manifest(context.partition_key)
    return _result(validate.uniqueness_gate(manifest), manifest["dataset_version"])


@_blocking_check
def training_file_tokens_and_size(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    """Every example under the token limit, at least 10 examples and the target's min_examples."""
    target = get_target(context.partition_key)
    manifest = read_manifest(context.partition_key)
    gate = validate.size_gate(
        manifest, min_examples=target.min_examples, max_tokens=target.training_file.max_tokens_per_example
    )
    return _result(gate, manifest["dataset_version"])


@_blocking_check
def training_file_cost_within_budget(
    context: dg.AssetCheckExecutionContext, huggingface_backend: HuggingFaceBackend
) -> dg.AssetCheckResult:
    """The estimated training cost is known and within the target's training_file.budget_usd
    (per token for OpenAI, per hour of hardware for Hugging Face Jobs, 0 on this machine)."""
    target = get_target(context.partition_key)
    manifest = read_manifest(context.partition_key)
    remote = None
    if target.backend == "huggingface" and huggingface_backend.remote:
        try:
            remote = remote_cost(manifest, target.hyperparameters, huggingface_backend)
        except ValueError as exc:  # the trainer would refuse them too: say so here, before any spend
            gate = validate.GateResult(False, f"The cost of the remote run cannot be estimated: {exc}.", {})
            return _result(gate, manifest["dataset_version"])
    return _result(validate.cost_gate(manifest, remote), manifest["dataset_version"])


def remote_cost(manifest: dict[str, Any], hyperparameters: dict[str, Any], backend: HuggingFaceBackend) -> dict:
    """`validate.estimate_remote_cost` for the backend's Jobs flavour and timeout and the trainer's steps."""
    from pipeline.backends.hf_train import HFHyperparameters

    hp = HFHyperparameters.from_dict(hyperparameters)
    return validate.estimate_remote_cost(
        manifest["cost"],
        flavor=backend.remote_flavor,
        timeout=backend.remote_timeout,
        method=manifest["method"],
        max_steps=hp.max_steps,
        epochs=hp.num_train_epochs,
        examples_per_step=hp.per_device_train_batch_size * hp.gradient_accumulation_steps,
        max_length=hp.max_length,
    )


TRAINING_FILE_CHECKS = [
    training_file_format,
    training_file_no_duplicates_or_overlap,
    training_file_tokens_and_size,
    training_file_cost_within_budget,
]
