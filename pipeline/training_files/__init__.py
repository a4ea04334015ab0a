"""training_file: the files every backend trains on, split, versioned, and gated before money is spent.

Wire into the definitions with::

    from pipeline.training_files import HUB_RESOURCE_KEY, TRAINING_FILE_ASSETS, TRAINING_FILE_CHECKS, hub_resource_from_env
    dg.Definitions(assets=[..., *TRAINING_FILE_ASSETS], asset_checks=[..., *TRAINING_FILE_CHECKS],
                   resources={HUB_RESOURCE_KEY: hub_resource_from_env(), ...})
"""

from pipeline.training_files.assets import training_file
from pipeline.training_files.checks import TRAINING_FILE_CHECKS
from pipeline.training_files.resources import HUB_RESOURCE_KEY, HubResource, hub_resource_from_env

TRAINING_FILE_ASSETS = [training_file]

__all__ = [
    "HUB_RESOURCE_KEY",
    "TRAINING_FILE_ASSETS",
    "TRAINING_FILE_CHECKS",
    "HubResource",
    "hub_resource_from_env",
    "training_file",
]
