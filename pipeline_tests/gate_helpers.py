"""Record in a Dagster instance what a run of an upstream asset would have recorded: a materialization of a
partition and its blocking checks' evaluations on it. For unit tests of one stage; the hand-off tests
materialize the real upstream assets instead."""

from __future__ import annotations

from typing import Any

import dagster as dg

from pipeline.defs.gate_status import BLOCKING_CHECKS


def record_materialization(
    instance: dg.DagsterInstance, asset: str, partition: str, version: str, metadata: dict[str, Any],
    *, checks_pass: bool | dict[str, bool] = True,
) -> int:
    """Report a materialization with `version` as its data version, then its blocking checks; returns its storage id."""
    from dagster._core.definitions.asset_checks.asset_check_evaluation import (
        AssetCheckEvaluationTargetMaterializationData,
    )

    instance.report_runless_asset_event(dg.AssetMaterialization(
        asset_key=asset, partition=partition, metadata=metadata, tags={"dagster/data_version": version},
    ))
    record = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition]), limit=1
    ).records[0]
    target = AssetCheckEvaluationTargetMaterializationData(
        storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp
    )
    for check in BLOCKING_CHECKS[asset]:
        passed = checks_pass if isinstance(checks_pass, bool) else checks_pass.get(check, True)
        instance.report_runless_asset_event(dg.AssetCheckEvaluation(
            asset_key=dg.AssetKey(asset), check_name=check, passed=passed, partition=partition,
            target_materialization_data=target, severity=dg.AssetCheckSeverity.ERROR,
            description=None if passed else f"{check} failed (recorded by a test)",
        ))
    return record.storage_id


def approve_anonymized(instance: dg.DagsterInstance, target: str, *, checks_pass: bool | dict[str, bool] = True) -> int:
    """An anonymized_dataset materialization of the tables the test wrote under `anonymized/` for `target`."""
    from pipeline.core.artifacts import anonymized_dir

    folder = anonymized_dir(target)
    return record_materialization(instance, "anonymized_dataset", target, "anon-test", {
        "anonymized_version": "anon-test",
        "examples_path": str(folder / "examples.parquet"),
        "pairs_path": str(folder / "pairs.parquet"),
    }, checks_pass=checks_pass)
