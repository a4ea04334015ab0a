"""Push a dataset version to a Hugging Face Hub dataset repo, with a dataset card.

The repo holds the latest version's files under `<format>/<split>.jsonl` (the same layout as the
version folder), `manifest.json`, and a `README.md` card whose YAML header declares one `datasets`
config per format, so `datasets.load_dataset(repo, "<format>")` reads it. Each version is one commit
whose message names the dataset version; pushing an unchanged version again commits nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg

from pipeline.training_files.dataset_card import dataset_card


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
        if not self.token:
            raise ValueError("HF_TOKEN is not set: cannot push to the Hugging Face Hub")
        return push_dataset_version(manifest, repo_id, endpoint=self.endpoint, token=self.token, private=self.private)


def push_dataset_version(
    manifest: dict[str, Any], repo_id: str, *, endpoint: str, token: str, private: bool = True
) -> dict[str, Any]:
    """Create the dataset repo if needed and commit this version's files and card; returns the commit."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

    api = HfApi(endpoint=endpoint, token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    operations: list[Any] = [
        CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=dataset_card(manifest).encode("utf-8")),
        CommitOperationAdd(path_in_repo="manifest.json", path_or_fileobj=_portable_manifest(manifest).encode("utf-8")),
    ]
    local = []
    for fmt, splits in sorted(manifest["files"].items()):
        for split in ("train", "validation"):
            if splits.get(split):
                local.append(f"{fmt}/{split}.jsonl")
                operations.append(CommitOperationAdd(path_in_repo=f"{fmt}/{split}.jsonl", path_or_fileobj=splits[split]))
    # a previous version may have had a validation file this one has not
    info = api.dataset_info(repo_id)
    for sibling in info.siblings or []:
        name = sibling.rfilename
        if name.endswith(".jsonl") and name not in local:
            operations.append(CommitOperationDelete(path_in_repo=name))
    commit = api.create_commit(
        repo_id,
        operations,
        repo_type="dataset",
        commit_message=f"Dataset version {manifest['dataset_version']} of {manifest['target']}",
        commit_description=f"{manifest['counts']['written']} examples, backend format {manifest['backend_format']}",
    )
    return {"repo_id": repo_id, "commit_url": commit.commit_url, "commit_oid": commit.oid, "files": len(operations)}


def _portable_manifest(manifest: dict[str, Any]) -> str:
    """The manifest with local absolute paths replaced by paths inside the repo."""
    import json

    portable = dict(manifest)
    portable["files"] = {
        fmt: {s: (f"{fmt}/{s}.jsonl" if p else None) for s, p in splits.items()} for fmt, splits in manifest["files"].items()
    }
    portable.pop("dropped_file", None)
    portable.pop("evaluation_items", None)  # a local path; the held-out rows are the validation files
    portable["source"] = {k: v for k, v in manifest["source"].items() if k != "path"}
    return json.dumps(portable, indent=2, sort_keys=True)


def local_files(manifest: dict[str, Any]) -> list[Path]:
    return [Path(p) for splits in manifest["files"].values() for p in splits.values() if p]
