"""Blocking checks on `training_file`: nothing reaches a backend, the Hub or promotion unless all of them
pass, in this run or any later one (`gate_status`). Each checks the version the latest
materialization wrote, and says which in its metadata."""

from typing import Any

import dagster as dg

from pipeline.backends.huggingface.backend import HuggingFaceBackend
from pipeline.backends.resource import FineTuneBackends
from pipeline.core.artifacts import read_manifest
from pipeline.core.gates import GateResult
from pipeline.core.targets import get_target
from pipeline.defs.gate_results import check_result
from pipeline.defs.gate_status import latest_metadata
from pipeline.defs.partitions import target_check
from pipeline.training_files import validate


def _blocking_check(fn):
    """A blocking, partitioned asset check on training_file (ERROR severity on failure)."""
    return target_check(asset="training_file", blocking=True)(fn)


def _manifest(context: dg.AssetCheckExecutionContext) -> dict:
    """The manifest of the version the latest materialization of this partition wrote."""
    version = latest_metadata(context, "training_file")["dataset_version"]
    return read_manifest(context.partition_key, str(version))


def _result(gate, version: str) -> dg.AssetCheckResult:
    return check_result(gate, dataset_version=version)


def _memo_dir(context: dg.AssetCheckExecutionContext):
    """The target's memo folder: the gates re-validate only record lines they have not seen."""
    from pipeline.training_files.memo import memo_dir

    return memo_dir(context.partition_key)


@_blocking_check
def training_file_format(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    """Every record of every format passes the OpenAI cookbook's format checks, DPO and TRL rules."""
    manifest = _manifest(context)
    return _result(validate.format_gate(manifest, memo_dir=_memo_dir(context)), manifest["dataset_version"])


@_blocking_check
def training_file_no_duplicates_or_overlap(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    """No duplicate examples, and no prompt in both the training and the validation file."""
    manifest = _manifest(context)
    return _result(validate.uniqueness_gate(manifest, memo_dir=_memo_dir(context)), manifest["dataset_version"])


@_blocking_check
def training_file_tokens_and_size(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    """Every example under the token limit, at least 10 examples and the target's min_examples."""
    target = get_target(context.partition_key)
    manifest = _manifest(context)
    gate = validate.size_gate(
        manifest, min_examples=target.min_examples, max_tokens=target.training_file.max_tokens_per_example,
        memo_dir=_memo_dir(context),
    )
    return _result(gate, manifest["dataset_version"])


@_blocking_check
def training_file_cost_within_budget(
    context: dg.AssetCheckExecutionContext, backends: FineTuneBackends
) -> dg.AssetCheckResult:
    """The estimated training cost is known and within the target's training_file.budget_usd
    (per token for OpenAI, per hour of hardware for Hugging Face Jobs, 0 on this machine)."""
    target = get_target(context.partition_key)
    manifest = _manifest(context)
    remote = None
    if target.backend == "huggingface" and backends.huggingface.remote:
        try:
            remote = remote_cost(manifest, target.hyperparameters, backends.huggingface)
        except ValueError as exc:  # the trainer would refuse them too: say so here, before any spend
            gate = GateResult(False, f"The cost of the remote run cannot be estimated: {exc}.", {})
            return _result(gate, manifest["dataset_version"])
    return _result(validate.cost_gate(manifest, remote), manifest["dataset_version"])


def remote_cost(manifest: dict[str, Any], hyperparameters: dict[str, Any], backend: HuggingFaceBackend) -> dict:
    """`validate.estimate_remote_cost` for the backend's Jobs flavour and timeout and the trainer's steps."""
    from pipeline.backends.huggingface.config import HFHyperparameters

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
