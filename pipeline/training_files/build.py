"""Build a target's training files from its anonymized dataset: read, drop, dedupe, split, write.

Dropped rows are listed with their reason in `<version>/dropped.jsonl`.

Two streaming passes keep a million rows in bounded memory. Pass 1 reads the Parquet file in
record batches, hashes every row into the dataset version (order-independent), applies the drop
rules of `prepare.py`, and spools each prepared record as one JSON line; per row it keeps only
compact arrays (hashes, offsets, token counts, task codes). Duplicates (same content) and the split
are computed on those arrays with numpy. Pass 2 reads the kept records from the spool in the order
of a hash of their id (so the bytes do not depend on the upstream row order) and streams them into
every format's train and validation files.
"""

from __future__ import annotations

import json
import math
import os
from array import array
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.artifacts import BACKEND_FORMAT, anonymized_dir, dataset_dir, write_atomic, write_manifest
from pipeline.core.settings import target_dir
from pipeline.core.targets import Target
from pipeline.training_files import formats
from pipeline.training_files.prepare import (
    DROP_REASONS,
    content_key,
    key_hash,
    prepare_example,
    prepare_pair,
    prompt_key,
)
from pipeline.training_files.split import split_rows
from pipeline.training_files.tokens import TokenCounter, encoding_for_model
from pipeline.training_files.validate import estimate_cost
from pipeline.training_files.version import InputHasher, dataset_version, formatting_config

EXAMPLE_INPUT = {
    "required": ("example_id", "task", "messages", "completion"),
    "optional": ("group_id", "occurred_at", "system_prompt", "completion_source", "score", "score_reasons", "context"),
}
PAIR_INPUT = {
    "required": ("pair_id", "task", "messages", "chosen", "rejected"),
    "optional": ("group_id", "system_prompt", "source", "score"),
}
#: rows read at a time: a batch is held as Python values (about 2.5 KB a row), so at 20,000 rows the batch
#: itself was what grew between 100k and 1M interactions (366 -> 568 MiB) while small targets never filled one
BATCH_ROWS = 4_096
HISTOGRAM_EDGES = (0, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072)


class TrainingFileInputError(ValueError):
    """The anonymized input is missing or lacks columns; the message says what to do."""


@dataclass(frozen=True)
class BuildResult:
    version: str
    manifest_path: Path
    manifest: dict[str, Any]


def input_kind(method: str) -> str:
    return "examples" if method == "sft" else "pairs"


def backend_format(target: Target) -> str:
    key = (target.backend, target.method)
    if key not in BACKEND_FORMAT:
        raise ValueError(f"no training-file format for backend {target.backend!r} with method {target.method!r}")
    return BACKEND_FORMAT[key]


def build_training_files(
    target: Target, *, source_dir: Path | None = None, batch_rows: int = BATCH_ROWS
) -> BuildResult:
    """Write the target's dataset version (files + manifest) from the anonymized tables in `source_dir`.

    `source_dir` is the anonymized version the gates approved (`anonymized/<version>/`); the
    default, `anonymized/` itself, serves callers that write the tables there directly.
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
    hasher = InputHasher(columns)

    dropped: Counter[str] = Counter({reason: 0 for reason in DROP_REASONS})
    drops: list[tuple[str, str]] = []
    # one entry per prepared row, in file order (compact arrays, not Python objects)
    content_keys, id_keys, offsets = array("q"), array("q"), array("q")
    group_keys, prompt_keys = array("q"), array("q")
    task_codes, tokens, answer_tokens = array("i"), array("q"), array("q")
    scores = array("d")
    task_names: dict[str, int] = {}
    dates: list[str] = []

    home = target_dir(target.name)
    spool_path = home / f".spool-{os.getpid()}.jsonl"
    try:
        input_rows = 0
        offset = 0
        with open(spool_path, "wb") as spool:
            for batch in parquet.iter_batches(batch_size=batch_rows, columns=columns):
                cols = {c: batch.column(c).to_pylist() for c in columns}
                input_rows += batch.num_rows
                hasher.update_batch(cols)
                if "occurred_at" in cols:
                    _date_range(dates, cols["occurred_at"])
                for values in zip(*(cols[c] for c in columns), strict=True):
                    row = dict(zip(columns, values, strict=True))
                    if kind == "examples":
                        prepared = prepare_example(row, counter, max_tokens)
                    else:
                        prepared = prepare_pair(row, counter, max_tokens, target.method)
                    if isinstance(prepared, str):
                        dropped[prepared] += 1
                        drops.append((str(row[id_column]), prepared))
                        continue
                    content_keys.append(content_key(prepared))
                    id_keys.append(key_hash(prepared["id"]))
                    group_keys.append(key_hash(prepared["group"]))
                    prompt_keys.append(key_hash(prompt_key(prepared["messages"])))
                    task_codes.append(task_names.setdefault(prepared["task"], len(task_names)))
                    tokens.append(prepared.pop("tokens"))
                    answer_tokens.append(prepared.pop("assistant_tokens"))
                    score = prepared.get("score")
                    scores.append(math.nan if score is None else score)
                    line = json.dumps(prepared, sort_keys=True, ensure_ascii=False).encode("utf-8") + b"\n"
                    offsets.append(offset)
                    offset += len(line)
                    spool.write(line)
        del parquet

        # duplicates: of rows with the same content, the one with the smallest id hash is kept, so
        # the choice does not depend on row order; records are then written in id-hash order
        ckeys = np.asarray(content_keys, dtype=np.int64)
        ikeys = np.asarray(id_keys, dtype=np.int64)
        by_content = np.lexsort((ikeys, ckeys))
        duplicate = np.zeros(len(ckeys), dtype=bool)
        duplicate[by_content[1:][ckeys[by_content][1:] == ckeys[by_content][:-1]]] = True
        kept = np.flatnonzero(~duplicate)
        kept = kept[np.argsort(ikeys[kept], kind="stable")]
        del ckeys, content_keys
        with open(spool_path, "rb") as spool:
            for row in np.flatnonzero(duplicate).tolist():
                spool.seek(offsets[row])
                drops.append((json.loads(spool.readline())["id"], "duplicate"))
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
            np.asarray(group_keys, dtype=np.int64)[kept],
            np.asarray(prompt_keys, dtype=np.int64)[kept],
            np.asarray(task_codes, dtype=np.int32)[kept],
            cfg.validation_share,
            cfg.seed,
        )
        del group_keys, prompt_keys
        out = dataset_dir(target.name, version)
        kept_offsets = np.asarray(offsets, dtype=np.int64)[kept]
        files = _write_formats(spool_path, kept_offsets, out, formats.formats_for(target.method), in_validation)
        evaluation_items = _write_evaluation_items(spool_path, kept_offsets[in_validation], out)
        drops.sort()
        write_atomic(out / "dropped.jsonl", "".join(json.dumps({"id": i, "reason": r}) + "\n" for i, r in drops))
    finally:
        spool_path.unlink(missing_ok=True)

    tokens = np.asarray(tokens, dtype=np.int64)[kept]
    answer_tokens = np.asarray(answer_tokens, dtype=np.int64)[kept]
    task_codes = np.asarray(task_codes, dtype=np.int32)[kept]
    scores = np.asarray(scores, dtype=np.float64)[kept]
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
    return BuildResult(version, path, manifest)


def _write_evaluation_items(spool_path: Path, offsets: np.ndarray, out: Path) -> str | None:
    """Stream the held-out (validation) rows as `formats.evaluation_item` records; None when there are none."""
    path = out / "evaluation" / "items.jsonl"
    if not len(offsets):
        path.unlink(missing_ok=True)
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(spool_path, "rb") as spool, open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        for offset in offsets.tolist():
            spool.seek(offset)
            fh.write(formats.dumps(formats.evaluation_item(json.loads(spool.readline()))) + "\n")
    tmp.replace(path)
    return str(path)


def _write_formats(
    spool_path: Path, offsets: np.ndarray, out: Path, fmts: tuple[str, ...], in_validation: np.ndarray
) -> dict[str, dict]:
    """Stream the spooled records at `offsets` (in that order) into every format's split files."""
    has_validation = bool(in_validation.any())
    splits = ("train", "validation") if has_validation else ("train",)
    paths = {(f, s): out / f / f"{s}.jsonl" for f in fmts for s in splits}
    for path in paths.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = {key: path.with_name(f".{path.name}.tmp") for key, path in paths.items()}
    with ExitStack() as stack:
        handles = {key: stack.enter_context(open(p, "w", encoding="utf-8", newline="\n")) for key, p in tmp.items()}
        builders = [(f, formats.BUILDERS[f]) for f in fmts]
        dumps = formats.dumps
        with open(spool_path, "rb") as spool:
            for offset, validation in zip(offsets.tolist(), in_validation.tolist(), strict=True):
                spool.seek(offset)
                prepared = json.loads(spool.readline())
                split = "validation" if validation else "train"
                for fmt, builder in builders:
                    handles[(fmt, split)].write(dumps(builder(prepared)) + "\n")
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


def _date_range(dates: list[str], values: list[Any]) -> None:
    texts = [v.isoformat() if hasattr(v, "isoformat") else str(v) for v in values if v is not None]
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
