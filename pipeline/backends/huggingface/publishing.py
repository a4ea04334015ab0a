"""Publishing a trained adapter: the model card and the push to the Hugging Face Hub."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pipeline.backends.base import FineTuneRequest
from pipeline.backends.huggingface.config import HFOptions


# ------------------------------------------------------------------ Hub
def model_card(request: FineTuneRequest, config: dict[str, Any], merged: bool) -> Any:
    """A model card: what it was trained from, how, and its training metrics."""
    from huggingface_hub import ModelCard, ModelCardData

    base = config["base_model"]
    metrics = config.get("metrics") or {}
    data = ModelCardData(
        library_name="transformers" if merged else "peft",
        tags=["flywheel", "trl", request.method, "lora"],
        base_model=base["base_model"] if base.get("kind") == "hub" else None,
        pipeline_tag="text-generation",
    )
    shown = {k: metrics[k] for k in ("train_loss", "train_loss_last", "eval_loss", "global_step",
                                     "rows_trained", "loss_on") if k in metrics}
    lines = [
        "---",
        data.to_yaml(),
        "---",
        "",
        f"# {request.target} ({request.method.upper()}, dataset {request.dataset_version})",
        "",
        (f"Fine-tuned by Flywheel from `{base['base_model']}` with TRL, "
         f"{'LoRA weights merged into the model' if merged else 'as a LoRA adapter (PEFT)'}."),
        "",
        "## Training",
        "",
        "| setting | value |",
        "|---|---|",
        *[f"| {k} | `{v}` |" for k, v in sorted(config["hyperparameters"].items())],
        "",
        "## Metrics",
        "",
        "| metric | value |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in shown.items()],
        "",
        (f"Trained tokens: {config.get('trained_tokens')}. Training data: anonymized interactions of target "
         f"`{request.target}`; tenants that opted out are never included."),
    ]
    return ModelCard("\n".join(lines))


def push_to_hub(folder: Path, options: HFOptions, request: FineTuneRequest, config: dict[str, Any],
                merged: bool) -> dict[str, Any]:
    """Create (or reuse) the model repo, write the model card, upload the folder; returns repo and revision."""
    from huggingface_hub import HfApi

    api = HfApi(endpoint=options.endpoint or None, token=os.environ.get("HF_TOKEN") or None)
    repo = api.create_repo(options.push_to_hub_repo, repo_type="model", private=options.hub_private, exist_ok=True)
    model_card(request, config, merged).save(str(folder / "README.md"))
    commit = api.upload_folder(
        folder_path=str(folder),
        repo_id=options.push_to_hub_repo,
        repo_type="model",
        commit_message=f"Flywheel: {request.target} {request.method} on dataset {request.dataset_version}",
    )
    return {"repo_id": options.push_to_hub_repo, "revision": commit.oid, "url": str(repo)}
