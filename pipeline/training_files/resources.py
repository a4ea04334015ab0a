"""The Hugging Face Hub as a Dagster resource (dataset pushes of training files)."""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

#: The resource key the `training_file` asset asks for.
HUB_RESOURCE_KEY = "hf_hub"


class HubResource(dg.ConfigurableResource):
    """Where dataset versions are pushed: the Hub endpoint and a token read from `HF_TOKEN`."""

    endpoint: str = "https://huggingface.co"
    #: set as `dg.EnvVar("HF_TOKEN")`; None means pushes are skipped (and say so in the metadata)
    token: str | None = None
    private: bool = True

    @property
    def configured(self) -> bool:
        return bool(self.token)

    def push(self, manifest: dict[str, Any], repo_id: str) -> dict[str, Any]:
        from pipeline.training_files.hub import push_dataset_version

        if not self.token:
            raise ValueError("HF_TOKEN is not set: cannot push to the Hugging Face Hub")
        return push_dataset_version(manifest, repo_id, endpoint=self.endpoint, token=self.token, private=self.private)


def hub_resource_from_env() -> HubResource:
    """`HubResource(token=EnvVar("HF_TOKEN"))` when HF_TOKEN is set, else one without a token.

    Dagster refuses a run whose resource names an unset EnvVar, so the definitions must not name
    HF_TOKEN where it is not set: pushes are then skipped instead of every run failing.
    """
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    if os.environ.get("HF_TOKEN"):
        return HubResource(endpoint=endpoint, token=dg.EnvVar("HF_TOKEN"))
    return HubResource(endpoint=endpoint)
