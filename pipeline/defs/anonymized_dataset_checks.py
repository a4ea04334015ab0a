"""Blocking asset checks on `anonymized_dataset` (ERROR severity): nothing downstream runs if one fails,
in this run or any later one (`gate_status`)."""

from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from pipeline.anonymize.records import ANONYMIZED_EXAMPLE_COLUMNS, ANONYMIZED_PAIR_COLUMNS
from pipeline.core.artifacts import anonymized_dir
from pipeline.core.resources import StoreResource
from pipeline.core.targets import get_target
from pipeline.defs.gate_results import check_result
from pipeline.defs.gate_status import latest_metadata
from pipeline.defs.partitions import target_check

if TYPE_CHECKING:  # pyarrow and the gates load when a check runs, not when the code location loads
    from pipeline.anonymize.gates import ParquetChunks


def _partition(context: dg.AssetCheckExecutionContext) -> str:
    return context.op_execution_context.partition_key


def memo_path(context: dg.AssetCheckExecutionContext, check: str) -> Path:
    """Where a check keeps the hashes of texts that passed it (`text_memo.py`), beside the target's versions."""
    return anonymized_dir(_partition(context)) / ".checks" / f"{check}.npz"


def load_anonymized(context: dg.AssetCheckExecutionContext) -> "tuple[str, ParquetChunks, ParquetChunks]":
    """The version of the latest materialization and its tables, read in chunks (empty where a file is missing)."""
    from pipeline.anonymize.gates import ParquetChunks

    meta = latest_metadata(context, "anonymized_dataset")
    return (str(meta.get("anonymized_version", "")),
            ParquetChunks(meta.get("examples_path"), ANONYMIZED_EXAMPLE_COLUMNS),
            ParquetChunks(meta.get("pairs_path"), ANONYMIZED_PAIR_COLUMNS))


@target_check(asset="anonymized_dataset", blocking=True)
def residual_pii_zero(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    """An independent strict-pattern scan finds no email, phone, card, IP, national id or IBAN."""
    version, examples, pairs = load_anonymized(context)
    from pipeline.anonymize import gates

    memo = gates.residual_memo(memo_path(context, "residual"))
    return check_result(gates.residual_pii(examples, pairs, memo), anonymized_version=version)


@target_check(asset="anonymized_dataset", blocking=True)
def opted_out_tenants_absent(
    context: dg.AssetCheckExecutionContext, store: StoreResource
) -> dg.AssetCheckResult:
    """No row, tenant hash or raw id of an opted-out tenant appears, and no raw id column."""
    version, examples, pairs = load_anonymized(context)
    from pipeline.anonymize import gates

    opted_out = store.get().opted_out_orgs()
    memo = gates.opted_out_memo(memo_path(context, "opted_out"), opted_out)
    return check_result(gates.opted_out_absent(examples, pairs, opted_out, memo), anonymized_version=version)


@target_check(asset="anonymized_dataset", blocking=True)
def min_examples_met(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    """The target has at least its `min_examples` (pairs for dpo and embedding targets)."""
    name = _partition(context)
    target = get_target(name)
    version, examples, pairs = load_anonymized(context)
    from pipeline.anonymize import gates

    return check_result(gates.enough_examples(examples, pairs, target.method, target.min_examples, name),
                        anonymized_version=version)


@target_check(asset="anonymized_dataset", blocking=True)
def columns_meet_expectations(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    """Great Expectations on the columns: non-null fields, value sets, score 0..10, text lengths."""
    name = _partition(context)
    version, examples, pairs = load_anonymized(context)
    from pipeline.anonymize import gates

    tasks = list(get_target(name).tasks)
    memo = gates.expectations_memo(memo_path(context, "expectations"), tasks)
    return check_result(gates.expectations(examples, pairs, tasks, memo), anonymized_version=version)
