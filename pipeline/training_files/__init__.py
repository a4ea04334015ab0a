"""training_file: the files every backend trains on, split, versioned, and gated before money is spent.

Wire into the definitions with::

    from pipeline.training_files import HUB_RESOURCE_KEY, TRAINING_FILE_ASSETS, TRAINING_FILE_CHECKS, hub_resource_from_env
    dg.Definitions(assets=[..., *TRAINING_FILE_ASSETS], asset_checks=[..., *TRAINING_FILE_CHECKS],
                   resources={HUB_RESOURCE_KEY: hub_resource_from_env(), ...})

The Dagster objects are imported on first access, so the pure modules (`build`, `formats`,
`split`, `tokens`, `validate`, `version`, `hub`) load without Dagster in worker processes.
"""

from typing import Any

_EXPORTS = {
    "training_file": "pipeline.training_files.assets",
    "TRAINING_FILE_CHECKS": "pipeline.training_files.checks",
    "HUB_RESOURCE_KEY": "pipeline.training_files.resources",
    "HubResource": "pipeline.training_files.resources",
    "hub_resource_from_env": "pipeline.training_files.resources",
}

__all__ = [
    "HUB_RESOURCE_KEY",
    "TRAINING_FILE_ASSETS",
    "TRAINING_FILE_CHECKS",
    "HubResource",
    "hub_resource_from_env",
    "training_file",
]


def __getattr__(name: str) -> Any:
    import importlib

    if name == "TRAINING_FILE_ASSETS":
        return [importlib.import_module("pipeline.training_files.assets").training_file]
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'pipeline.training_files' has no attribute {name!r}")
