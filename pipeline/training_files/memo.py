"""What `training_file` keeps of each input row between runs, so a run after new data prepares only new rows.

Per target, `FLYWHEEL_HOME/<target>/.memo/rows-<examples|pairs>.memo` (a `memo_file` file) holds,
for every row of the input the last build read, keyed by the row's SHA-256 (the digest that goes
into the dataset version, so it is computed from the row's bytes on every run):

* the row's outcome: dropped with a reason, or kept with its compact keys (content, id, group,
  prompt), task, token counts and score;
* its bytes (the *segment*): the row's id, then its line in each format, then its evaluation
  item: exactly what the build writes into the files for it, with a CRC-32 of them. A segment
  read back that does not match its CRC-32 is prepared again (and the damage logged).

The fingerprint names everything a row's outcome depends on besides the row itself: the input
kind and columns, the method and its formats, the token encoding, `max_tokens_per_example`, the
format revision, and a hash of the source of every module that prepares, counts, formats or
hashes a row (and of bpe-openai's version). Another value of any of them starts with an empty memo.

Each build writes the memo anew with exactly the rows of its input (the file also serves as
the build's spool), so it holds one entry per current row, never the history.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.core.code_version import source_version
from pipeline.core.settings import target_dir
from pipeline.training_files.memo_file import Memo, fingerprint, ignored, open_memo
from pipeline.training_files.rows import RowBatch, segment_checks

MEMO_DIR = ".memo"

#: the modules whose code decides what a row becomes (its outcome and bytes)
ROW_MODULES = (
    "pipeline.core.canonical",
    "pipeline.training_files.build",
    "pipeline.training_files.formats",
    "pipeline.training_files.memo",
    "pipeline.training_files.prepare",
    "pipeline.training_files.rows",
    "pipeline.training_files.tokens",
    "pipeline.training_files.version",
)
ROW_PACKAGES = ("bpe-openai",)
#: per-row arrays of the memo, besides `key`, `start` and `parts`; `rows.RowBatch` has the same fields
VALUE_ARRAYS = ("drop", "content", "id_key", "group", "prompt", "task", "tokens", "answer_tokens", "score", "check")


def memo_dir(target: str) -> Path:
    """The folder of a target's memos (`FLYWHEEL_HOME/<target>/.memo/`)."""
    path = target_dir(target) / MEMO_DIR
    path.mkdir(parents=True, exist_ok=True)
    return path


def row_memo_path(target: str, kind: str) -> Path:
    return memo_dir(target) / f"rows-{kind}.memo"


def row_fingerprint(
    *, kind: str, columns: list[str], method: str, formats: tuple[str, ...], encoding: str, max_tokens: int,
    format_revision: int,
) -> str:
    """The key the row memo is valid under (see the module's docstring)."""
    return fingerprint(
        memo="training_file rows", kind=kind, columns=list(columns), method=method, formats=list(formats),
        encoding=encoding, max_tokens=max_tokens, format_revision=format_revision,
        code=source_version(ROW_MODULES, ROW_PACKAGES),
    )


def digest_high(keys: np.ndarray) -> np.ndarray:
    """The first 8 bytes of each (n, 32) digest as a big-endian uint64 (what lookups sort by)."""
    return np.ascontiguousarray(keys[:, :8]).view(">u8").ravel().astype(np.uint64)


class RowMemo:
    """The last build's rows, found by row digest; their values and segments read back."""

    def __init__(self, memo: Memo):
        self.memo = memo
        self.keys = memo.arrays["key"]
        self.start = memo.arrays["start"]
        self.parts = memo.arrays["parts"]
        self.values = {name: memo.arrays[name] for name in VALUE_ARRAYS}
        self.tasks: list[str] = list(memo.meta["tasks"])
        n = len(self.keys)
        if not (self.keys.ndim == 2 and self.keys.shape[1] == 32 and all(len(a) == n for a in memo.arrays.values())):
            raise ValueError("arrays of different lengths")
        high = digest_high(self.keys)
        self._order = np.argsort(high, kind="stable")
        self._high = high[self._order]

    @classmethod
    def open(cls, path: Path, expected: str) -> tuple[RowMemo | None, str | None]:
        """(the memo, None), or (None, why it was ignored; None when there was none or it was made
        by other settings): a damaged memo costs a recompute, never a wrong row."""
        memo, why = open_memo(path, expected)
        if memo is None:
            return None, why
        try:
            return cls(memo), None
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            memo.close()
            return None, ignored(path, f"has unexpected contents ({exc})")

    def find(self, digests: np.ndarray) -> np.ndarray:
        """For each (n, 32) digest, the memo row holding it, or -1 (a miss: prepare the row)."""
        found = np.full(len(digests), -1, dtype=np.int64)
        if not len(self._high) or not len(digests):
            return found
        at = np.searchsorted(self._high, digest_high(digests))
        at = np.minimum(at, len(self._high) - 1)
        rows = self._order[at]
        same = (self.keys[rows] == digests).all(axis=1)  # all 32 bytes, not only the 8 sorted on
        found[same] = rows[same]
        return found

    def take(self, rows: np.ndarray) -> tuple[RowBatch, np.ndarray]:
        """The memo's results for `rows` (memo row numbers), as pass 1 would have made them, and
        which rows were intact: a row whose segment fails its CRC-32 is left out (prepare it again)."""
        segments, where = self.segments(rows)
        parts = self.parts[rows]
        intact = segment_checks(segments, where, parts) == self.values["check"][rows]
        if not intact.all():
            rows, where, parts = rows[intact], where[intact], parts[intact]
            view = memoryview(segments)
            ends = where + parts.sum(axis=1, dtype=np.int64)
            segments = b"".join(view[a:b] for a, b in zip(where.tolist(), ends.tolist(), strict=True))
            where = np.concatenate(([0], np.cumsum(ends - where)[:-1])).astype(np.int64)
        values = {name: self.values[name][rows] for name in VALUE_ARRAYS}
        return RowBatch(**values, parts=parts, tasks=self.tasks, segments=segments, where=where), intact

    def segments(self, rows: np.ndarray) -> tuple[bytes, np.ndarray]:
        """The segments of memo `rows` as one buffer, and where each row's segment starts in it.

        Segments that lie back to back in the memo (rows in the same order as last time) are read
        with one call.
        """
        starts = self.start[rows]
        lengths = self.parts[rows].sum(axis=1, dtype=np.int64)
        order = np.argsort(starts, kind="stable")
        s, n = starts[order], lengths[order]
        where = np.zeros(len(rows), dtype=np.int64)
        if not len(rows):
            return b"", where
        within = np.concatenate(([0], np.cumsum(n)[:-1]))
        breaks = np.ones(len(s), dtype=bool)
        breaks[1:] = s[1:] != s[:-1] + n[:-1]
        first = np.flatnonzero(breaks)
        run_lengths = np.add.reduceat(n, first)
        buffer = b"".join(self.memo.read(int(a), int(b)) for a, b in zip(s[first].tolist(), run_lengths.tolist(), strict=True))
        where[order] = within
        return buffer, where

    def close(self) -> None:
        self.memo.close()
