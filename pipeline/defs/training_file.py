"""The `training_file` asset: a thin Dagster wrapper around `training_files.build.build_training_files`.

It reads only an anonymized version whose blocking checks all passed (`gate_status`), and reports
the dataset version it wrote as its data version, with the anonymized version and materialization
it came from, so `fine_tune_job` and `hub_dataset` can verify the whole chain.
"""


import json
from pathlib import Path
from typing import Any

import dagster as dg

from pipeline.core.targets import get_target
from pipeline.defs.gate_status import require_approved
from pipeline.defs.partitions import target_partitions
from pipeline.training_files.dataset_card import examples_by_task_md

CODE_VERSION = "training_file-1"
BAR_WIDTH = 24
PREVIEW_CHARS = 400


@dg.asset(
    partitions_def=target_partitions,
    deps=[dg.AssetKey("anonymized_dataset")],
    group_name="training",
    kinds={"python", "jsonl"},
    owners=["team:ml-platform"],
    code_version=CODE_VERSION,
)
def training_file(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """Train/validation files in every format the target's backend takes: cleaned, split, versioned, costed."""
    from pipeline.training_files.build import (  # numpy: at run time
        TrainingFileInputError,
        build_training_files,
    )

    target = get_target(context.partition_key)
    anonymized = require_approved(context, "anonymized_dataset")
    source_dir = Path(anonymized.text("examples_path")).parent
    try:
        result = build_training_files(target, source_dir=source_dir)
    except TrainingFileInputError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    manifest = result.manifest
    if result.memo_note:
        context.log.warning(result.memo_note)
    counts, cost = manifest["counts"], manifest["cost"]
    dropped = {k: v for k, v in counts["dropped"].items() if v}
    if dropped:
        context.log.warning(
            f"dropped {sum(dropped.values())} of {counts['input_rows']} rows: "
            + ", ".join(f"{k} {v}" for k, v in sorted(dropped.items()))
            + f" (listed in {manifest['dropped_file']})"
        )
    fmt = manifest["backend_format"]
    metadata: dict[str, Any] = {
        "dataset_version": manifest["dataset_version"],
        "anonymized_version": anonymized.version,
        "anonymized_storage_id": dg.MetadataValue.int(anonymized.storage_id),
        **({"source_seq_through": dg.MetadataValue.int(int(anonymized.text("source_seq_through")))}
           if anonymized.text("source_seq_through") else {}),
        "backend_format": fmt,
        "manifest": dg.MetadataValue.path(str(result.manifest_path)),
        "train_file": dg.MetadataValue.path(manifest["files"][fmt]["train"]),
        "validation_file": (
            dg.MetadataValue.path(manifest["files"][fmt]["validation"])
            if manifest["files"][fmt]["validation"]
            else dg.MetadataValue.text("none: validation_share is 0 or too few conversations to split")
        ),
        "files": dg.MetadataValue.json(manifest["files"]),
        "input_rows": dg.MetadataValue.int(counts["input_rows"]),
        # rows taken from the memo of the last build vs prepared again (new or changed rows)
        "rows_from_memo": dg.MetadataValue.int(result.reused_rows),
        "rows_prepared": dg.MetadataValue.int(result.prepared_rows),
        "train_examples": dg.MetadataValue.int(counts["train"]),
        "validation_examples": dg.MetadataValue.int(counts["validation"]),
        "dropped": dg.MetadataValue.int(sum(dropped.values())),
        "dropped_by_reason": dg.MetadataValue.json(counts["dropped"]),
        "examples_by_task": dg.MetadataValue.md(examples_by_task_md(counts["by_task"])),
        "token_distribution": dg.MetadataValue.md(token_distribution_md(manifest["tokens"])),
        "train_tokens": dg.MetadataValue.int(manifest["tokens"]["train_total"]),
        "estimated_epochs": dg.MetadataValue.int(cost["n_epochs"]),
        "billed_tokens": dg.MetadataValue.int(cost["billed_tokens"]),
        "estimated_cost_usd": (
            dg.MetadataValue.float(float(cost["cost_usd"]))
            if cost["cost_usd"] is not None
            else dg.MetadataValue.text("unknown: no price for this model in prices.yaml")
        ),
        "budget_usd": dg.MetadataValue.float(float(cost["budget_usd"])),
        "preview": dg.MetadataValue.md(preview_md(manifest["files"][fmt]["train"])),
        "dropped_rows_file": dg.MetadataValue.path(manifest["dropped_file"]),
    }
    return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(manifest["dataset_version"]))


def token_distribution_md(tokens: dict[str, Any]) -> str:
    """Tokens per example as a table with unicode bars (the UI renders markdown, not charts)."""
    bins = tokens["histogram"]
    per = tokens["per_example"]
    head = (
        f"Tokens per example ({tokens['encoding']}{'' if tokens['exact'] else ', estimate'}): "
        f"p50 {per.get('p50', 0):,}, p95 {per.get('p95', 0):,}, max {per.get('max', 0):,}; "
        f"limit {tokens['max_tokens_per_example']:,}\n\n"
    )
    if not bins:
        return head + "(no examples)"
    top = max(b["count"] for b in bins)
    lines = ["| tokens | examples | |", "|---|---:|---|"]
    for b in bins:
        width = b["count"] * BAR_WIDTH / top
        bar = "█" * int(width) + ("▌" if width - int(width) >= 0.5 else "")
        lines.append(f"| {b['from']:,}–{b['to'] - 1:,} | {b['count']:,} | {bar or '▏'} |")
    return head + "\n".join(lines)


def preview_md(path: str, n: int = 3) -> str:
    """The first `n` records of the training file, pretty-printed and truncated."""
    blocks = []
    with open(path, encoding="utf-8") as handle:
        for i, line in enumerate(handle):
            if i >= n:
                break
            text = json.dumps(json.loads(line), indent=1, ensure_ascii=False)
            if len(text) > PREVIEW_CHARS:
                text = text[:PREVIEW_CHARS] + "\n…"
            blocks.append(f"```json\n{text}\n```")
    return "\n\n".join(blocks) or "(empty training file)"
