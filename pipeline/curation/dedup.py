"""Exact and near-duplicate prompts, collapsed to the best-scored example.

* **Exact**: the prompt text normalised (Unicode NFKC, case folded, digit runs → `0`,
  punctuation → space, whitespace collapsed), hashed with the task.
* **Near**: a 64-value MinHash signature of the normalised prompt's character 5-grams, built with
  *one permutation hashing* (one hash per shingle, split into 64 bins, the minimum per bin; empty
  bins filled by rotation densification). It is computed for a whole batch at once in numpy, so
  200k prompts take seconds, where per-document MinHash (datasketch) takes minutes; see
  `bench/curation_bench.py`. An LSH index (16 bands × 4 rows) finds candidates, and a candidate is
  a duplicate when the share of equal signature values (the Jaccard estimate) reaches the
  target's `near_duplicate_threshold`.

`collapse` walks the examples best first (score, then label > edit > response, then the newest),
keeps an example unless an already kept one is its exact or near duplicate, so every cluster keeps
its best example and a chain of small rewordings never drags in a dissimilar prompt.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SHINGLE_CHARS = 5
SIGNATURE_SIZE = 64  # bins of the one-permutation MinHash; a power of two
BANDS = 16
ROWS = SIGNATURE_SIZE // BANDS
#: near-duplicate detection reads the head and tail of long prompts (exact keys use all of it)
NEAR_TEXT_HEAD = 2_000
NEAR_TEXT_TAIL = 2_000

_BIN_SHIFT = np.uint64(64 - SIGNATURE_SIZE.bit_length() + 1)
_EMPTY = np.uint32(0xFFFFFFFF)
_BASE = np.uint64(0x100000001B3)  # FNV prime: the rolling hash's multiplier
_ROTATE = np.uint32(0x9E3779B1)  # densification offset per bin of distance
_M1 = np.uint64(0xFF51AFD7ED558CCD)
_M2 = np.uint64(0xC4CEB9FE1A85EC53)
_S33 = np.uint64(33)
_DIGITS = re.compile(r"\d+")
_PUNCT = re.compile(r"[^\w\s]|_")


def normalize_text(text: str) -> str:
    """Case, whitespace, punctuation and digits normalised away: what two copies of a prompt share."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _DIGITS.sub("0", text)
    text = _PUNCT.sub(" ", text)
    return " ".join(text.split())


def prompt_text(messages: Sequence[dict], item: str | None = None) -> str:
    """The prompt as one text: every turn as `role: content`; `item` (embedding targets) appended."""
    parts = [f"{m['role']}: {m['content']}" for m in messages]
    if item is not None:
        parts.append(f"item: {item}")
    return "\n".join(parts)


def exact_key(task: str, normalized: str) -> bytes:
    """A 20-byte key equal for prompts of one task that are equal after normalisation."""
    return hashlib.sha1(f"{task}\x1f{normalized}".encode()).digest()


def near_text(normalized: str) -> str:
    if len(normalized) <= NEAR_TEXT_HEAD + NEAR_TEXT_TAIL:
        return normalized
    return normalized[:NEAR_TEXT_HEAD] + " " + normalized[-NEAR_TEXT_TAIL:]


def _fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser: spreads every input bit over the whole word."""
    h = h ^ (h >> _S33)
    h = h * _M1
    h = h ^ (h >> _S33)
    h = h * _M2
    return h ^ (h >> _S33)


def signatures(texts: Sequence[str]) -> np.ndarray:
    """MinHash signatures (n × 64, uint32) of the texts' character 5-grams, all texts at once."""
    n = len(texts)
    sig = np.full((n, SIGNATURE_SIZE), _EMPTY, dtype=np.uint32)
    if n == 0:
        return sig
    encoded = [t.encode("utf-8").ljust(SHINGLE_CHARS, b"\0") for t in texts]
    lengths = np.fromiter((len(b) for b in encoded), dtype=np.int64, count=n)
    buf = np.frombuffer(b"".join(encoded), dtype=np.uint8).astype(np.uint64)
    windows = len(buf) - SHINGLE_CHARS + 1
    rolling = np.zeros(windows, dtype=np.uint64)
    for j in range(SHINGLE_CHARS):
        rolling = rolling * _BASE + buf[j : j + windows]
    # keep the windows that lie inside one text
    per_doc = lengths - SHINGLE_CHARS + 1
    doc_start = np.cumsum(lengths) - lengths
    first_window = np.cumsum(per_doc) - per_doc
    doc = np.repeat(np.arange(n, dtype=np.int64), per_doc)
    position = np.arange(int(per_doc.sum()), dtype=np.int64) - np.repeat(first_window - doc_start, per_doc)
    h = _fmix64(rolling[position])
    bins = (h >> _BIN_SHIFT).astype(np.int64)
    values = (h & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    np.minimum.at(sig.reshape(-1), doc * SIGNATURE_SIZE + bins, values)
    return _densify(sig)


def _densify(sig: np.ndarray) -> np.ndarray:
    """Fill each empty bin from the next non-empty bin to its right (circularly), offset by the distance."""
    empty = sig == _EMPTY
    if not empty.any():
        return sig
    n, size = sig.shape
    doubled = np.concatenate([sig, sig], axis=1)
    columns = np.arange(2 * size)
    index = np.where(np.concatenate([~empty, ~empty], axis=1), columns, 2 * size)
    following = np.minimum.accumulate(index[:, ::-1], axis=1)[:, ::-1][:, :size]
    distance = (following - columns[:size]).astype(np.uint32)
    filled = doubled[np.arange(n)[:, None], following] + distance * _ROTATE
    return np.where(empty, filled, sig)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """The Jaccard similarity estimate of two signatures: the share of equal values."""
    return float(np.count_nonzero(a == b)) / a.shape[-1]


def band_keys(sig: np.ndarray, namespaces: np.ndarray) -> np.ndarray:
    """One 64-bit key per LSH band (n × 16); `namespaces` (n, uint64) keeps tasks apart."""
    rows = sig.reshape(len(sig), BANDS, ROWS).astype(np.uint64)
    keys = np.zeros((len(sig), BANDS), dtype=np.uint64)
    for r in range(ROWS):
        keys = keys * _M1 + rows[:, :, r]
    keys = keys ^ namespaces.astype(np.uint64)[:, None] ^ np.arange(BANDS, dtype=np.uint64)
    return _fmix64(keys)


def namespace(task: str) -> int:
    return int.from_bytes(hashlib.sha1(task.encode()).digest()[:8], "little")


@dataclass
class Collapsed:
    """Which examples survive: `keep[i]`, and for a dropped one the index it duplicates."""

    keep: np.ndarray  # bool
    duplicate_of: np.ndarray  # int64, -1 where kept
    exact: int = 0
    near: int = 0


def collapse(
    exact_keys: Sequence[bytes],
    sigs: np.ndarray,
    namespaces: np.ndarray,
    order: Sequence[int],
    threshold: float,
) -> Collapsed:
    """Keep, walking `order` (best first), each example with no kept exact or near duplicate.

    `threshold` ≥ 1.0 turns near-duplicate detection off (exact duplicates only).
    """
    n = len(exact_keys)
    keep = np.zeros(n, dtype=bool)
    duplicate_of = np.full(n, -1, dtype=np.int64)
    result = Collapsed(keep, duplicate_of)
    near_on = threshold < 1.0 and n > 0
    keys = band_keys(sigs, namespaces).tolist() if near_on else None
    tables: list[dict[int, list[int]]] = [{} for _ in range(BANDS)]
    kept_exact: dict[bytes, int] = {}
    need = int(np.ceil(threshold * SIGNATURE_SIZE - 1e-9))
    for i in order:
        twin = kept_exact.get(exact_keys[i])
        if twin is not None:
            duplicate_of[i] = twin
            result.exact += 1
            continue
        if near_on:
            twin = _near_twin(i, keys[i], tables, sigs, need)
            if twin is not None:
                duplicate_of[i] = twin
                result.near += 1
                continue
            for band, key in enumerate(keys[i]):
                tables[band].setdefault(key, []).append(i)
        keep[i] = True
        kept_exact[exact_keys[i]] = i
    return result


def _near_twin(i: int, keys: list[int], tables: list[dict[int, list[int]]], sigs: np.ndarray, need: int) -> int | None:
    seen: set[int] = set()
    row = sigs[i]
    for band, key in enumerate(keys):
        for j in tables[band].get(key, ()):
            if j in seen:
                continue
            seen.add(j)
            if int(np.count_nonzero(sigs[j] == row)) >= need:
                return j
    return None
