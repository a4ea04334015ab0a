"""Record in a Dagster instance what a run of an upstream asset records: a materialization of a partition
and its blocking checks' evaluations on it, by running a stand-in asset with the same key and checks.
For unit tests of one stage; the hand-off tests materialize the real upstream assets instead."""

from __future__ import annotations

from typing import Any

import dagster as dg

from pipeline.defs.gate_status import BLOCKING_CHECKS


def record_materialization(
    instance: dg.DagsterInstance, asset: str, partition: str, version: str, metadata: dict[str, Any],
    *, checks_pass: bool | dict[str, bool] = True,
) -> int:
    """Run a stand-in of `asset` (same key, same check names) in `instance`: a real run records the
    materialization with `version` as its data version and each blocking check's evaluation on it.
    Returns the materialization's storage id."""
    checks = BLOCKING_CHECKS[asset]

    def passed(check: str) -> bool:
        return checks_pass if isinstance(checks_pass, bool) else checks_pass.get(check, True)

    import warnings

    from pipeline_tests.defs_helpers import add_target_partitions

    add_target_partitions(instance, partition)  # the real assets downstream run on the same key
    partitions = dg.StaticPartitionsDefinition([partition])

    @dg.asset(name=asset, partitions_def=partitions)
    def stand_in():
        return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(version))

    def check_def(name: str):  # a partitioned check, evaluated after the asset, as the real ones are
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")

            @dg.asset_check(asset=asset, name=name, partitions_def=partitions)
            def _check():
                ok = passed(name)
                return dg.AssetCheckResult(passed=ok, severity=dg.AssetCheckSeverity.ERROR,
                                           description=None if ok else f"{name} failed (stand-in run)")
        return _check

    dg.materialize([stand_in, *map(check_def, checks)], partition_key=partition, instance=instance,
                   raise_on_error=False)
    return instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition]), limit=1
    ).records[0].storage_id


def approve_anonymized(instance: dg.DagsterInstance, target: str, *, checks_pass: bool | dict[str, bool] = True) -> int:
    """An anonymized_dataset materialization of the tables the test wrote under `anonymized/` for `target`."""
    from pipeline.core.artifacts import anonymized_dir

    folder = anonymized_dir(target)
    return record_materialization(instance, "anonymized_dataset", target, "anon-test", {
        "anonymized_version": "anon-test",
        "examples_path": str(folder / "examples.parquet"),
        "pairs_path": str(folder / "pairs.parquet"),
    }, checks_pass=checks_pass)
