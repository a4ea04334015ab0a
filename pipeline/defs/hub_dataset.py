"""`hub_dataset`: the approved training-file version pushed to the target's Hugging Face Hub dataset repo."""

import dagster as dg

from pipeline.core.targets import get_target
from pipeline.defs.gate_status import require_approved_training_file
from pipeline.defs.partitions import target_partitions
from pipeline.training_files.hub import HubResource


@dg.asset(
    partitions_def=target_partitions,
    deps=[dg.AssetKey("training_file")],
    group_name="training",
    kinds={"huggingface"},
    owners=["team:ml-platform"],
    code_version="1",
)
def hub_dataset(context: dg.AssetExecutionContext, hf_hub: HubResource) -> dg.MaterializeResult:
    """The latest training-file version that passed every gate, pushed with its dataset card (when push_to_hub is set)."""
    target = get_target(context.partition_key)
    repo_id = target.training_file.push_to_hub
    if not repo_id:
        return dg.MaterializeResult(metadata={"pushed": False, "why": "training_file.push_to_hub is not set"})
    approved, manifest = require_approved_training_file(context)
    if not hf_hub.configured:
        context.log.warning(f"push_to_hub={repo_id!r} but HF_TOKEN is not set: the dataset was not pushed")
        return dg.MaterializeResult(metadata={"pushed": False, "why": "HF_TOKEN is not set",
                                              "dataset_version": approved.version})
    pushed = hf_hub.push(manifest, repo_id)
    context.log.info(f"pushed {approved.version} to {repo_id}: {pushed['commit_url']}")
    return dg.MaterializeResult(
        data_version=dg.DataVersion(approved.version),
        metadata={"pushed": True, "repo_id": repo_id, "dataset_version": approved.version,
                  "commit_url": dg.MetadataValue.url(pushed["commit_url"])},
    )
