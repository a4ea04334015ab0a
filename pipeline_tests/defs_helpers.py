"""The Dagster objects of one `pipeline/defs/` module, for tests that materialize part of the graph."""

from __future__ import annotations

import importlib

import dagster as dg


def checks_in(module: str) -> list[dg.AssetChecksDefinition]:
    """Every asset check defined in `pipeline.defs.<module>`."""
    mod = importlib.import_module(f"pipeline.defs.{module}")
    return [v for v in vars(mod).values() if isinstance(v, dg.AssetChecksDefinition)]


def check_names(module: str) -> set[str]:
    return {c.check_key.name for c in checks_in(module)}


def everything() -> list:
    """Every asset and asset check the `pipeline/defs/` modules define, unbound (the test brings resources)."""
    import pkgutil

    import pipeline.defs

    found: dict[int, object] = {}
    for info in pkgutil.iter_modules(pipeline.defs.__path__):
        mod = importlib.import_module(f"pipeline.defs.{info.name}")
        for value in vars(mod).values():
            if isinstance(value, dg.AssetsDefinition | dg.AssetChecksDefinition):
                found[id(value)] = value
    return list(found.values())


def add_target_partitions(instance: dg.DagsterInstance, *keys: str) -> dg.DagsterInstance:
    """Add `keys` to the `training_targets` dynamic partitions of `instance` (what the sensor does), and return it."""
    from pipeline.defs.partitions import TARGET_PARTITIONS

    missing = [k for k in keys if not instance.has_dynamic_partition(TARGET_PARTITIONS, k)]
    if missing:
        instance.add_dynamic_partitions(TARGET_PARTITIONS, missing)
    return instance


def target_instance(*keys: str) -> dg.DagsterInstance:
    """An ephemeral instance whose `training_targets` partitions hold `keys`."""
    return add_target_partitions(dg.DagsterInstance.ephemeral(), *keys)
