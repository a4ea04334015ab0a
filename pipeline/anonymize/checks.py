"""Blocking asset checks on `anonymized_dataset` (ERROR severity): nothing downstream runs if one fails."""

from typing import TYPE_CHECKING

import dagster as dg

from pipeline.anonymize.assets import anonymized_dataset
from pipeline.anonymize.records import ANONYMIZED_EXAMPLE_COLUMNS, ANONYMIZED_PAIR_COLUMNS
from pipeline.core.artifacts import anonymized_dir
from pipeline.core.partitions import target_check
from pipeline.core.resources import StoreResource
from pipeline.core.targets import get_target

if TYPE_CHECKING:  # pandas and the gates load when a check runs, not when the code location loads
    import pandas as pd

    from pipeline.anonymize.gates import GateResult


def _partition(context: dg.AssetCheckExecutionContext) -> str:
    return context.op_execution_context.partition_key


def load_anonymized(target: str) -> "tuple[pd.DataFrame, pd.DataFrame]":
    """The anonymized tables of a target (an empty table where a file is missing)."""
    import pandas as pd

    out = anonymized_dir(target)
    examples_path, pairs_path = out / "examples.parquet", out / "pairs.parquet"
    examples = (
        pd.read_parquet(examples_path)
        if examples_path.exists()
        else pd.DataFrame(columns=ANONYMIZED_EXAMPLE_COLUMNS)
    )
    pairs = (
        pd.read_parquet(pairs_path) if pairs_path.exists() else pd.DataFrame(columns=ANONYMIZED_PAIR_COLUMNS)
    )
    return examples, pairs


def _metadata_value(value):
    if isinstance(value, bool):
        return dg.MetadataValue.bool(value)
    if isinstance(value, int | float | str):
        return value
    return dg.MetadataValue.json(value)


def _result(gate: "GateResult") -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=gate.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=gate.description,
        metadata={key: _metadata_value(value) for key, value in gate.metadata.items()},
    )


@target_check(asset=anonymized_dataset, blocking=True)
def residual_pii_zero(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    """An independent strict-pattern scan finds no email, phone, card, IP, national id or IBAN."""
    examples, pairs = load_anonymized(_partition(context))
    from pipeline.anonymize import gates

    return _result(gates.residual_pii(examples, pairs))


@target_check(asset=anonymized_dataset, blocking=True)
def opted_out_tenants_absent(
    context: dg.AssetCheckExecutionContext, store: StoreResource
) -> dg.AssetCheckResult:
    """No row, tenant hash or raw id of an opted-out tenant appears, and no raw id column."""
    examples, pairs = load_anonymized(_partition(context))
    from pipeline.anonymize import gates

    return _result(gates.opted_out_absent(examples, pairs, store.get().opted_out_orgs()))


@target_check(asset=anonymized_dataset, blocking=True)
def min_examples_met(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    """The target has at least its `min_examples` (pairs for dpo and embedding targets)."""
    name = _partition(context)
    target = get_target(name)
    examples, pairs = load_anonymized(name)
    from pipeline.anonymize import gates

    return _result(gates.enough_examples(examples, pairs, target.method, target.min_examples, name))


@target_check(asset=anonymized_dataset, blocking=True)
def columns_meet_expectations(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    """Great Expectations on the columns: non-null fields, value sets, score 0..10, text lengths."""
    name = _partition(context)
    examples, pairs = load_anonymized(name)
    from pipeline.anonymize import gates

    return _result(gates.expectations(examples, pairs, list(get_target(name).tasks)))


ANONYMIZE_CHECKS = [residual_pii_zero, opted_out_tenants_absent, min_examples_met, columns_meet_expectations]
