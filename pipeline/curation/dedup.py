"""Exact and near-duplicate prompts, collapsed to the best-scored example.

A prompt has two parts: what was said (every turn as `role: content`; for embedding targets the
item too) and the context the model had (e.g. the current page of a section edit). The system
prompt is left out: products put the same instructions there for every request.

* **Exact**: both parts normalised (Unicode NFKC, case folded, digit runs → `0`, punctuation →
  space, whitespace collapsed), hashed with the task.
* **Near**: same task, and *both* parts similar: the same words about another page are another
  example, and another request about the same page too. Each part gets a 64-value MinHash
  signature of its character 5-grams, built by *one permutation hashing* (one hash per shingle,
  split into 64 bins, the minimum per bin; empty bins filled by rotation densification), computed
  for a whole batch at once in numpy in cache-sized chunks. Two prompts are near duplicates when
  the share of equal values (the Jaccard estimate) reaches the target's `near_duplicate_threshold`
  in both parts. An LSH index (16 bands, each 4 values of each part) finds the candidates; a
  bucket holds at most `BUCKET_CAP` kept examples, so templated data, where everything looks a
  bit alike, cannot make the work quadratic (see `bench/curation_bench.py` for the figures).

`collapse` walks the examples best first (score, then label > edit > response, then the newest),
keeps an example unless an already kept one is its exact or near duplicate, so every cluster keeps
its best example and a chain of small rewordings never drags in a dissimilar prompt.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

SHINGLE_CHARS = 5
SIGNATURE_SIZE = 64  # bins of the one-permutation MinHash, per part; a power of two
BANDS = 16
ROWS = SIGNATURE_SIZE // BANDS  # values of each part in one band
BUCKET_CAP = 8
BAND_KEY_ROWS = 4_096  # rows whose band keys are computed at once (bounded temporaries)
#: near-duplicate detection reads the head and tail of long texts (exact keys use all of them)
NEAR_TEXT_HEAD = 2_000
NEAR_TEXT_TAIL = 2_000
CHUNK = 1 << 15  # shingles hashed per numpy step: keeps the temporaries in the CPU cache

_BIN_SHIFT = np.uint64(64 - SIGNATURE_SIZE.bit_length() + 1)
_EMPTY = np.uint32(0xFFFFFFFF)
#: densification offset per bin of distance, so a borrowed value differs from its source
_OFFSETS = ((np.arange(SIGNATURE_SIZE, dtype=np.uint64) * np.uint64(0x9E3779B1)) & np.uint64(0xFFFFFFFF)).astype(np.uint32)
_M1 = np.uint64(0xFF51AFD7ED558CCD)
_M2 = np.uint64(0xC4CEB9FE1A85EC53)
_S33 = np.uint64(33)
_LOW32 = np.uint64(0xFFFFFFFF)
_SHIFTS = [np.uint64(8 * (SHINGLE_CHARS - 1 - j)) for j in range(SHINGLE_CHARS)]

# ASCII bytes: letters lower-cased, digits → '0', everything else → space; bytes ≥ 0x80 unchanged
_ASCII_TABLE = bytes(
    (ord(chr(c).lower()) if chr(c).isalpha() else ord("0") if chr(c).isdigit() else ord(" ")) if c < 128 else c
    for c in range(256)
)
_NON_ASCII_RUN = re.compile(r"[^\x00-\x7f]+")
_NON_WORD = re.compile(r"\W|_")
_DIGIT = re.compile(r"\d")
_ZERO_RUN = re.compile(rb"0{2,}")


def _non_ascii(match: re.Match) -> str:
    return _DIGIT.sub("0", _NON_WORD.sub(" ", match.group()))


def normalize_text(text: str) -> str:
    """Case, whitespace, punctuation and digits normalised away: what two copies of a prompt share.

    ASCII takes a byte-table fast path; other text is NFKC-normalised and case-folded first.
    """
    if not text.isascii():
        text = _NON_ASCII_RUN.sub(_non_ascii, unicodedata.normalize("NFKC", text).casefold())
    data = text.encode("utf-8").translate(_ASCII_TABLE)
    if b"00" in data:
        data = _ZERO_RUN.sub(b"0", data)
    return b" ".join(data.split()).decode("utf-8")


def prompt_parts(messages: Sequence[dict], context: dict | None = None, item: str | None = None) -> tuple[str, str]:
    """(what was said, the context as canonical JSON): the two parts of a prompt, not yet normalised."""
    said = "\n".join(f"{m['role']}: {m['content']}" for m in messages)
    if item is not None:
        said += f"\nitem: {item}"
    return said, json.dumps(context, sort_keys=True, ensure_ascii=False, default=str) if context else ""


def exact_key(task: str, *parts: str) -> bytes:
    """A 20-byte key equal for prompts of one task whose normalised parts are equal."""
    return hashlib.sha1("\x1f".join((task, *parts)).encode()).digest()


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
    """MinHash signatures (n × 64, uint32) of the texts' character 5-grams, all texts at once.

    Each text is preceded by 4 NUL bytes, so a text's shingles are the windows ending in it (the
    first ones padded): a signature never depends on its neighbours in the batch. An empty text
    gets the all-zero signature (equal to every other empty text).
    """
    n = len(texts)
    if n == 0:
        return np.zeros((0, SIGNATURE_SIZE), dtype=np.uint32)
    pad = b"\0" * (SHINGLE_CHARS - 1)
    encoded = [t.encode("utf-8") for t in texts]
    buf = np.frombuffer(b"".join(pad + b for b in encoded), dtype=np.uint8)
    # owner of each byte: the text it belongs to, or `n` (a row that is thrown away) for padding
    owners = np.empty(2 * n, dtype=np.int64)
    owners[0::2], owners[1::2] = n, np.arange(n)
    spans = np.empty(2 * n, dtype=np.int64)
    spans[0::2], spans[1::2] = SHINGLE_CHARS - 1, np.fromiter(map(len, encoded), dtype=np.int64, count=n)
    owner = np.repeat(owners.astype(np.int32), spans)
    flat = np.full((n + 1) * SIGNATURE_SIZE, _EMPTY, dtype=np.uint32)
    for end0 in range(SHINGLE_CHARS - 1, len(buf), CHUNK):  # window *end* positions
        end1 = min(end0 + CHUNK, len(buf))
        window = buf[end0 - SHINGLE_CHARS + 1 : end1].astype(np.uint64)
        m = end1 - end0
        h = window[:m] << _SHIFTS[0]
        for j in range(1, SHINGLE_CHARS):
            h |= window[j : j + m] << _SHIFTS[j]
        h = _fmix64(h)
        index = owner[end0:end1].astype(np.int64) * SIGNATURE_SIZE + (h >> _BIN_SHIFT).astype(np.int64)
        np.minimum.at(flat, index, (h & _LOW32).astype(np.uint32))
    sig = flat[: n * SIGNATURE_SIZE].reshape(n, SIGNATURE_SIZE)
    blank = (sig == _EMPTY).all(axis=1)
    if blank.any():
        sig[blank] = 0
    return _densify(sig)


def _densify(sig: np.ndarray) -> np.ndarray:
    """Fill each empty bin from the next non-empty bin to its right (circularly), offset by the distance.

    Only rows with an empty bin (short texts) are touched, one distance at a time.
    """
    empty = sig == _EMPTY
    rows = np.flatnonzero(empty.any(axis=1))
    if rows.size == 0:
        return sig
    sub, todo = sig[rows], empty[rows]
    filled = ~todo
    out = sub.copy()
    for distance in range(1, SIGNATURE_SIZE):
        take = todo & np.roll(filled, -distance, axis=1)
        if take.any():
            out[take] = (np.roll(sub, -distance, axis=1) + _OFFSETS[distance])[take]
            todo &= ~take
            if not todo.any():
                break
    sig[rows] = out
    return sig


def prompt_signatures(said: Sequence[str], context: Sequence[str]) -> np.ndarray:
    """Both parts' signatures side by side (n × 128), kept as their low 16 bits to halve memory.

    Two different minima agree in 16 bits once in 65,536 bins: a negligible bias on the estimate.
    """
    return np.concatenate([signatures(said), signatures(context)], axis=1).astype(np.uint16)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """The Jaccard similarity estimate of two signatures: the share of equal values."""
    return float(np.count_nonzero(a == b)) / a.shape[-1]


def band_keys(sigs: np.ndarray, namespaces: np.ndarray) -> np.ndarray:
    """One 64-bit key per LSH band (n × 16): 4 values of each part; `namespaces` keeps tasks apart."""
    n = len(sigs)
    said = sigs[:, :SIGNATURE_SIZE].reshape(n, BANDS, ROWS).astype(np.uint64)
    context = sigs[:, SIGNATURE_SIZE:].reshape(n, BANDS, ROWS).astype(np.uint64)
    keys = namespaces.astype(np.uint64)[:, None] ^ np.arange(BANDS, dtype=np.uint64)
    for part in (said, context):
        for r in range(ROWS):
            keys = _fmix64(keys ^ part[:, :, r])
    return keys


@lru_cache(maxsize=1024)
def namespace(task: str) -> int:
    """A 64-bit number per task: LSH buckets never mix tasks."""
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

    `sigs` are `prompt_signatures` (n × 128). `threshold` ≥ 1.0 turns near duplicates off.
    Exact duplicates fall to the first of their key at once; among those firsts, a band key no
    other has cannot lead to a near duplicate (found for all at once, in numpy), so only shared
    keys are looked up, one example at a time.
    """
    n = len(exact_keys)
    keep = np.zeros(n, dtype=bool)
    duplicate_of = np.full(n, -1, dtype=np.int64)
    result = Collapsed(keep, duplicate_of)
    reps = _exact_firsts(exact_keys, order, duplicate_of)  # best first
    result.exact = int((duplicate_of >= 0).sum())
    if threshold < 1.0 and len(reps) > 1:
        sharing, flat, bounds = _shared_band_keys(sigs, namespaces, reps)
    else:
        sharing, flat, bounds = np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(1, np.int64)
    alone = np.ones(len(reps), dtype=bool)
    alone[sharing] = False
    keep[reps[alone]] = True  # no band key in common with any other: neither a near duplicate nor one's original
    walk = reps[sharing].tolist()  # best first, as `reps`
    del alone
    packed = _packed(sigs, walk)
    table: dict[int, list[int]] = {}
    allowed = SIGNATURE_SIZE - int(np.ceil(threshold * SIGNATURE_SIZE - 1e-9))  # differing values per part
    for at, i in enumerate(walk):
        keys = flat[bounds[at] : bounds[at + 1]].tolist()  # Python ints for this one only: 8 bytes each until then
        twin = _near_twin(packed, i, keys, table, allowed)
        if twin is not None:
            duplicate_of[i] = twin
            result.near += 1
            continue
        keep[i] = True
        for key in keys:
            bucket = table.setdefault(key, [])
            if len(bucket) < BUCKET_CAP:
                bucket.append(i)
    # an exact duplicate of a near duplicate points at what that one duplicates: a kept example
    targets = duplicate_of[duplicate_of >= 0]
    redirect = duplicate_of[targets]
    moved = np.flatnonzero(duplicate_of >= 0)[redirect >= 0]
    duplicate_of[moved] = redirect[redirect >= 0]
    return result


def _exact_firsts(exact_keys: Sequence, order: Sequence[int], duplicate_of: np.ndarray) -> np.ndarray:
    """The first example of each exact key in `order` (returned in that order); the others point at it.

    In numpy (a Python dict of every key cost about 100 bytes an example at the collapse's peak)."""
    n = len(exact_keys)
    order = np.asarray(order, dtype=np.int64)
    if len(order) != n:
        raise ValueError(f"order has {len(order)} positions for {n} examples")
    if not n:
        return order
    _, code = np.unique(np.asarray(exact_keys), return_inverse=True)
    code = code.reshape(-1)
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    by = np.lexsort((rank, code))  # by key, best first within a key
    first = np.ones(n, dtype=bool)
    first[1:] = code[by[1:]] != code[by[:-1]]
    start = np.maximum.accumulate(np.where(first, np.arange(n), 0))
    duplicate_of[by[~first]] = by[start[~first]]
    reps = by[first]
    return reps[np.argsort(rank[reps], kind="stable")]


def _shared_band_keys(sigs: np.ndarray, namespaces: np.ndarray, of: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Of the rows `of`, those with a band key another of them has too, and those keys (the band is mixed in).

    Returns (rows, keys, bounds): `of[rows[k]]`'s shared keys are `keys[bounds[k]:bounds[k + 1]]`, in
    band order; numpy arrays, 8 bytes a key (Python lists of them cost about 48).
    """
    # in slices of rows, never a copy of all their signatures: band_keys widens each value to 64 bits
    # (about 1 KB a row while it works)
    keys = np.concatenate([band_keys(sigs[of[at : at + BAND_KEY_ROWS]], namespaces[of[at : at + BAND_KEY_ROWS]])
                           for at in range(0, len(of), BAND_KEY_ROWS)] or [np.zeros((0, BANDS), np.uint64)])
    keys = keys.view(np.int64)
    shared = np.zeros(keys.shape, dtype=bool)
    for band in range(BANDS):
        _, inverse, counts = np.unique(keys[:, band], return_inverse=True, return_counts=True)
        shared[:, band] = counts[inverse.reshape(-1)] > 1
    at = np.flatnonzero(shared)  # row-major: a row's shared keys together, in band order
    del shared
    flat = keys.ravel()[at]
    n = len(keys)
    del keys
    rows = at // BANDS
    del at
    sharing = np.unique(rows)
    bounds = np.searchsorted(rows, np.append(sharing, n))
    return sharing, flat, bounds


#: bit 0 of every 16-bit lane, for each part of a packed signature
_SAID_LANES = sum(1 << (16 * k) for k in range(SIGNATURE_SIZE))
_CONTEXT_LANES = _SAID_LANES << (16 * SIGNATURE_SIZE)


def _packed(sigs: np.ndarray, rows: list[int]) -> dict[int, int]:
    """These rows' signatures as 2048-bit Python ints: comparing two takes a few big-int operations."""
    data = np.ascontiguousarray(sigs[rows], dtype="<u2")
    return {i: int.from_bytes(row.tobytes(), "little") for i, row in zip(rows, data, strict=True)}


def _near_twin(packed: dict[int, int], i: int, keys: list[int], table: dict[int, list[int]], allowed: int) -> int | None:
    """A kept example sharing an LSH bucket with `i` whose two parts each differ in ≤ `allowed` values."""
    candidates: list[int] = []
    for key in keys:
        bucket = table.get(key)
        if bucket:
            candidates.extend(bucket)
    mine = packed[i]
    for j in dict.fromkeys(candidates):
        diff = packed[j] ^ mine
        # fold each 16-bit lane onto its lowest bit: bit 16k is set iff value k differs
        diff |= diff >> 8
        diff |= diff >> 4
        diff |= diff >> 2
        diff |= diff >> 1
        if (diff & _SAID_LANES).bit_count() <= allowed and (diff & _CONTEXT_LANES).bit_count() <= allowed:
            return j
    return None
