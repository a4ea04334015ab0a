"""Push a dataset version to a Hugging Face Hub dataset repo, with a dataset card.

The repo holds the latest version's files under `<format>/<split>.jsonl` (the same layout as the
version folder), `manifest.json`, and a `README.md` card whose YAML header declares one `datasets`
config per format, so `datasets.load_dataset(repo, "<format>")` reads it. Each version is one commit
whose message names the dataset version; pushing an unchanged version again commits nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.core import markdown

CARD_TEMPLATE = """---
{yaml}---

# {target} — Flywheel training data, version `{version}`

Training files built by Flywheel's `training_file` asset for the target **{target}**
({method}, backend `{backend}`, base model `{base_model}`). The backend trains on the
`{backend_format}` config.

## Counts

| split | examples |
|---|---:|
| train | {train:,} |
| validation | {validation:,} |

{by_task}

Input rows: {input_rows:,}; written: {written:,}; dropped: {dropped_total:,} ({dropped}).

## Quality scores of the kept examples (0..10)

{scores}

## Tokens

Counted with `{encoding}`{exact}: train {train_tokens:,} tokens, per example p50 {p50}, p95 {p95}, max {max}.

## Source

- Interactions from {date_from} to {date_to} (`occurred_at`, UTC).
- Anonymization applied (Flywheel `anonymized_dataset`): tenant, user and conversation ids removed
  (kept only as hashes), personal data (names, emails, phone numbers, addresses, card numbers, IPs,
  national and account ids) redacted with Presidio; tenants that opted out of training excluded.
- Split: {share:.0%} validation, seed {seed}, grouped so no conversation or prompt is on both sides.
"""


def _yaml_header(manifest: dict[str, Any]) -> str:
    import yaml

    configs = []
    for fmt, splits in sorted(manifest["files"].items()):
        data_files = [{"split": "train", "path": f"{fmt}/train.jsonl"}]
        if splits.get("validation"):
            data_files.append({"split": "validation", "path": f"{fmt}/validation.jsonl"})
        entry = {"config_name": fmt, "data_files": data_files}
        if fmt == manifest["backend_format"]:
            entry["default"] = True
        configs.append(entry)
    header = {"configs": configs, "tags": ["flywheel", manifest["method"]], "pretty_name": f"{manifest['target']} training data"}
    return yaml.safe_dump(header, sort_keys=True)


def examples_by_task_md(by_task: dict[str, dict[str, int]]) -> str:
    """Examples per task and split, as a Markdown table (asset metadata and the dataset card)."""
    return markdown.table(
        [{"task": task, "train": f"{n['train']:,}", "validation": f"{n['validation']:,}"} for task, n in by_task.items()]
    )


def dataset_card(manifest: dict[str, Any]) -> str:
    """The README.md of the dataset repo: counts, score distribution, anonymization, date range."""
    counts, tokens, source = manifest["counts"], manifest["tokens"], manifest["source"]
    dropped = {k: v for k, v in counts["dropped"].items() if v}
    by_task = examples_by_task_md(counts["by_task"])
    scores = source.get("score_histogram") or {}
    score_table = "\n".join(["| score | examples |", "|---|---:|"] + [f"| {k} | {v:,} |" for k, v in scores.items()])
    dates = source.get("occurred_at") or {}
    per = tokens["per_example"]
    return CARD_TEMPLATE.format(
        yaml=_yaml_header(manifest),
        target=manifest["target"],
        version=manifest["dataset_version"],
        method=manifest["method"],
        backend=manifest["backend"],
        base_model=manifest["base_model"],
        backend_format=manifest["backend_format"],
        train=counts["train"],
        validation=counts["validation"],
        by_task=by_task,
        input_rows=counts["input_rows"],
        written=counts["written"],
        dropped_total=sum(dropped.values()),
        dropped=", ".join(f"{k}: {v}" for k, v in sorted(dropped.items())) or "none",
        scores=score_table,
        encoding=tokens["encoding"],
        exact="" if tokens["exact"] else " (an estimate for this base model)",
        train_tokens=tokens["train_total"],
        p50=per.get("p50", 0),
        p95=per.get("p95", 0),
        max=per.get("max", 0),
        date_from=dates.get("min", "unknown"),
        date_to=dates.get("max", "unknown"),
        share=manifest["config"]["validation_share"],
        seed=manifest["config"]["seed"],
    )


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
    portable["source"] = {k: v for k, v in manifest["source"].items() if k != "path"}
    return json.dumps(portable, indent=2, sort_keys=True)


def local_files(manifest: dict[str, Any]) -> list[Path]:
    return [Path(p) for splits in manifest["files"].values() for p in splits.values() if p]
