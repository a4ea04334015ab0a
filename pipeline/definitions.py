"""The one Dagster entry point: every asset, check, resource, sensor and job of Flywheel."""

import os

import dagster as dg

from pipeline.anonymize.assets import ANONYMIZE_ASSETS
from pipeline.anonymize.checks import ANONYMIZE_CHECKS
from pipeline.backends.huggingface_backend import HuggingFaceBackend
from pipeline.backends.openai_backend import OpenAIBackend
from pipeline.core.partitions import target_partitions
from pipeline.core.resources import StoreResource
from pipeline.core.targets import load_targets
from pipeline.curation.assets import CURATION_ASSETS
from pipeline.finetune import (
    FINETUNE_ASSETS,
    FINETUNE_CHECKS,
    FINETUNE_JOBS,
    FINETUNE_SENSORS,
    SentenceTransformersBackend,
)
from pipeline.ingest.assets import raw_interactions
from pipeline.training_files import (
    HUB_RESOURCE_KEY,
    TRAINING_FILE_ASSETS,
    TRAINING_FILE_CHECKS,
    hub_resource_from_env,
)

# Validate targets.yaml at load: a malformed file fails the code location with its line and field.
TARGETS = load_targets()

ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=dg.AssetSelection.assets(raw_interactions),
    description="Read what is new in the interaction source; quarantine what breaks the contract.",
)

train_target_job = dg.define_asset_job(
    "train_target_job",
    selection=dg.AssetSelection.assets(*CURATION_ASSETS).downstream(),
    partitions_def=target_partitions,
    description="Score, anonymize, build the training files and submit the fine-tune job of one target.",
)


def _secret(name: str) -> str | dg.EnvVar:
    """`dg.EnvVar(name)` when set. Unset, an empty value: the backend then fails only the steps that
    need it, with a message naming the variable, instead of Dagster refusing every run."""
    return dg.EnvVar(name) if os.environ.get(name) else ""


defs = dg.Definitions(
    assets=[raw_interactions, *CURATION_ASSETS, *ANONYMIZE_ASSETS, *TRAINING_FILE_ASSETS, *FINETUNE_ASSETS],
    asset_checks=[*ANONYMIZE_CHECKS, *TRAINING_FILE_CHECKS, *FINETUNE_CHECKS],
    jobs=[ingest_job, train_target_job, *FINETUNE_JOBS],
    sensors=[*FINETUNE_SENSORS],
    resources={
        "store": StoreResource(),
        HUB_RESOURCE_KEY: hub_resource_from_env(),
        "openai_backend": OpenAIBackend(api_key=_secret("OPENAI_API_KEY"), base_url=os.environ.get("OPENAI_BASE_URL")),
        "huggingface_backend": HuggingFaceBackend(token=_secret("HF_TOKEN") or None),
        "sentence_transformers_backend": SentenceTransformersBackend(),
    },
)
