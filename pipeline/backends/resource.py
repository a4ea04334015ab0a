"""`FineTuneBackends`: every fine-tune backend as one Dagster resource, looked up by a target's `backend:` name.

This is the one mapping from backend name to resource: assets, checks, sensors, the cancel job and
the `flywheel jobs` command all ask it, so adding a backend is one field here and one entry in
`pipeline/defs/resources.py`.
"""

from __future__ import annotations

import dagster as dg

from pipeline.backends.base import FineTuneBackend
from pipeline.backends.huggingface.backend import HuggingFaceBackend
from pipeline.backends.openai.backend import OpenAIBackend
from pipeline.backends.sentence_transformers.backend import SentenceTransformersBackend

#: the names a target's `backend:` may hold; each is a field of `FineTuneBackends`
BACKEND_NAMES = ("openai", "huggingface", "sentence_transformers")


class FineTuneBackends(dg.ConfigurableResource):
    """The fine-tune backends by name: OpenAI (hosted), Hugging Face (local or Jobs), sentence-transformers (local)."""

    openai: OpenAIBackend
    huggingface: HuggingFaceBackend
    sentence_transformers: SentenceTransformersBackend

    def get(self, name: str) -> FineTuneBackend:
        if name not in BACKEND_NAMES:
            raise KeyError(f"unknown backend {name!r}; known: {', '.join(BACKEND_NAMES)}")
        return getattr(self, name)

    def as_mapping(self) -> dict[str, FineTuneBackend]:
        return {name: getattr(self, name) for name in BACKEND_NAMES}
