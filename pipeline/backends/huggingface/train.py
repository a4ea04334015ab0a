"""The Hugging Face trainer: LoRA fine-tuning with TRL's SFTTrainer or DPOTrainer, on the GPU or the CPU.

`train(request, job_dir, report)` is what the `train_locally` step (through `local_training`, trainer name
`"huggingface"`) and the remote Jobs entry point (`hf_remote`) call. It

1. reads the TRL-format training file (`trl_messages` for SFT, `trl_preference` for DPO),
   dropping malformed rows with a counted reason (counts in = counts out, in the result);
2. loads the base model (`hf_models`: Hub id, local folder or a packaged GGUF file);
3. trains a LoRA adapter (PEFT) with the target's hyper-parameters, reporting step and loss
   through `report` and checkpointing under `<job_dir>/checkpoints/`; a re-launched job resumes
   from its last checkpoint;
4. saves the adapter with the tokenizer and `flywheel_training.json` under `<job_dir>/model/`
   (or the request's `output_dir`), optionally merges it into a full model (`…/model-merged/`)
   and pushes to the Hub.

SFT loss is on the assistant's words only. `loss_on: final_assistant` (default, as the OpenAI
file gives earlier answers weight 0) trains on the last answer: each conversation becomes
prompt + completion and TRL masks the prompt. `loss_on: assistant` trains on every assistant
turn through a chat template with `{% generation %}` markers (TRL's `assistant_only_loss`); when
the model's template has none and no equivalent one exists, it falls back to the final answer and
says so in the result.

Backend options that are not hyper-parameters (merge, push) come from `<job_dir>/hf_options.json`,
written by `HuggingFaceBackend`; the Hub token comes from the `HF_TOKEN` environment variable and
is never written to disk or logged.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.backends.base import FineTuneRequest
from pipeline.backends.huggingface.config import (
    ADAPTER_DIR,
    CHECKPOINTS_DIR,
    TRAINING_CONFIG_FILE,
    HFHyperparameters,
    HFOptions,
)
from pipeline.backends.huggingface.publishing import push_to_hub
from pipeline.backends.huggingface.rows import LoadedRows, read_jsonl_rows, sft_records

Report = Callable[[dict[str, Any]], None]


# ------------------------------------------------------------------ progress
def _progress_callback(report: Report, total_rows: int):
    from transformers import TrainerCallback

    class ReportProgress(TrainerCallback):
        """Step, loss and checkpoints into the job's status (and so into Dagster's logs and metadata)."""

        def on_train_begin(self, args, state, control, **kwargs):
            report({"phase": "training", "step": state.global_step, "max_steps": state.max_steps,
                    "train_rows": total_rows})

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            progress = {"step": state.global_step, "max_steps": state.max_steps,
                        "epoch": round(float(state.epoch or 0.0), 4)}
            for key in ("loss", "eval_loss", "learning_rate", "grad_norm", "mean_token_accuracy",
                        "rewards/accuracies", "rewards/margins", "num_tokens"):
                if key in logs and logs[key] is not None:
                    progress[key.replace("/", "_")] = _num(logs[key])
            if "loss" in progress:
                progress["train_loss"] = progress["loss"]
            report(progress)

        def on_save(self, args, state, control, **kwargs):
            path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            report({"checkpoint": {"step": state.global_step, "path": str(path), "at": _now()}})

    return ReportProgress()


def _num(value: Any) -> Any:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return value
    return value if math.isfinite(value) else str(value)


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


# ------------------------------------------------------------------ checkpoints
def request_fingerprint(request: FineTuneRequest) -> str:
    """What a checkpoint belongs to: a checkpoint of another request is never resumed."""
    data = request.as_dict()
    data.pop("output_dir", None)
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def last_checkpoint(checkpoints_dir: Path, fingerprint: str) -> str | None:
    """The newest complete checkpoint of this request; checkpoints of another request are removed."""
    from transformers.trainer_utils import get_last_checkpoint

    if not checkpoints_dir.is_dir():
        return None
    marker = checkpoints_dir / "request.fingerprint"
    if marker.exists() and marker.read_text().strip() != fingerprint:
        shutil.rmtree(checkpoints_dir)
        return None
    found = get_last_checkpoint(str(checkpoints_dir))
    if found and not (Path(found) / "trainer_state.json").exists():
        return None  # a crash mid-save leaves a folder without its state: not resumable
    return found


# ------------------------------------------------------------------ training
def train(request: FineTuneRequest, job_dir: Path, report: Report) -> dict[str, Any]:
    """Train one LoRA adapter for `request`; returns {"model_path", "metrics", "trained_tokens", ...}."""
    return run_training(request, Path(job_dir), report)


@dataclass
class PreparedRun:
    """A trainer ready to train, and what `run_training` needs to save and report afterwards."""

    trainer: Any
    model: Any
    tokenizer: Any
    resolved: Any
    hp: HFHyperparameters
    options: HFOptions
    train_rows: LoadedRows
    eval_rows: LoadedRows | None
    device: str
    inference_template: Any
    resume_from: str | None
    notes: dict[str, Any]


def prepare_run(
    request: FineTuneRequest,
    job_dir: Path,
    report: Report,
    *,
    extra_callbacks: Iterable[Any] = (),
    options: HFOptions | None = None,
) -> PreparedRun:
    """Read the files, load the base model, build the TRL trainer with LoRA; nothing is trained yet."""
    job_dir = Path(job_dir)
    hp = HFHyperparameters.from_dict(request.hyperparameters)
    options = options or HFOptions.read(job_dir)
    if request.method not in ("sft", "dpo"):
        raise ValueError(f"the huggingface backend trains sft or dpo, not {request.method!r}")
    train_rows = read_jsonl_rows(request.train_file, request.method)
    if not train_rows.rows:
        raise ValueError(
            f"training file {request.train_file} has no usable rows ({train_rows.read} read, dropped: "
            f"{dict(train_rows.dropped)}): rebuild training_file for {request.target}"
        )
    eval_rows = read_jsonl_rows(request.validation_file, request.method) if request.validation_file else None
    if eval_rows is not None and hp.max_eval_rows > 0:
        eval_rows.rows = eval_rows.rows[: hp.max_eval_rows]
    report({"phase": "loading_model", "base_model": request.base_model, **train_rows.counts()})

    import torch
    from peft import LoraConfig

    from pipeline.backends.huggingface import models as hf_models

    torch.manual_seed(request.seed)
    device = hf_models.default_device()
    model, tokenizer, resolved = hf_models.load_model_and_tokenizer(request.base_model, device=device)
    inference_template = tokenizer.chat_template
    lora = LoraConfig(
        r=hp.lora_r,
        lora_alpha=hp.alpha,
        lora_dropout=hp.lora_dropout,
        target_modules=hp.lora_target_modules,
        task_type="CAUSAL_LM",
    )
    checkpoints = job_dir / CHECKPOINTS_DIR
    fingerprint = request_fingerprint(request)
    resume_from = last_checkpoint(checkpoints, fingerprint)
    checkpoints.mkdir(parents=True, exist_ok=True)
    (checkpoints / "request.fingerprint").write_text(fingerprint)
    common = {
        "output_dir": str(checkpoints),
        "max_steps": hp.max_steps,
        "num_train_epochs": hp.num_train_epochs,
        "per_device_train_batch_size": hp.per_device_train_batch_size,
        "per_device_eval_batch_size": hp.per_device_train_batch_size,
        "gradient_accumulation_steps": hp.gradient_accumulation_steps,
        "learning_rate": hp.learning_rate,
        "lr_scheduler_type": hp.lr_scheduler_type,
        "warmup_steps": hp.warmup_steps,
        "weight_decay": hp.weight_decay,
        "max_grad_norm": hp.max_grad_norm,
        "max_length": hp.max_length,
        "logging_steps": hp.logging_steps,
        "save_strategy": "steps",
        "save_steps": hp.save_steps,
        "save_total_limit": hp.save_total_limit,
        "eval_strategy": "no",
        "report_to": "none",
        "seed": request.seed,
        "data_seed": request.seed,
        "use_cpu": device != "cuda",
        "bf16": device == "cuda" and torch.cuda.is_bf16_supported(),
        "dataloader_pin_memory": device == "cuda",
        "disable_tqdm": True,
        "activation_checkpointing": hp.activation_checkpointing,
        "include_num_input_tokens_seen": "non_padding",
    }
    callbacks = [_progress_callback(report, len(train_rows.rows)), *extra_callbacks]
    notes: dict[str, Any] = {}
    if request.method == "sft":
        trainer, notes = _sft_trainer(model, tokenizer, hp, common, lora, train_rows, eval_rows, callbacks)
    else:
        trainer = _dpo_trainer(model, tokenizer, hp, common, lora, train_rows, eval_rows, callbacks)
    return PreparedRun(trainer, model, tokenizer, resolved, hp, options, train_rows, eval_rows, device,
                       inference_template, resume_from, notes)


def run_training(
    request: FineTuneRequest,
    job_dir: Path,
    report: Report,
    *,
    extra_callbacks: Iterable[Any] = (),
    options: HFOptions | None = None,
) -> dict[str, Any]:
    """`train` with hooks for tests and the remote entry point (extra Trainer callbacks, explicit options)."""
    job_dir = Path(job_dir)
    run = prepare_run(request, job_dir, report, extra_callbacks=extra_callbacks, options=options)
    trainer, hp, train_rows, eval_rows = run.trainer, run.hp, run.train_rows, run.eval_rows
    used = len(trainer.train_dataset)
    if used == 0:
        raise ValueError(
            f"no training row of {request.train_file} keeps a trainable token within max_length={hp.max_length}: "
            "raise max_length or shorten the examples"
        )
    if run.resume_from:
        report({"phase": "resuming", "resumed_from": Path(run.resume_from).name})
    output = trainer.train(resume_from_checkpoint=run.resume_from)
    metrics: dict[str, Any] = {k: _num(v) for k, v in output.metrics.items()}
    logged = [e for e in trainer.state.log_history if "loss" in e]
    if logged:
        metrics["train_loss_first"] = _num(logged[0]["loss"])
        metrics["train_loss_last"] = _num(logged[-1]["loss"])
        if "mean_token_accuracy" in logged[-1]:
            metrics["token_accuracy"] = _num(logged[-1]["mean_token_accuracy"])
    if trainer.eval_dataset is not None and len(trainer.eval_dataset):
        metrics.update({k: _num(v) for k, v in trainer.evaluate().items()})
        metrics["valid_loss"] = metrics.get("eval_loss")  # the name every backend's metrics use
        report({"eval_loss": metrics.get("eval_loss"), "step": trainer.state.global_step})
    metrics.update(
        {
            "global_step": trainer.state.global_step,
            "device": run.device,
            "rows_trained": used,
            "rows_dropped_by_truncation": len(train_rows.rows) - used,
            **train_rows.counts(),
            **run.notes,
        }
    )
    if run.resume_from:
        metrics["resumed_from"] = Path(run.resume_from).name
    if eval_rows is not None:
        metrics["validation_rows_dropped"] = dict(eval_rows.dropped)
    trained_tokens = int(trainer.state.num_input_tokens_seen or 0)

    # ---- save: adapter + tokenizer + training config
    tokenizer = run.tokenizer
    tokenizer.chat_template = run.inference_template
    adapter_dir = Path(request.output_dir) if request.output_dir else job_dir / ADAPTER_DIR
    shutil.rmtree(adapter_dir, ignore_errors=True)
    trainer.save_model(str(adapter_dir))
    tokenizer.save_pretrained(str(adapter_dir))
    config = {
        "request": request.as_dict(),
        "hyperparameters": asdict(hp),
        "lora": {"r": hp.lora_r, "alpha": hp.alpha, "dropout": hp.lora_dropout,
                 "target_modules": hp.lora_target_modules},
        "base_model": run.resolved.describe(),
        "base_model_path": str(getattr(run.model.config, "_name_or_path", "") or run.resolved.location),
        "metrics": metrics,
        "trained_tokens": trained_tokens,
        "versions": _versions(),
        "finished_at": _now(),
    }
    (adapter_dir / TRAINING_CONFIG_FILE).write_text(json.dumps(config, indent=2, default=str), encoding="utf-8")
    result: dict[str, Any] = {
        "model_path": str(adapter_dir),
        "adapter_path": str(adapter_dir),
        "metrics": metrics,
        "trained_tokens": trained_tokens,
        "base_model": request.base_model,
    }
    report({"phase": "saved", "adapter_path": str(adapter_dir)})

    final_dir = adapter_dir
    if run.options.merge_adapters:
        merged_dir = merge_adapter(trainer.model, tokenizer, adapter_dir.with_name(adapter_dir.name + "-merged"), config)
        result["merged_path"] = str(merged_dir)
        result["model_path"] = str(merged_dir)
        final_dir = merged_dir
        report({"phase": "merged", "merged_path": str(merged_dir)})
    if run.options.push_to_hub_repo:
        pushed = push_to_hub(final_dir, run.options, request, config, merged=run.options.merge_adapters)
        result["hub"] = pushed
        report({"phase": "pushed", "hub_repo": pushed["repo_id"], "hub_revision": pushed["revision"]})
    return result


def _sft_trainer(model, tokenizer, hp, common, lora, train_rows, eval_rows, callbacks):
    from trl import SFTConfig, SFTTrainer

    from pipeline.backends.huggingface import models as hf_models

    loss_on, notes = hp.loss_on, {}
    if loss_on == "assistant":
        template = hf_models.training_chat_template(tokenizer)
        if template is None:
            loss_on = "final_assistant"
            notes["loss_on_fallback"] = (
                "the chat template has no {% generation %} markers and no equivalent template is known: "
                "trained on the final assistant answer only"
            )
        else:
            tokenizer.chat_template = template
    notes["loss_on"] = loss_on
    args = SFTConfig(
        **common,
        assistant_only_loss=loss_on == "assistant",
        completion_only_loss=True if loss_on == "final_assistant" else None,
        packing=False,
        dataset_num_proc=None,
    )
    train = sft_records(train_rows.rows, loss_on)
    evaluation = sft_records(eval_rows.rows, loss_on) if eval_rows else []
    return _trainer(SFTTrainer, args, model, tokenizer, lora, train, evaluation, callbacks), notes


def _dpo_trainer(model, tokenizer, hp, common, lora, train_rows, eval_rows, callbacks):
    from trl import DPOConfig, DPOTrainer

    args = DPOConfig(**common, beta=hp.beta, loss_type=[hp.loss_type])
    # with a peft_config, DPO's reference model is this model with the adapter disabled: no second copy
    evaluation = eval_rows.rows if eval_rows else []
    return _trainer(DPOTrainer, args, model, tokenizer, lora, train_rows.rows, evaluation, callbacks)


def _trainer(cls, args, model, tokenizer, lora, train: list[dict], evaluation: list[dict], callbacks):
    from datasets import Dataset

    return cls(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(train),
        eval_dataset=Dataset.from_list(evaluation) if evaluation else None,
        processing_class=tokenizer,
        peft_config=lora,
        callbacks=callbacks,
    )


def merge_adapter(peft_model: Any, tokenizer: Any, out_dir: Path, config: dict[str, Any]) -> Path:
    """Fold the LoRA weights into the base model (`merge_and_unload`) and save a full model."""
    shutil.rmtree(out_dir, ignore_errors=True)
    merged = peft_model.merge_and_unload()
    merged.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    (out_dir / TRAINING_CONFIG_FILE).write_text(
        json.dumps({**config, "merged": True}, indent=2, default=str), encoding="utf-8"
    )
    return out_dir



def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("torch", "transformers", "peft", "trl", "accelerate", "datasets"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out
