"""What `training_file`'s gates found per record line, kept between runs: a re-check after new data
validates only the lines it has not seen.

A written file is read as chunks of lines, each with a 128-bit hash of its bytes (the first half
of its SHA-256); `read_jsonl` in text mode splits lines the same way (universal newlines, UTF-8).
A gate keeps, per target and format, what a line gave that depends on the line alone:

* `format`: the lines that passed the format rules (a line that failed is checked again each time);
* `uniqueness`: each JSON line's record key and prompt key;
* `size`: each JSON line's token count (or that it could not be counted).

What depends on the whole file (duplicates, the train/validation overlap, counts, the token limit,
the minimum) is computed on every run, over these compact values. The fingerprint of a gate's memo
holds the gate, the format, the token encoding (`size`) and a hash of the source of the
validating modules (and bpe-openai's version): other rules or another encoding start empty. Each
run rewrites the memo with exactly the lines of the current files. A memo file that cannot be read
or does not match its digest is ignored (`memo_file`): the lines are checked again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.code_version import source_version
from pipeline.training_files.memo_file import MemoWriter, fingerprint, ignored, open_memo

#: the modules whose code decides a gate's per-line result
GATE_MODULES = (
    "pipeline.training_files.check_memo",
    "pipeline.training_files.format_rules",
    "pipeline.training_files.prepare",
    "pipeline.training_files.tokens",
    "pipeline.training_files.validate",
)
GATE_PACKAGES = ("bpe-openai",)
CHUNK_BYTES = 8 << 20


class _Invalid:
    """The record of a line that is not JSON."""


INVALID = _Invalid()


def parse_line(line: bytes) -> Any:
    """The record of one line, or INVALID when it is not JSON (bytes that are not UTF-8 raise, as
    reading the file as text does)."""
    try:
        return json.loads(line.decode("utf-8"))
    except json.JSONDecodeError:
        return INVALID


def line_chunks(path: str | Path, chunk_bytes: int = CHUNK_BYTES) -> Iterator[tuple[int, list[bytes], np.ndarray]]:
    """(number of the first line, the lines without their line ends, their hashes as (n, 2) uint64)
    per chunk of about `chunk_bytes`: the lines Python's text mode reads, "\\r\\n" and "\\r" ending
    a line as "\\n" does."""
    number = 1
    rest = b""
    with open(path, "rb") as handle:
        while True:
            data = handle.read(chunk_bytes)
            if not data:
                break
            data = rest + data
            cut = data.rfind(b"\n") + 1  # a "\r\n" is never split: the cut is after its "\n"
            if not cut:
                rest = data
                continue
            lines = _split(data[:cut])
            rest = data[cut:]
            yield number, lines, line_keys(lines)
            number += len(lines)
    if rest:
        lines = _split(rest)
        yield number, lines, line_keys(lines)


def _split(data: bytes) -> list[bytes]:
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return lines


def line_keys(lines: list[bytes]) -> np.ndarray:
    """128 bits of each line's SHA-256, as (n, 2) uint64."""
    sha256 = hashlib.sha256
    raw = b"".join([sha256(line).digest()[:16] for line in lines])
    return np.frombuffer(raw, dtype=">u8").reshape(-1, 2).astype(np.uint64)


class LineMemo:
    """One gate's known results per line hash (`values`: named int64 arrays), and the next memo's.

    `find` looks lines up; `remember` adds lines this run checked (or found); `save` writes exactly
    those. With no folder (`memo_dir=None`) nothing is known or kept.
    """

    def __init__(self, memo_dir: Path | None, gate: str, fmt: str, values: tuple[str, ...] = (), **settings: Any):
        self.values = values
        self.path = Path(memo_dir) / f"gate-{gate}-{fmt}.memo" if memo_dir is not None else None
        self.fingerprint = fingerprint(memo=f"training_file gate {gate}", fmt=fmt, values=list(values), **settings,
                                       code=source_version(GATE_MODULES, GATE_PACKAGES))
        self._high = np.zeros(0, dtype=np.uint64)
        self._low = np.zeros(0, dtype=np.uint64)
        self._known = {name: np.zeros(0, dtype=np.int64) for name in values}
        self._new: list[tuple[np.ndarray, dict[str, np.ndarray]]] = []
        self.note: str | None = None
        if self.path is not None:
            self._load()

    def _load(self) -> None:
        memo, self.note = open_memo(self.path, self.fingerprint)
        if memo is None:
            return
        try:
            arrays = memo.arrays
            high, low = arrays["high"], arrays["low"]
            known = {name: arrays[name] for name in self.values}
            if any(len(a) != len(high) for a in (low, *known.values())) or np.any(high[1:] < high[:-1]):
                raise ValueError("arrays of different lengths or out of order")
            self._high, self._low, self._known = high, low, known
        except (KeyError, ValueError) as exc:
            self.note = ignored(self.path, f"has unexpected contents ({exc})")
        finally:
            memo.close()

    def find(self, keys: np.ndarray) -> np.ndarray:
        """For each (n, 2) line hash, its row in the memo, or -1 when the line is not known."""
        found = np.full(len(keys), -1, dtype=np.int64)
        if not len(self._high) or not len(keys):
            return found
        at = np.minimum(np.searchsorted(self._high, keys[:, 0]), len(self._high) - 1)
        same = (self._high[at] == keys[:, 0]) & (self._low[at] == keys[:, 1])
        found[same] = at[same]
        return found

    def values_of(self, lines: list[bytes], keys: np.ndarray, compute: Callable[[Any], dict[str, int]],
                  fill: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """For a chunk of lines: which are JSON records, and their values, from the memo for a line it
        holds, else `compute(record)`; a line that is not JSON keeps `fill`. Remembers the records."""
        found = self.find(keys)
        valid = found >= 0
        values = {name: np.full(len(lines), fill, dtype=np.int64) for name in self.values}
        for name in self.values:
            values[name][valid] = self._known[name][found[valid]]
        for i in np.flatnonzero(~valid).tolist():
            record = parse_line(lines[i])
            if record is INVALID:
                continue
            valid[i] = True
            for name, value in compute(record).items():
                values[name][i] = value
        self.remember(keys[valid], **{name: v[valid] for name, v in values.items()})
        return valid, values

    def remember(self, keys: np.ndarray, **values: np.ndarray) -> None:
        """Lines of this run and their values, kept in the next memo."""
        if self.path is not None and len(keys):
            self._new.append((keys, {name: np.asarray(values[name], dtype=np.int64) for name in self.values}))

    def save(self) -> None:
        """Write the next memo: one entry per distinct line remembered this run."""
        if self.path is None:
            return
        keys = np.concatenate([k for k, _ in self._new]) if self._new else np.zeros((0, 2), dtype=np.uint64)
        values = {name: (np.concatenate([v[name] for _, v in self._new]) if self._new else np.zeros(0, np.int64))
                  for name in self.values}
        self._new = []
        order = np.lexsort((keys[:, 1], keys[:, 0]))
        keys = keys[order]
        first = np.ones(len(keys), dtype=bool)
        first[1:] = (keys[1:] != keys[:-1]).any(axis=1)
        arrays = {"high": keys[first, 0], "low": keys[first, 1], **{n: v[order][first] for n, v in values.items()}}
        writer = MemoWriter(self.path)
        try:
            writer.commit(self.fingerprint, arrays)
        except BaseException:
            writer.discard()
            raise
