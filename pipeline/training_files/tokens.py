"""Offline token counting for training files, with the OpenAI cookbook's chat overhead.

Encodings come from `bpe-openai`, which ships cl100k_base and o200k_base (tiktoken would download
them at run time, and these machines are offline). Counting goes through the package's Rust
binding (`PyTokenizer.count`, loaded without the package's slow `__init__`), which counts without
materialising token ids; identical texts
(system prompts, repeated questions) are counted once per `TokenCounter`.

Which encoding a base model gets:

* OpenAI families on o200k_base: gpt-4o*, chatgpt-4o*, gpt-4.1*, gpt-4.5*, gpt-5*, o1*, o3*, o4*.
* OpenAI families on cl100k_base: gpt-4 (not 4o/4.1/4.5), gpt-3.5*, gpt-35*, davinci-002, babbage-002.
* `ft:<base>:...` fine-tuned ids use their base's encoding.
* Anything else (a Hub id, a local path, a `pkg:` model, an embedding model) falls back to
  o200k_base and is flagged `exact=False`: counts are then an estimate of the base model's own
  tokenizer (BPE vocabularies of 100k-200k tokens land within roughly 10-25% on English text), good
  enough for the length gate and for spotting outliers, not for billing. Backends that bill by
  token are OpenAI's, which are counted exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

#: The cookbook's `num_tokens_from_messages`: every message costs 3 tokens of framing plus its
#: role and content; a `name` costs 1 more; every reply is primed with 3 tokens.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING_TOKENS = 3

FALLBACK_ENCODING = "o200k_base"

_O200K_PREFIXES = ("gpt-4o", "chatgpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4")
_CL100K_PREFIXES = ("gpt-4", "gpt-3.5", "gpt-35", "davinci-002", "babbage-002")


@dataclass(frozen=True)
class EncodingChoice:
    encoding: str
    exact: bool  # False: a fallback for a model that is not an OpenAI model
    reason: str


def encoding_for_model(base_model: str) -> EncodingChoice:
    """The encoding that counts `base_model`'s tokens, and whether the count is exact."""
    model = base_model.strip().lower()
    if model.startswith("ft:"):
        model = model[3:].split(":", 1)[0]
    if model.startswith(_O200K_PREFIXES):
        return EncodingChoice("o200k_base", True, f"{base_model} is an OpenAI o200k model")
    if model.startswith(_CL100K_PREFIXES):
        return EncodingChoice("cl100k_base", True, f"{base_model} is an OpenAI cl100k model")
    return EncodingChoice(
        FALLBACK_ENCODING,
        False,
        f"{base_model} is not an OpenAI model: counted with {FALLBACK_ENCODING} as an estimate",
    )


class TokenCounter:
    """Counts tokens of many texts fast: Rust counting, no token lists, a cache of repeated texts."""

    #: cached distinct texts before the cache is cleared (bounds memory on a million rows)
    CACHE_LIMIT = 20_000

    def __init__(self, encoding: str = FALLBACK_ENCODING):
        self.encoding = encoding
        self._count = _load_counter(encoding)
        self._cache: dict[str, int] = {}

    def count(self, text: str) -> int:
        cached = self._cache.get(text)
        if cached is None:
            cached = self._count(text) if text else 0
            if len(self._cache) >= self.CACHE_LIMIT:
                self._cache.clear()
            self._cache[text] = cached
        return cached

    def count_many(self, texts: Iterable[str]) -> list[int]:
        """Token counts of a batch of texts, in order."""
        count = self.count
        return [count(text) for text in texts]

    def chat_tokens(self, messages: Sequence[dict]) -> int:
        """Tokens of a chat example the way the OpenAI cookbook counts them (framing included)."""
        total = REPLY_PRIMING_TOKENS
        count = self.count
        for message in messages:
            total += TOKENS_PER_MESSAGE
            for key, value in message.items():
                if isinstance(value, str):
                    total += count(value)
                    if key == "name":
                        total += TOKENS_PER_NAME
        return total

    def assistant_tokens(self, messages: Sequence[dict]) -> int:
        """Tokens in the assistant messages alone (what the model learns to write)."""
        return sum(self.count(m.get("content") or "") for m in messages if m.get("role") == "assistant")


def _load_counter(encoding: str):
    """`PyTokenizer.count` of bpe-openai's Rust binding; the public `Encoding` if the binding moved."""
    try:
        return _bindings().tokenizer_for_encoding(encoding).count
    except (ImportError, AttributeError, IndexError):  # pragma: no cover - a bpe-openai without the binding
        import bpe_openai

        enc = bpe_openai.get_encoding(encoding)
        return lambda text: len(enc.encode(text, disallowed_special=()))


def _bindings():
    """bpe-openai's extension module, loaded without running the package's `__init__`.

    Importing `bpe_openai` builds Python dicts of every encoding's merge ranks (cl100k, o200k,
    voyage3): ~3 s and ~170 MB that counting never uses. The extension module alone loads in
    ~0.15 s. It is registered under its own name, so a later `import bpe_openai` reuses it (a PyO3
    module cannot be initialised twice in one process).
    """
    import importlib.machinery
    import importlib.util
    import sys

    name = "bpe_openai._bindings"
    if name in sys.modules:
        return sys.modules[name]
    package = importlib.util.find_spec("bpe_openai")
    folder = Path(package.submodule_search_locations[0])
    path = next(
        p for p in sorted(folder.iterdir()) if p.name.startswith("_bindings") and p.name.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))
    )
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[name] = module
    return module
