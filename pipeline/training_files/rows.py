"""Pass 1 of the build, row by row: what each input row becomes, as compact values and bytes.

A row is dropped with a reason (`prepare.py`) or kept as a prepared record. Either way the build
keeps, per row, a `RowBatch` entry: the drop code, the record's compact keys (content, id, group,
prompt), its task, token counts and score, and its *segment*: the row's id, its line in each
format (`formats.py`) and its evaluation item, as the bytes the files get. Pass 2 then only
copies segments' lines into the files, and the next build takes an unchanged row's entry from the
memo (`memo.py`) instead of preparing it again.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.training_files import formats
from pipeline.training_files.prepare import (
    DROP_REASONS,
    content_key,
    key_hash,
    prepare_example,
    prepare_pair,
    prompt_key,
)
from pipeline.training_files.tokens import TokenCounter

#: `drop` of a kept row; a dropped row's is its reason's index in DROP_REASONS
KEPT = -1
_DROP_CODE = {reason: code for code, reason in enumerate(DROP_REASONS)}


@dataclass
class RowBatch:
    """Pass 1's results for some rows, in row order. `task` indexes `tasks`; `parts` are the
    lengths of each segment's pieces (id, one line per format, evaluation item), `segments` the
    bytes of all of them back to back, and `where` where each row's segment starts in it."""

    drop: np.ndarray  # int8
    content: np.ndarray  # int64, the same for the rest
    id_key: np.ndarray
    group: np.ndarray
    prompt: np.ndarray
    task: np.ndarray  # int32
    tokens: np.ndarray
    answer_tokens: np.ndarray
    score: np.ndarray  # float64, NaN for none
    parts: np.ndarray  # (n, pieces) int32
    check: np.ndarray  # uint32, the CRC-32 of each segment (what the memo checks a segment read back by)
    tasks: list[str]
    segments: bytes
    where: np.ndarray  # int64

    def __len__(self) -> int:
        return len(self.drop)


def prepare_rows(
    rows: list[dict[str, Any]],
    *,
    kind: str,
    method: str,
    id_column: str,
    counter: TokenCounter,
    max_tokens: int,
    fmts: tuple[str, ...],
) -> RowBatch:
    """Apply the drop rules to each row and build the kept ones' lines in every format of `fmts`."""
    n = len(rows)
    drop = np.full(n, KEPT, dtype=np.int8)
    ints = {name: np.zeros(n, dtype=np.int64) for name in ("content", "id_key", "group", "prompt", "tokens", "answer_tokens")}
    task = np.zeros(n, dtype=np.int32)
    score = np.full(n, np.nan, dtype=np.float64)
    parts = np.zeros((n, len(fmts) + 2), dtype=np.int32)
    tasks: dict[str, int] = {}
    pieces: list[bytes] = []
    builders = [formats.BUILDERS[f] for f in fmts]
    dumps = formats.dumps
    for i, row in enumerate(rows):
        row_id = str(row[id_column]).encode("utf-8")
        if kind == "examples":
            prepared = prepare_example(row, counter, max_tokens)
        else:
            prepared = prepare_pair(row, counter, max_tokens, method)
        if isinstance(prepared, str):
            drop[i] = _DROP_CODE[prepared]
            parts[i, 0] = len(row_id)
            pieces.append(row_id)
            continue
        ints["content"][i] = content_key(prepared)
        ints["id_key"][i] = key_hash(prepared["id"])
        ints["group"][i] = key_hash(prepared["group"])
        ints["prompt"][i] = key_hash(prompt_key(prepared["messages"]))
        task[i] = tasks.setdefault(prepared["task"], len(tasks))
        ints["tokens"][i] = prepared.pop("tokens")
        ints["answer_tokens"][i] = prepared.pop("assistant_tokens")
        if prepared.get("score") is not None:
            score[i] = prepared["score"]
        # the builders get the record as JSON gives it back, as they did when pass 1 spooled JSON
        record = json.loads(json.dumps(prepared, sort_keys=True, ensure_ascii=False))
        lines = [row_id] + [(dumps(build(record)) + "\n").encode("utf-8") for build in builders]
        lines.append((dumps(formats.evaluation_item(record)) + "\n").encode("utf-8"))
        parts[i] = [len(line) for line in lines]
        pieces.extend(lines)
    segments = b"".join(pieces)
    where = _starts(parts)
    return RowBatch(drop=drop, task=task, score=score, parts=parts, check=segment_checks(segments, where, parts),
                    tasks=list(tasks), segments=segments, where=where, **ints)


def _starts(parts: np.ndarray) -> np.ndarray:
    """Where each segment starts when segments of these `parts` lie back to back."""
    lengths = parts.sum(axis=1, dtype=np.int64)
    return np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64) if len(parts) else np.zeros(0, np.int64)


def segment_checks(segments: bytes, where: np.ndarray, parts: np.ndarray) -> np.ndarray:
    """The CRC-32 of each segment in `segments` (starting at `where`, as long as its `parts`)."""
    view = memoryview(segments)
    ends = (where + parts.sum(axis=1, dtype=np.int64)).tolist()
    return np.asarray([zlib.crc32(view[a:b]) for a, b in zip(where.tolist(), ends, strict=True)], dtype=np.uint32)


def merge(n: int, pieces: int, batches: list[tuple[np.ndarray, RowBatch]]) -> RowBatch:
    """One RowBatch of `n` rows in row order from batches that each hold the rows at given positions."""
    out = RowBatch(
        drop=np.full(n, KEPT, dtype=np.int8), task=np.zeros(n, dtype=np.int32),
        score=np.full(n, np.nan, dtype=np.float64), parts=np.zeros((n, pieces), dtype=np.int32),
        check=np.zeros(n, dtype=np.uint32), tasks=[],
        segments=b"", where=np.zeros(n, dtype=np.int64),
        **{name: np.zeros(n, dtype=np.int64) for name in ("content", "id_key", "group", "prompt", "tokens", "answer_tokens")},
    )
    offset = 0
    segments = []
    for positions, batch in batches:
        for name in ("drop", "content", "id_key", "group", "prompt", "tokens", "answer_tokens", "score", "parts", "check"):
            getattr(out, name)[positions] = getattr(batch, name)
        out.task[positions] = batch.task + len(out.tasks)
        out.tasks.extend(batch.tasks)
        out.where[positions] = batch.where + offset
        offset += len(batch.segments)
        segments.append(batch.segments)
    out.segments = b"".join(segments)
    return out


def segment_id(batch: RowBatch, row: int) -> str:
    """The id of `row` (the first piece of its segment)."""
    start = int(batch.where[row])
    return batch.segments[start : start + int(batch.parts[row, 0])].decode("utf-8")
