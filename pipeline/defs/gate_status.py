"""Gates that hold across runs: a stage uses an upstream version only if every blocking check passed on it.

Dagster's `blocking=True` stops downstream steps in the same run only. A later run that
materializes `training_file` or `fine_tune_job` alone would otherwise build on, train on or push a
dataset that failed its gates. So each stage asks Dagster's own records before it reads anything:

1. the latest materialization of the upstream asset's partition (`instance.fetch_materializations`),
   or the one a later stage recorded it was built from (by storage id);
2. for every blocking check of that asset, the evaluation that targeted *that* materialization
   (`AssetCheckEvaluation.target_materialization_data`), from the event log.

A missing or failed evaluation refuses the version, with the check's name, its run, its own
description and what to do. The version to read is the materialization's `data_version`, so the
files a stage opens are the ones the checks looked at. No bookkeeping of our own is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import dagster as dg

#: the blocking checks of each gated asset, by name (a test keeps this equal to the definitions)
BLOCKING_CHECKS: dict[str, tuple[str, ...]] = {
    "anonymized_dataset": (
        "residual_pii_zero",
        "opted_out_tenants_absent",
        "min_examples_met",
        "columns_meet_expectations",
    ),
    "training_file": (
        "training_file_format",
        "training_file_no_duplicates_or_overlap",
        "training_file_tokens_and_size",
        "training_file_cost_within_budget",
    ),
    "fine_tune_job": ("fine_tune_job_succeeded",),
    "evaluated_model": (
        "candidate_beats_champion",
        "no_task_regression",
        "json_validity_floor",
        "evaluation_upstream_gates_passed",
    ),
}
#: how many evaluations of one check per partition are searched for the one of a materialization
HISTORY_LIMIT = 50


@dataclass(frozen=True)
class ApprovedVersion:
    """A materialization whose blocking checks all passed: what a downstream stage may use."""

    asset: str
    partition: str
    version: str
    storage_id: int
    run_id: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def text(self, key: str) -> str:
        value = self.metadata.get(key)
        return "" if value is None else str(getattr(value, "value", value))


class GateRefused(Exception):
    """An upstream version did not pass its gates; the message says which check, in which run, and what to do."""


def _materialization(instance: dg.DagsterInstance, asset: str, partition: str, storage_id: int | None):
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey(asset),
            asset_partitions=[partition],
            **({"before_storage_id": storage_id + 1, "after_storage_id": storage_id - 1} if storage_id else {}),
        ),
        limit=1,
    ).records
    return records[0] if records else None


def _evaluation(instance: dg.DagsterInstance, asset: str, check: str, partition: str, storage_id: int):
    """The evaluation of `check` that targeted the materialization `storage_id` (the newest if several)."""
    from dagster._core.event_api import PartitionKeyFilter

    history = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey(asset), check), limit=HISTORY_LIMIT,
        partition_filter=PartitionKeyFilter(key=partition),
    )
    for record in history:  # newest first
        evaluation = record.evaluation
        target = evaluation.target_materialization_data if evaluation else None
        if target is not None and target.storage_id == storage_id:
            return record, evaluation
    return None, None


def approved_version(
    instance: dg.DagsterInstance, asset: str, partition: str, *, storage_id: int | None = None
) -> ApprovedVersion:
    """The latest (or the given) materialization of `asset` for `partition`, if all its blocking checks passed.

    Raises `GateRefused` naming the first check that failed or was never evaluated on it.
    """
    record = _materialization(instance, asset, partition, storage_id)
    if record is None:
        which = f"materialization {storage_id}" if storage_id else "no materialization"
        raise GateRefused(
            f"{asset} has {which} for {partition!r}" + (" any more" if storage_id else "")
            + f": materialize {asset} for partition {partition!r} (with its checks) first."
        )
    materialization = record.asset_materialization
    assert materialization is not None
    version = materialization.tags.get("dagster/data_version") if materialization.tags else None
    approved = ApprovedVersion(asset, partition, version or "", record.storage_id, record.run_id,
                               dict(materialization.metadata))
    for check in BLOCKING_CHECKS.get(asset, ()):
        execution, evaluation = _evaluation(instance, asset, check, partition, record.storage_id)
        if evaluation is None:
            raise GateRefused(
                f"blocking check {check} was never evaluated on {asset} {partition!r} version {approved.version!r} "
                f"(run {record.run_id}): a run skipped it. Re-materialize {asset} for {partition!r} with its checks "
                "(they run by default; do not exclude them), or execute the check on this materialization."
            )
        if not evaluation.passed:
            raise GateRefused(
                f"blocking check {check} failed on {asset} {partition!r} version {approved.version!r} "
                f"(run {execution.run_id}): {evaluation.description or 'see the check in the UI'} "
                f"Nothing is built, trained, pushed or promoted from this version: fix what the check says, "
                f"then re-materialize {asset} for {partition!r}; a version whose checks pass is accepted."
            )
    if not approved.version:
        raise GateRefused(f"{asset} {partition!r} materialization {record.storage_id} carries no data version: "
                          f"re-materialize {asset}.")
    return approved


def require_approved(context: Any, asset: str, *, storage_id: int | None = None) -> ApprovedVersion:
    """`approved_version` for the step's partition, as a `dg.Failure` that is not retried when refused."""
    try:
        approved = approved_version(context.instance, asset, context.partition_key, storage_id=storage_id)
    except GateRefused as refused:
        raise dg.Failure(description=str(refused), allow_retries=False,
                         metadata={"refused_upstream": asset, "partition": context.partition_key}) from None
    context.log.info(f"{asset} {context.partition_key} version {approved.version} passed "
                     f"{len(BLOCKING_CHECKS.get(asset, ()))} blocking checks (run {approved.run_id})")
    return approved


def latest_metadata(context: Any, asset: str) -> dict[str, Any]:
    """The metadata values of the latest materialization of `asset` for the check's partition (what it checks)."""
    partition = context.op_execution_context.partition_key if hasattr(context, "op_execution_context") else context.partition_key
    record = _materialization(context.instance, asset, partition, None)
    if record is None or record.asset_materialization is None:
        raise dg.Failure(description=f"{asset} has no materialization for {partition!r}: materialize it first.")
    return {k: getattr(v, "value", v) for k, v in record.asset_materialization.metadata.items()}


def require_approved_training_file(context: Any) -> tuple[ApprovedVersion, dict[str, Any]]:
    """The latest training-file version whose checks passed, built from an anonymized version whose checks
    passed too (re-verified on that very materialization), and its manifest."""
    from pipeline.core.artifacts import read_manifest

    approved = require_approved(context, "training_file")
    upstream = approved.text("anonymized_storage_id")
    if not upstream:
        raise dg.Failure(description=(
            f"training_file {context.partition_key!r} version {approved.version!r} does not record the anonymized "
            "version it was built from (built before gates held across runs): re-materialize training_file."
        ), allow_retries=False)
    require_approved(context, "anonymized_dataset", storage_id=int(upstream))
    return approved, read_manifest(context.partition_key, approved.version)


def training_file_records(instance: dg.DagsterInstance, partition: str, version: str, *, search: int = HISTORY_LIMIT) -> list:
    """The materializations of training-file `version` of `partition` among its last `search`, newest first."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("training_file"), asset_partitions=[partition]), limit=search
    ).records
    return [r for r in records if r.asset_materialization is not None
            and (r.asset_materialization.tags or {}).get("dagster/data_version") == version]


def version_watermark(instance: dg.DagsterInstance, partition: str, version: str) -> int | None:
    """The store's `accepted_seq` that training-file `version` was built through (None: unknown, built before it was recorded)."""
    for record in training_file_records(instance, partition, version):
        value = record.asset_materialization.metadata.get("source_seq_through")
        if value is not None:
            return int(getattr(value, "value", value))
    return None


def dataset_version_gates(instance: dg.DagsterInstance, partition: str, version: str, *, search: int = HISTORY_LIMIT) -> str | None:
    """None when the training-file `version` of `partition` and the anonymized version it came from passed
    every blocking check; else why not (the refusal's message). Used to re-verify a candidate's data."""
    matching = training_file_records(instance, partition, version, search=search)
    if not matching:
        return (f"training_file {partition!r} has no materialization of version {version!r} among its last {search}: "
                "the candidate's data cannot be re-verified")
    refusals = []
    for record in matching:  # a version re-materialized with passing checks is accepted
        try:
            approved = approved_version(instance, "training_file", partition, storage_id=record.storage_id)
            upstream = approved.text("anonymized_storage_id")
            if not upstream:
                raise GateRefused(f"training_file {partition!r} version {version!r} does not record its anonymized version")
            approved_version(instance, "anonymized_dataset", partition, storage_id=int(upstream))
            return None
        except GateRefused as refused:
            refusals.append(str(refused))
    return refusals[0]
