"""`anonymized_dataset` as a streaming function: a scored folder in, redacted Parquet files and counts out.

Every input row is either written (redacted, ids replaced by hashes) or removed with a reason:
`tenant_opted_out` (the tenant's `training_opt_out` is true) or `missing_tenant` (no org_id, so
its opt-out cannot be verified). Rows in = rows out + rows removed, for examples and pairs.

What was redacted of a scored part is kept as segments (`segments.py`): a run redacts only the
rows no segment holds (a new part, a row brought back by dedup) and copies the rest as Arrow
tables, so a run after new data costs what is new and an unchanged dataset keeps its bytes and
its version. A row to redact whose text columns are in the `RedactionCache` (same content, same
engine; a part re-scored by `scored_examples`) is neither parsed nor sent to the engine again.
Files are read and written `batch_rows` rows at a time, so memory does not grow with the table.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.anonymize import segments
from pipeline.anonymize.cache import EXAMPLE_TEXT, PAIR_TEXT, Redaction, RedactionCache, row_key
from pipeline.anonymize.records import (
    ANONYMIZED_EXAMPLE_COLUMNS,
    ANONYMIZED_PAIR_COLUMNS,
    Prepared,
    prepare_example,
    prepare_pair,
    segment_text,
    strip_ids,
)
from pipeline.core import markdown
from pipeline.curation.parts import CANDIDATES, PAIRS, filtered, loaded, part_dir, schema_of

PREVIEW_CHARS = 240
BATCH_ROWS = 2_048


@dataclass
class TableCounts:
    rows_in: int = 0
    rows_out: int = 0
    removed: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict:
        return {"rows_in": self.rows_in, "rows_out": self.rows_out, "removed": dict(self.removed)}


@dataclass
class AnonymizeReport:
    """What one run wrote and removed; the tables are on disk."""

    example_counts: TableCounts = field(default_factory=TableCounts)
    pair_counts: TableCounts = field(default_factory=TableCounts)
    entities: Counter = field(default_factory=Counter)
    notes: Counter = field(default_factory=Counter)
    preview: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    words: int = 0
    #: distinct example contents the engine redacted in this run / rows given a redaction already known
    #: (from the cache, or an identical row earlier in the run)
    redacted: int = 0
    reused: int = 0
    #: scored parts whose rows all came from segments / parts that needed a new segment; the folders used
    parts_reused: int = 0
    parts_redacted: int = 0
    segment_folders: set = field(default_factory=set)

    @property
    def texts_per_second(self) -> float:
        rows = self.example_counts.rows_out + self.pair_counts.rows_out
        return rows / self.seconds if self.seconds else 0.0


def _redactions(
    rows: list[dict],
    table: str,
    prepare: Callable[[dict], Prepared],
    redact: Callable[[list[list[str]]], Iterable],
    cache: RedactionCache | None,
) -> tuple[list[str], list[Redaction], int]:
    """Each row's content key and redaction: known where the texts are known, the engine for the rest.

    Returns (keys, redactions, how many distinct contents went to the engine); equal content in one
    batch is redacted once, and only what is new is parsed.
    """
    columns = EXAMPLE_TEXT if table == "examples" else PAIR_TEXT
    keys = [row_key(table, row, columns) for row in rows]
    known = cache.get_many(keys) if cache is not None else {}
    todo = {key: i for i, key in enumerate(keys) if key not in known}
    prepared = {key: prepare(rows[i]) for key, i in todo.items()}
    fresh = []
    for key, result in zip(todo, redact([p.segments for p in prepared.values()]), strict=True):
        prep, row = prepared[key], rows[todo[key]]  # `apply` writes the redacted texts into the row
        words = sum(len(segment_text(t).split()) for t in prep.segments)
        prep.apply(result.texts)
        known[key] = Redaction({c: row.get(c) for c in columns}, result.entities, prep.notes, words)
        fresh.append((key, known[key]))
    if cache is not None and fresh:
        cache.put_many(fresh)
    return keys, [known[key] for key in keys], len(todo)


@dataclass
class _Table:
    """One of the two tables a scored folder holds, and how its rows are anonymized."""

    name: str  # examples | pairs
    scored_file: str  # the part's file
    columns: list[str]  # written
    id_column: str
    prepare: Callable[[dict], Prepared]


TABLES = (
    _Table("examples", CANDIDATES, ANONYMIZED_EXAMPLE_COLUMNS, "example_id", prepare_example),
    _Table("pairs", PAIRS, ANONYMIZED_PAIR_COLUMNS, "pair_id", prepare_pair),
)


def _redact_into_segment(
    spec: _Table, scored: Path, todo: np.ndarray, part: segments.PartSegments,
    redact: Callable[[list[list[str]]], Iterable], cache: RedactionCache | None, report: AnonymizeReport,
    batch_rows: int,
) -> None:
    """Redact the scored file's rows under `todo` into a new segment of `part`, a batch at a time."""
    positions = np.flatnonzero(todo)
    schema = segments.segment_schema(spec.columns)
    offset = 0
    with part.writer(schema) as writer:
        for batch in filtered(scored, todo, batch_rows):
            rows = batch.to_pylist()
            keys, redactions, fresh = _redactions(rows, spec.name, spec.prepare, redact, cache)
            report.redacted += fresh
            out = []
            for row, key, redaction in zip(rows, keys, redactions, strict=True):
                row.update(redaction.columns)
                out.append({**strip_ids(row, spec.id_column), "_pos": int(positions[offset]), "_key": key,
                            "_entities": json.dumps(dict(sorted(redaction.entities.items()))),
                            "_notes": json.dumps(dict(sorted(redaction.notes.items()))), "_words": redaction.words})
                offset += 1
            writer.write_table(pa.Table.from_pylist(out, schema=schema))


def _anonymize_table(
    spec: _Table, folder: Path, manifest, masks: np.ndarray, opted_out: set[str],
    redact: Callable[[list[list[str]]], Iterable], out: Path, root: Path, cache: RedactionCache | None,
    counts: TableCounts, report: AnonymizeReport, batch_rows: int, on_rows: Callable[[pa.Table], None],
) -> None:
    schema = schema_of(spec.columns)
    tmp = out.with_name(f".{out.name}.tmp")
    writer = pq.ParquetWriter(tmp, schema)
    try:
        for name in manifest.parts:
            mask = masks[name]
            if not mask.any():
                continue
            scored = part_dir(folder, name) / spec.scored_file
            missing, opted = segments.removal_masks(scored, opted_out)
            counts.rows_in += int(mask.sum())
            for reason, removed in (("missing_tenant", mask & missing), ("tenant_opted_out", mask & opted)):
                if removed.any():
                    counts.removed[reason] += int(removed.sum())
            wanted = mask & ~missing & ~opted
            part = segments.PartSegments(
                root / spec.name / f"{segments.file_digest(scored)[:32]}-{segments.opted_out_digest(opted_out)}")
            report.segment_folders.add(part.folder)
            todo = wanted.copy()
            todo[part.positions()] = False
            if todo.any():
                _redact_into_segment(spec, scored, todo, part, redact, cache, report, batch_rows)
                report.parts_redacted += 1
            else:
                report.parts_reused += 1
            written = 0
            for table in part.wanted(wanted, batch_rows):
                report.words += segments.tally(table, report.entities, report.notes)
                if cache is not None:
                    cache.hold(table.column("_key").to_pylist())
                rows = table.select(spec.columns)
                on_rows(rows)
                writer.write_table(rows)
                written += rows.num_rows
            if written != int(wanted.sum()):
                raise AssertionError(f"{name}: {written} {spec.name} written, {int(wanted.sum())} wanted")
            counts.rows_out += written
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    writer.close()
    tmp.replace(out)
    if counts.rows_in != counts.rows_out + sum(counts.removed.values()):
        raise AssertionError(f"row counts do not add up: {counts.as_dict()}")


def anonymize_scored(
    folder: Path,
    opted_out: set[str],
    redact: Callable[[list[list[str]]], Iterable],
    out_dir: Path,
    segments_root: Path,
    *,
    cache: RedactionCache | None = None,
    preview_rows: int = 3,
    batch_rows: int = BATCH_ROWS,
) -> AnonymizeReport:
    """Remove opted-out tenants, redact every text, replace ids; writes out_dir/{examples,pairs}.parquet.

    `folder` is a `scored_examples` folder (its parts under their masks); `redact` is
    `RedactionPool.redact`. Rows some segment under `segments_root` holds are copied from it; the
    rest are redacted (through `cache`, by content) into new segments first. Output order: part by
    part, segment by segment, each segment in the scored part's row order.
    """
    manifest, masks = loaded(folder)  # a clear error now, not half-way
    start = time.perf_counter()
    report = AnonymizeReport()

    def keep_preview(rows: pa.Table) -> None:
        # redacted text only: the raw text holds personal data and must not reach Dagster's event log
        need = max(0, preview_rows - len(report.preview))
        for row in rows.slice(0, need).select(["task", "messages", "completion"]).to_pylist() if need else []:
            report.preview.append({
                "task": str(row.get("task") or ""),
                "prompt": _last_user_turn(row.get("messages"))[:PREVIEW_CHARS],
                "completion": str(row.get("completion") or "")[:PREVIEW_CHARS],
            })

    for spec, chosen, counts, on_rows in ((TABLES[0], masks.keep, report.example_counts, keep_preview),
                                          (TABLES[1], masks.pairs, report.pair_counts, lambda rows: None)):
        _anonymize_table(spec, folder, manifest, chosen, opted_out, redact, out_dir / f"{spec.name}.parquet",
                         segments_root, cache, counts, report, batch_rows, on_rows)
    report.reused = report.example_counts.rows_out + report.pair_counts.rows_out - report.redacted
    report.seconds = time.perf_counter() - start
    return report


def preview_markdown(preview: list[dict[str, str]]) -> str:
    """The first kept examples after redaction, as a Markdown table."""
    if not preview:
        return "_no examples kept_"
    return markdown.table(preview, ["task", "prompt", "completion"], max_chars=PREVIEW_CHARS)


def _last_user_turn(messages: Any) -> str:
    try:
        turns = json.loads(messages) if isinstance(messages, str) else (messages or [])
    except ValueError:
        return ""
    return next((str(m.get("content", "")) for m in reversed(turns) if m.get("role") == "user"), "")
