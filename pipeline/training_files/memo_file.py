"""One memo file: named NumPy arrays and a blob of bytes, under a fingerprint and a digest.

`training_file` keeps what it worked out per input row (`memo.py`) and what its gates found per
record line (`check_memo.py`) in such files, so the next run redoes only what is new. A file is
written once, to a temporary name, and moved over the old one (`os.replace`), so a reader sees the
old file or the new one, never half of either. Layout:

    [blob][arrays, each at an 8-byte boundary][footer: JSON][footer length: 8 bytes LE][MAGIC]

The footer holds the fingerprint (what the memo's values depend on: settings and a hash of the
code that made them), the blob's length, where each array lies, free-form `meta`, and the SHA-256
of the arrays (every byte from the end of the blob to the footer). The blob is not in that digest:
it can be hundreds of MB and a run reads only parts of it, so whoever writes records into it keeps
a checksum per record in an array and checks each record it reads (`memo.py` keeps a CRC-32 per
row). `open_memo` returns None, never raises, for a missing file, another fingerprint, or a file
that is unreadable, truncated or altered (its digest does not match); the caller then computes
everything again, and the warning is logged. A memo can only save work: a value is taken from it
only under the same fingerprint, for the same content hash.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

MAGIC = b"FWMEMO01"
_TAIL = 16  # footer length + MAGIC

log = logging.getLogger(__name__)


def fingerprint(**parts: Any) -> str:
    """A stable hash of keyword values (JSON-serialisable): the key a memo is valid under."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


class MemoWriter:
    """Writes a memo file: blob bytes first (readable back while writing), then `commit` the arrays.

    The blob is written to a temporary file next to `path`; `discard` removes it (a run that failed,
    or one that keeps no memo and used the blob only as its spool).
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        self._out = open(self.tmp, "wb")
        self._sha = None  # the digest of what `commit` writes after the blob
        self._reader: int | None = None
        self.size = 0

    def write(self, data: bytes | memoryview) -> int:
        """Append `data` to the blob; returns the offset it starts at."""
        offset = self.size
        self._out.write(data)
        if self._sha is not None:
            self._sha.update(data)
        self.size += len(data)
        return offset

    def read(self, offset: int, length: int) -> bytes:
        """Bytes of the blob written so far (pass 2 of the build reads its records back from here)."""
        if self._reader is None:
            self._out.flush()
            self._reader = os.open(self.tmp, os.O_RDONLY)
        return _pread(self._reader, offset, length)

    def commit(self, fingerprint: str, arrays: dict[str, np.ndarray], meta: dict[str, Any] | None = None) -> Path:
        """Write the arrays and the footer, and move the file into place."""
        blob_bytes = self.size
        self._sha = hashlib.sha256()
        layout = {}
        for name, values in arrays.items():
            self.write(b"\0" * (-self.size % 8))
            values = np.ascontiguousarray(values)
            layout[name] = [values.dtype.str, list(values.shape), self.write(values.tobytes())]
        footer = json.dumps({"fingerprint": fingerprint, "blob_bytes": blob_bytes, "arrays": layout,
                             "meta": meta or {}, "sha256": self._sha.hexdigest()}, sort_keys=True).encode()
        self._out.write(footer + len(footer).to_bytes(8, "little") + MAGIC)
        self._close()
        os.replace(self.tmp, self.path)
        return self.path

    def discard(self) -> None:
        self._close()
        self.tmp.unlink(missing_ok=True)

    def _close(self) -> None:
        if self._reader is not None:
            os.close(self._reader)
            self._reader = None
        if not self._out.closed:
            self._out.close()


@dataclass
class Memo:
    """A memo file that passed its checks: its arrays, `meta`, and its blob read by offset (the
    blob's records are checked by whoever reads them)."""

    path: Path
    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]
    _fd: int = field(repr=False)

    def read(self, offset: int, length: int) -> bytes:
        return _pread(self._fd, offset, length)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def open_memo(path: Path, expected: str) -> tuple[Memo | None, str | None]:
    """(the memo at `path`, None) when it exists, has the fingerprint `expected` and its digest holds;
    else (None, why not). A damaged file is logged as a warning and reported, never raised."""
    path = Path(path)
    if not path.exists():
        return None, None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        return None, ignored(path, f"cannot be opened ({exc})")
    try:
        memo, why = _read(path, fd, expected)
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        memo, why = None, ignored(path, f"is unreadable ({type(exc).__name__}: {exc})")
    if memo is None:
        os.close(fd)
    return memo, why


def _read(path: Path, fd: int, expected: str) -> tuple[Memo | None, str | None]:
    size = os.fstat(fd).st_size
    if size < _TAIL:
        return None, ignored(path, "is truncated")
    tail = _pread(fd, size - _TAIL, _TAIL)
    if tail[8:] != MAGIC:
        return None, ignored(path, "is not a memo file (no end marker)")
    footer_length = int.from_bytes(tail[:8], "little")
    body = size - _TAIL - footer_length
    if body < 0:
        return None, ignored(path, "is truncated")
    footer = json.loads(_pread(fd, body, footer_length))
    if footer["fingerprint"] != expected:
        return None, None  # made by other settings or other code: not an error, just not ours
    blob_bytes = int(footer["blob_bytes"])
    if not 0 <= blob_bytes <= body:
        return None, ignored(path, "is truncated")
    section = _pread(fd, blob_bytes, body - blob_bytes)
    if hashlib.sha256(section).hexdigest() != footer["sha256"]:
        return None, ignored(path, "does not match its digest (altered or partly written)")
    arrays = {}
    for name, (dtype, shape, offset) in footer["arrays"].items():
        dtype = np.dtype(dtype)
        count = int(np.prod(shape, dtype=np.int64))
        start = offset - blob_bytes
        if start < 0 or start + count * dtype.itemsize > len(section):
            return None, ignored(path, f"has an array {name!r} outside the file")
        arrays[name] = np.frombuffer(section, dtype=dtype, count=count, offset=start).reshape(shape)
    return Memo(path, arrays, footer.get("meta") or {}, fd), None


def ignored(path: Path, why: str) -> str:
    """Log that the memo at `path` is ignored and why; returns the message."""
    message = f"memo {path} {why}: ignored, everything it held is computed again"
    log.warning(message)
    return message


def _pread(fd: int, offset: int, length: int) -> bytes:
    data = os.pread(fd, length, offset)
    if len(data) == length:
        return data
    parts = [data]
    got = len(data)
    while got < length:
        more = os.pread(fd, length - got, offset + got)
        if not more:
            raise ValueError(f"short read: {got} of {length} bytes at {offset}")
        parts.append(more)
        got += len(more)
    return b"".join(parts)
