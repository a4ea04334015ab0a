"""The Hugging Face backend's settings: the target's hyper-parameters and the backend's options.

`HFHyperparameters` is what a target's `hyperparameters` may hold for this backend (unknown keys
are an error, in the submitting step); `HFOptions` is what the backend asks beyond training
(merge the adapter, push to the Hub), written beside the job as `hf_options.json`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

OPTIONS_FILE = "hf_options.json"
TRAINING_CONFIG_FILE = "flywheel_training.json"
CHECKPOINTS_DIR = "checkpoints"
ADAPTER_DIR = "model"

# ------------------------------------------------------------------ hyper-parameters
@dataclass
class HFHyperparameters:
    """The target's `hyperparameters` for the huggingface backend (unknown keys are an error)."""

    max_steps: int = -1  # > 0 overrides num_train_epochs
    num_train_epochs: float = 1.0
    per_device_train_batch_size: int = 2
    gradient_accumulation_steps: int = 1
    learning_rate: float = 2e-4
    lr_scheduler_type: str = "linear"
    warmup_steps: float = 0  # a fraction < 1 is a share of the total steps
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    max_length: int = 1024
    lora_r: int = 16
    lora_alpha: int | None = None  # default: 2 * lora_r
    lora_dropout: float = 0.05
    lora_target_modules: str | list[str] = "all-linear"
    beta: float = 0.1  # DPO
    loss_type: str = "sigmoid"  # DPO loss
    loss_on: str = "final_assistant"  # SFT: final_assistant | assistant
    save_steps: int = 50
    save_total_limit: int = 2
    logging_steps: int = 1
    activation_checkpointing: bool = False  # a.k.a. gradient checkpointing: less memory, slower
    max_eval_rows: int = 0  # evaluate on at most this many validation rows (0: all); keeps CPU runs short

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> HFHyperparameters:
        values = dict(values or {})
        if "target_modules" in values and "lora_target_modules" not in values:
            values["lora_target_modules"] = values.pop("target_modules")
        if "gradient_checkpointing" in values and "activation_checkpointing" not in values:
            values["activation_checkpointing"] = values.pop("gradient_checkpointing")
        if "epochs" in values and "num_train_epochs" not in values:
            values["num_train_epochs"] = values.pop("epochs")
        if "batch_size" in values and "per_device_train_batch_size" not in values:
            values["per_device_train_batch_size"] = values.pop("batch_size")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(
                f"unknown huggingface hyper-parameter(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        hp = cls(**values)
        hp._validate()
        return hp

    def _validate(self) -> None:
        problems = []
        if self.max_steps == 0 or self.max_steps < -1:
            problems.append(f"max_steps must be > 0 (or -1 to use num_train_epochs), got {self.max_steps}")
        if self.max_steps == -1 and not self.num_train_epochs > 0:
            problems.append(f"num_train_epochs must be > 0, got {self.num_train_epochs}")
        for name in ("per_device_train_batch_size", "gradient_accumulation_steps", "max_length", "lora_r",
                     "save_steps", "logging_steps", "save_total_limit"):
            if int(getattr(self, name)) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.learning_rate > 0:
            problems.append(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.loss_on not in ("final_assistant", "assistant"):
            problems.append(f"loss_on must be final_assistant or assistant, got {self.loss_on!r}")
        if not self.beta > 0:
            problems.append(f"beta must be > 0, got {self.beta}")
        if problems:
            raise ValueError("invalid huggingface hyper-parameters: " + "; ".join(problems))

    @property
    def alpha(self) -> int:
        return int(self.lora_alpha if self.lora_alpha is not None else 2 * self.lora_r)


@dataclass
class HFOptions:
    """What the backend asks beyond training: merge the adapter, push the result to the Hub."""

    merge_adapters: bool = False
    push_to_hub_repo: str | None = None
    hub_private: bool = True
    endpoint: str | None = None

    @classmethod
    def read(cls, job_dir: Path) -> HFOptions:
        path = Path(job_dir) / OPTIONS_FILE
        if not path.exists():
            return cls()
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(**{k: v for k, v in data.items() if k in {f.name for f in fields(cls)}})

    def write(self, job_dir: Path) -> Path:
        path = Path(job_dir) / OPTIONS_FILE
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True), encoding="utf-8")
        return path
