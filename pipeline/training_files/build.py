"""Build a target's training files from its anonymized dataset: read, drop, dedupe, split, write.

Dropped rows are listed with their reason in `<version>/dropped.jsonl`.

Two streaming passes keep a million rows in bounded memory. Pass 1 reads the Parquet file in
record batches and hashes every row (SHA-256, `version.row_digests`) into the dataset version
(order-independent). A row whose digest the target's memo holds (`memo.py`: what the last build
made of each of its rows) is taken from it; any other row goes through the drop rules of
`prepare.py` and is formatted (`rows.py`). Either way its *segment* (id, a line per format, the
evaluation item) goes to the spool, which becomes the next build's memo, and per row only compact
arrays are kept (hashes, offsets, token counts, task codes). Duplicates (same content) and the
split are computed on those arrays with numpy. Pass 2 copies the kept rows' lines from the spool in
the order of a hash of their id (so the bytes do not depend on the upstream row order) into every
format's train and validation files. Files, version and manifest are the same with or without a memo.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.artifacts import BACKEND_FORMAT, anonymized_dir, dataset_dir, write_atomic, write_manifest
from pipeline.core.targets import Target
from pipeline.training_files import formats
from pipeline.training_files.memo import VALUE_ARRAYS, RowMemo, row_fingerprint, row_memo_path
from pipeline.training_files.memo_file import MemoWriter, ignored
from pipeline.training_files.prepare import DROP_REASONS
from pipeline.training_files.rows import KEPT, RowBatch, merge, prepare_rows, segment_id
from pipeline.training_files.split import split_rows
from pipeline.training_files.tokens import TokenCounter, encoding_for_model
from pipeline.training_files.validate import estimate_cost
from pipeline.training_files.version import (
    FORMAT_REVISION,
    InputHasher,
    dataset_version,
    formatting_config,
    row_digests,
)

EXAMPLE_INPUT = {
    "required": ("example_id", "task", "messages", "completion"),
    "optional": ("group_id", "occurred_at", "system_prompt", "completion_source", "score", "score_reasons", "context"),
}
PAIR_INPUT = {
    "required": ("pair_id", "task", "messages", "chosen", "rejected"),
    "optional": ("group_id", "system_prompt", "source", "score"),
}
#: rows read at a time: a batch's new rows are held as Python values (about 2.5 KB a row), so at 20,000 rows the
#: batch itself was what grew between 100k and 1M interactions (366 -> 568 MiB) while small targets never filled one
BATCH_ROWS = 4_096
HISTOGRAM_EDGES = (0, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072)


class TrainingFileInputError(ValueError):
    """The anonymized input is missing or lacks columns; the message says what to do."""


@dataclass(frozen=True)
class BuildResult:
    version: str
    manifest_path: Path
    manifest: dict[str, Any]
    #: input rows taken from the memo, and prepared (dropped or formatted) by this build
    reused_rows: int = 0
    prepared_rows: int = 0
    #: why an existing memo was ignored (damaged or unreadable), None when it was not
    memo_note: str | None = None


def input_kind(method: str) -> str:
    return "examples" if method == "sft" else "pairs"


def backend_format(target: Target) -> str:
    key = (target.backend, target.method)
    if key not in BACKEND_FORMAT:
        raise ValueError(f"no training-file format for backend {target.backend!r} with method {target.method!r}")
    return BACKEND_FORMAT[key]


def build_training_files(
    target: Target, *, source_dir: Path | None = None, batch_rows: int = BATCH_ROWS, memo: bool = True
) -> BuildResult:
    """Write the target's dataset version (files + manifest) from the anonymized tables in `source_dir`.

    `source_dir` is the anonymized version the gates approved (`anonymized/<version>/`); the
    default, `anonymized/` itself, serves callers that write the tables there directly.
    `memo=False` prepares every row and leaves the target's memo as it was.
    """
    import pyarrow.parquet as pq

    kind = input_kind(target.method)
    spec = EXAMPLE_INPUT if kind == "examples" else PAIR_INPUT
    source = (Path(source_dir) if source_dir else anonymized_dir(target.name)) / f"{kind}.parquet"
    if not source.exists():
        raise TrainingFileInputError(
            f"{source} does not exist: materialize anonymized_dataset for target {target.name!r} first"
        )
    parquet = pq.ParquetFile(source)
    present = set(parquet.schema_arrow.names)
    missing = [c for c in spec["required"] if c not in present]
    if missing:
        raise TrainingFileInputError(
            f"{source} lacks the columns {', '.join(missing)} that training_file needs; "
            "re-materialize anonymized_dataset (its columns are EXAMPLE_COLUMNS / PAIR_COLUMNS in pipeline/core/artifacts.py)"
        )
    columns = sorted(c for c in (*spec["required"], *spec["optional"]) if c in present)
    id_column = spec["required"][0]

    choice = encoding_for_model(target.base_model)
    counter = TokenCounter(choice.encoding)
    cfg = target.training_file
    max_tokens = cfg.max_tokens_per_example
    fmts = formats.formats_for(target.method)
    hasher = InputHasher(columns)
    memo_path = row_memo_path(target.name, kind)
    expected = row_fingerprint(kind=kind, columns=columns, method=target.method, formats=fmts,
                               encoding=choice.encoding, max_tokens=max_tokens, format_revision=FORMAT_REVISION)
    old, memo_note = RowMemo.open(memo_path, expected) if memo else (None, None)

    dropped: Counter[str] = Counter({reason: 0 for reason in DROP_REASONS})
    drops: list[tuple[str, str]] = []
    table = _RowTable(len(fmts) + 2)
    task_names: dict[str, int] = {}
    dates: list[str] = []
    reused = damaged = 0

    # the new memo's blob is this build's spool: each row's segment (id, a line per format, the
    # evaluation item), read back by offset in pass 2
    writer = MemoWriter(memo_path)
    committed = False
    try:
        input_rows = 0
        for batch in parquet.iter_batches(batch_size=batch_rows, columns=columns):
            input_rows += batch.num_rows
            digests = row_digests(batch, columns)
            hasher.update_digests(digests)
            if "occurred_at" in columns:
                _date_range(dates, batch.column("occurred_at"))
            found = old.find(digests) if old is not None else np.full(batch.num_rows, -1, dtype=np.int64)
            hit = np.flatnonzero(found >= 0)
            parts = []
            if len(hit):
                taken, intact = old.take(found[hit])
                found[hit[~intact]] = -1  # a damaged segment: prepare the row again
                damaged += int((~intact).sum())
                hit = hit[intact]
                parts.append((hit, taken))
            miss = np.flatnonzero(found < 0)
            if len(miss):
                rows = batch.take(miss).to_pylist() if len(hit) else batch.to_pylist()
                parts.append((miss, prepare_rows(rows, kind=kind, method=target.method, id_column=id_column,
                                                 counter=counter, max_tokens=max_tokens, fmts=fmts)))
            reused += len(hit)
            done = merge(batch.num_rows, len(fmts) + 2, parts)
            base = writer.write(done.segments)
            for row in np.flatnonzero(done.drop != KEPT).tolist():
                reason = DROP_REASONS[int(done.drop[row])]
                dropped[reason] += 1
                drops.append((segment_id(done, row), reason))
            table.add(done, digests, base + done.where, task_names)
        del parquet
        if damaged:
            memo_note = ignored(memo_path, f"held {damaged:,} rows whose bytes fail their CRC-32 (prepared again)")
        arrays = table.arrays()

        # duplicates: of rows with the same content, the one with the smallest id hash is kept, so
        # the choice does not depend on row order; records are then written in id-hash order
        prepared = np.flatnonzero(arrays["drop"] == KEPT)
        ckeys = arrays["content"][prepared]
        ikeys = arrays["id_key"][prepared]
        by_content = np.lexsort((ikeys, ckeys))
        duplicate = np.zeros(len(ckeys), dtype=bool)
        duplicate[by_content[1:][ckeys[by_content][1:] == ckeys[by_content][:-1]]] = True
        kept = np.flatnonzero(~duplicate)
        kept = kept[np.argsort(ikeys[kept], kind="stable")]
        del ckeys
        starts, pieces = arrays["start"][prepared], arrays["parts"][prepared]
        for row in np.flatnonzero(duplicate).tolist():
            drops.append((writer.read(int(starts[row]), int(pieces[row, 0])).decode("utf-8"), "duplicate"))
        dropped["duplicate"] += int(duplicate.sum())

        config = formatting_config(
            method=target.method,
            backend=target.backend,
            base_model=target.base_model,
            encoding=choice.encoding,
            validation_share=cfg.validation_share,
            seed=cfg.seed,
            max_tokens=max_tokens,
        )
        version = dataset_version({kind: hasher.hexdigest()}, config)
        in_validation = split_rows(
            arrays["group"][prepared][kept],
            arrays["prompt"][prepared][kept],
            arrays["task"][prepared][kept],
            cfg.validation_share,
            cfg.seed,
        )
        out = dataset_dir(target.name, version)
        files = _write_formats(writer, starts[kept], pieces[kept], out, fmts, in_validation)
        evaluation_items = _write_evaluation_items(writer, starts[kept][in_validation], pieces[kept][in_validation], out)
        drops.sort()
        write_atomic(out / "dropped.jsonl", "".join(json.dumps({"id": i, "reason": r}) + "\n" for i, r in drops))
        if memo:
            writer.commit(expected, arrays, {"tasks": list(task_names), "formats": list(fmts), "rows": input_rows})
            committed = True
    finally:
        if old is not None:
            old.close()
        if not committed:
            writer.discard()

    tokens, answer_tokens, task_codes, scores = (arrays[name][prepared][kept]
                                                 for name in ("tokens", "answer_tokens", "task", "score"))
    written = len(tokens)
    if input_rows != written + sum(dropped.values()):  # pragma: no cover - an accounting bug
        raise AssertionError(f"rows in {input_rows} != written {written} + dropped {sum(dropped.values())}")
    token_arr = tokens
    codes = task_codes
    names = {code: name for name, code in task_names.items()}
    by_task = {
        names[code]: {
            "train": int(((codes == code) & ~in_validation).sum()),
            "validation": int(((codes == code) & in_validation).sum()),
        }
        for code in sorted(names)
    }
    by_task = dict(sorted(by_task.items()))
    train_tokens = token_arr[~in_validation]
    manifest = {
        "target": target.name,
        "dataset_version": version,
        "method": target.method,
        "backend": target.backend,
        "base_model": target.base_model,
        "backend_format": backend_format(target),
        "files": files,
        "dropped_file": str(out / "dropped.jsonl"),
        # the validation rows again in one neutral form (id, task, prompt, answer): what
        # evaluated_model scores models on; no trainer ever reads this file
        "evaluation_items": evaluation_items,
        "counts": {
            "input_rows": input_rows,
            "written": written,
            "train": int((~in_validation).sum()),
            "validation": int(in_validation.sum()),
            "dropped": dict(sorted(dropped.items())),
            "by_task": by_task,
        },
        "tokens": {
            "encoding": choice.encoding,
            "exact": choice.exact,
            "note": choice.reason,
            "max_tokens_per_example": max_tokens,
            "train_total": int(train_tokens.sum()),
            "validation_total": int(token_arr[in_validation].sum()),
            "answer_total": int(answer_tokens.sum()),
            "per_example": _distribution(token_arr),
            "histogram": _histogram(token_arr),
        },
        "cost": estimate_cost(
            backend=target.backend,
            base_model=target.base_model,
            method=target.method,
            train_tokens=train_tokens.tolist(),
            max_tokens=max_tokens,
            n_epochs=target.hyperparameters.get("n_epochs"),
            budget_usd=cfg.budget_usd,
        ),
        "source": {
            "kind": kind,
            "path": str(source),
            "sha256": hasher.hexdigest(),
            "occurred_at": {"min": dates[0], "max": dates[1]} if dates else None,
            "score_histogram": _score_histogram(scores),
        },
        "config": config,
        "created_at": _created_at(out),
    }
    path = write_manifest(target.name, version, manifest)
    return BuildResult(version, path, manifest, reused_rows=reused, prepared_rows=input_rows - reused,
                       memo_note=memo_note)


#: kept rows whose lines are gathered before each write (bounded memory: a few MB a format)
WRITE_ROWS = 2_048


def _write_evaluation_items(writer: MemoWriter, starts: np.ndarray, pieces: np.ndarray, out: Path) -> str | None:
    """Write the held-out (validation) rows' evaluation items (`formats.evaluation_item`, made in
    pass 1: each segment's last piece); None when there are none."""
    path = out / "evaluation" / "items.jsonl"
    if not len(starts):
        path.unlink(missing_ok=True)
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    last = pieces.shape[1] - 1
    offsets = starts + pieces[:, :last].sum(axis=1, dtype=np.int64)
    with open(tmp, "wb") as fh:
        for begin in range(0, len(starts), WRITE_ROWS):
            chunk = zip(offsets[begin : begin + WRITE_ROWS].tolist(), pieces[begin : begin + WRITE_ROWS, last].tolist(), strict=True)
            fh.write(b"".join(writer.read(offset, length) for offset, length in chunk))
    tmp.replace(path)
    return str(path)


def _write_formats(
    writer: MemoWriter, starts: np.ndarray, pieces: np.ndarray, out: Path, fmts: tuple[str, ...],
    in_validation: np.ndarray,
) -> dict[str, dict]:
    """Copy the kept rows' lines (in this order) from their segments into every format's split files."""
    has_validation = bool(in_validation.any())
    splits = ("train", "validation") if has_validation else ("train",)
    paths = {(f, s): out / f / f"{s}.jsonl" for f in fmts for s in splits}
    for path in paths.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = {key: path.with_name(f".{path.name}.tmp") for key, path in paths.items()}
    cuts = np.cumsum(pieces[:, : len(fmts) + 1], axis=1).tolist()  # where each format's line ends
    with ExitStack() as stack:
        handles = {key: stack.enter_context(open(p, "wb")) for key, p in tmp.items()}
        for begin in range(0, len(starts), WRITE_ROWS):
            lines: dict[tuple[str, str], list[bytes]] = {key: [] for key in handles}
            for start, ends, validation in zip(
                starts[begin : begin + WRITE_ROWS].tolist(), cuts[begin : begin + WRITE_ROWS],
                in_validation[begin : begin + WRITE_ROWS].tolist(), strict=True,
            ):
                segment = writer.read(start, ends[-1])
                split = "validation" if validation else "train"
                for i, fmt in enumerate(fmts):
                    lines[(fmt, split)].append(segment[ends[i] : ends[i + 1]])
            for key, chunk in lines.items():
                handles[key].write(b"".join(chunk))
    for key, path in tmp.items():
        path.replace(paths[key])
    for fmt in fmts:  # a re-run that now has no validation rows must not leave an old file behind
        stale = out / fmt / "validation.jsonl"
        if not has_validation and stale.exists():
            stale.unlink()
    return {
        f: {"train": str(paths[(f, "train")]), "validation": str(paths[(f, "validation")]) if has_validation else None}
        for f in fmts
    }


class _RowTable:
    """Pass 1's per-row arrays over the whole input, in row order (the new memo's arrays)."""

    def __init__(self, pieces: int):
        self.pieces = pieces
        self._chunks: dict[str, list[np.ndarray]] = {name: [] for name in ("key", "start", "parts", *VALUE_ARRAYS)}

    def add(self, batch: RowBatch, digests: np.ndarray, starts: np.ndarray, task_names: dict[str, int]) -> None:
        """Append a batch; its task codes become the build's (numbered in order of first appearance
        among prepared rows, as the split's tie-break expects)."""
        prepared = batch.drop == KEPT
        local = batch.task[prepared]
        codes = np.zeros(len(batch), dtype=np.int32)
        if len(local):
            seen, first = np.unique(local, return_index=True)
            for code in seen[np.argsort(first)].tolist():
                task_names.setdefault(batch.tasks[code], len(task_names))
            mapping = np.asarray([task_names.get(name, -1) for name in batch.tasks], dtype=np.int32)
            codes[prepared] = mapping[local]
        chunk = {"key": digests, "start": starts, "parts": batch.parts, "task": codes}
        for name in self._chunks:
            self._chunks[name].append(chunk[name] if name in chunk else getattr(batch, name))

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays, each over every row added (the table is empty afterwards)."""
        if not self._chunks["key"]:
            empty = {"key": np.zeros((0, 32), np.uint8), "parts": np.zeros((0, self.pieces), np.int32),
                     "drop": np.zeros(0, np.int8), "task": np.zeros(0, np.int32), "score": np.zeros(0, np.float64)}
            return {name: empty.get(name, np.zeros(0, np.int64)) for name in self._chunks}
        out = {name: np.concatenate(chunks) for name, chunks in self._chunks.items()}
        for chunks in self._chunks.values():
            chunks.clear()
        return out


def _date_range(dates: list[str], column: Any) -> None:
    """Widen [min, max] of `occurred_at` texts (ISO for dates and times, else `str`) with an Arrow column."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        bounds = pc.min_max(column)  # UTF-8 byte order is code-point order: Python's min and max
        if not bounds["min"].is_valid:
            return
        low, high = bounds["min"].as_py(), bounds["max"].as_py()
    else:
        texts = [v.isoformat() if hasattr(v, "isoformat") else str(v) for v in column.to_pylist() if v is not None]
        if not texts:
            return
        low, high = min(texts), max(texts)
    if not dates:
        dates.extend([low, high])
    else:
        dates[0], dates[1] = min(dates[0], low), max(dates[1], high)


def _distribution(values: np.ndarray) -> dict[str, float | int]:
    if len(values) == 0:
        return {"count": 0}
    return {
        "count": len(values),
        "min": int(values.min()),
        "p50": int(np.percentile(values, 50)),
        "p95": int(np.percentile(values, 95)),
        "max": int(values.max()),
        "mean": round(float(values.mean()), 1),
    }


def _histogram(values: np.ndarray) -> list[dict[str, int]]:
    edges = np.asarray(HISTOGRAM_EDGES + (max(HISTOGRAM_EDGES[-1] + 1, int(values.max()) + 1 if len(values) else 0),))
    counts, _ = np.histogram(values, bins=edges)
    return [
        {"from": int(edges[i]), "to": int(edges[i + 1]), "count": int(c)}
        for i, c in enumerate(counts)
        if c
    ]


def _score_histogram(scores: np.ndarray) -> dict[str, int]:
    known = scores[~np.isnan(scores)]
    out = {"unscored": int(np.isnan(scores).sum())} if np.isnan(scores).any() else {}
    counts, _ = np.histogram(np.clip(known, 0, 10), bins=np.arange(0, 11))
    out.update({f"{i}-{i + 1}": int(c) for i, c in enumerate(counts) if c})
    return out


def _created_at(out: Path) -> str:
    """When this version was first written: kept on re-runs so the manifest's bytes do not change."""
    from datetime import UTC, datetime

    existing = out / "manifest.json"
    if existing.exists():
        try:
            return json.loads(existing.read_text(encoding="utf-8"))["created_at"]
        except (ValueError, KeyError):
            pass
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
