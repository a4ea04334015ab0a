"""The dataset card of a training-file version: what it holds, per format and task, as the Hub shows it.

Its YAML header declares one `datasets` config per format, so `datasets.load_dataset(repo, "<format>")`
reads a pushed version; `examples_by_task_md` is also the `training_file` asset's metadata table.
"""

from __future__ import annotations

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
