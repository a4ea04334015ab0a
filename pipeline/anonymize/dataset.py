"""`anonymized_dataset` as a streaming function: scored Parquet files in, redacted Parquet files and counts out.

Every input row is either written (redacted, ids replaced by hashes) or removed with a reason:
`tenant_opted_out` (the tenant's `training_opt_out` is true) or `missing_tenant` (no org_id, so
its opt-out cannot be verified). Rows in = rows out + rows removed, for examples and pairs.

The files are read and written `batch_rows` rows at a time (memory does not grow with the
table), and a row whose text columns are in the `RedactionCache` (same content, same engine) is
neither parsed nor sent to the engine again: it gets the redaction it got last time, byte for
byte, so an unchanged dataset keeps its version and a run after new data costs what is new.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

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
from pipeline.core.artifacts import EXAMPLE_COLUMNS, PAIR_COLUMNS

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

    @property
    def texts_per_second(self) -> float:
        rows = self.example_counts.rows_out + self.pair_counts.rows_out
        return rows / self.seconds if self.seconds else 0.0


def _schema(columns: list[str]) -> pa.Schema:
    return pa.schema([(c, pa.float64() if c == "score" else pa.string()) for c in columns])


def _check_columns(path: Path, expected: list[str]) -> None:
    missing = [c for c in expected if c not in pq.read_schema(path).names]
    if missing:
        raise ValueError(
            f"{path} lacks columns {missing}; scored_examples must write {expected} "
            "(pipeline/core/artifacts.py): re-materialize scored_examples for this target"
        )


#: where rows come from: a Parquet file, or a function of the batch size yielding lists of rows
Source = Path | Callable[[int], Iterable[list[dict]]]


def scored_sources(folder: Path) -> tuple[Source, Source]:
    """The kept examples and written pairs of a `scored_examples` folder (its parts under their masks)."""
    from pipeline.curation import parts

    parts.loaded(folder)  # a clear error now, not half-way
    return (lambda n: parts.kept_examples(folder, n)), (lambda n: parts.live_pairs(folder, n))


def _batches(source: Source | None, batch_rows: int) -> Iterator[list[dict]]:
    if callable(source):
        yield from source(batch_rows)
        return
    if source is None or not source.exists():
        return
    for batch in pq.ParquetFile(source).iter_batches(batch_size=batch_rows):
        yield batch.to_pylist()


def _kept(rows: list[dict], opted_out: set[str], counts: TableCounts) -> list[dict]:
    keep = []
    for row in rows:
        counts.rows_in += 1
        org = row.get("org_id")
        if org is None or str(org).strip() == "":
            counts.removed["missing_tenant"] += 1
        elif str(org) in opted_out:
            counts.removed["tenant_opted_out"] += 1
        else:
            keep.append(row)
    return keep


def _redact_batch(
    rows: list[dict],
    table: str,
    prepare: Callable[[dict], Prepared],
    redact: Callable[[list[list[str]]], Iterable],
    cache: RedactionCache | None,
    report: AnonymizeReport,
) -> None:
    """Redact `rows` in place: a known redaction where the text columns are known, the engine for the rest."""
    columns = EXAMPLE_TEXT if table == "examples" else PAIR_TEXT
    keys = [row_key(table, row, columns) for row in rows]
    known = cache.get_many(keys) if cache is not None else {}
    todo = {key: i for i, key in enumerate(keys) if key not in known}  # equal content is redacted once
    prepared = {key: prepare(rows[i]) for key, i in todo.items()}  # only what is new is parsed
    fresh = []
    for key, result in zip(todo, redact([p.segments for p in prepared.values()]), strict=True):
        prep, row = prepared[key], rows[todo[key]]
        words = sum(len(segment_text(t).split()) for t in prep.segments)
        prep.apply(result.texts)
        known[key] = Redaction({c: row.get(c) for c in columns}, result.entities, prep.notes, words)
        fresh.append((key, known[key]))
    if cache is not None and fresh:
        cache.put_many(fresh)
    for key, row in zip(keys, rows, strict=True):
        redaction = known[key]
        row.update(redaction.columns)
        report.entities.update(redaction.entities)
        report.notes.update(redaction.notes)
        report.words += redaction.words
    report.redacted += len(todo)
    report.reused += len(rows) - len(todo)


def _table(
    table: str,
    source: Source | None,
    out: Path,
    columns: list[str],
    id_column: str,
    prepare: Callable[[dict], Prepared],
    opted_out: set[str],
    redact: Callable[[list[list[str]]], Iterable],
    cache: RedactionCache | None,
    counts: TableCounts,
    report: AnonymizeReport,
    batch_rows: int,
    on_rows: Callable[[list[dict]], None] = lambda rows: None,
) -> None:
    schema = _schema(columns)
    tmp = out.with_name(f".{out.name}.tmp")
    writer = pq.ParquetWriter(tmp, schema)
    try:
        for rows in _batches(source, batch_rows):
            kept = _kept(rows, opted_out, counts)
            _redact_batch(kept, table, prepare, redact, cache, report)
            on_rows(kept)
            if kept:
                writer.write_table(pa.Table.from_pylist([strip_ids(r, id_column) for r in kept], schema=schema))
                counts.rows_out += len(kept)
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    writer.close()
    tmp.replace(out)
    if counts.rows_in != counts.rows_out + sum(counts.removed.values()):
        raise AssertionError(f"row counts do not add up: {counts.as_dict()}")


def anonymize_files(
    examples_path: Source,
    pairs_path: Source | None,
    opted_out: set[str],
    redact: Callable[[list[list[str]]], Iterable],
    out_dir: Path,
    *,
    cache: RedactionCache | None = None,
    preview_rows: int = 3,
    batch_rows: int = BATCH_ROWS,
) -> AnonymizeReport:
    """Remove opted-out tenants, redact every text, replace ids; writes out_dir/{examples,pairs}.parquet.

    `redact` is `RedactionPool.redact`; a source is a Parquet file or a function (`scored_sources`);
    `pairs_path` may be None or a missing file (no pairs: an empty file).
    """
    if not callable(examples_path):
        _check_columns(examples_path, EXAMPLE_COLUMNS)
    pairs = pairs_path if callable(pairs_path) or (pairs_path is not None and pairs_path.exists()) else None
    if pairs is not None and not callable(pairs):
        _check_columns(pairs, PAIR_COLUMNS)
    start = time.perf_counter()
    report = AnonymizeReport()

    def keep_preview(rows: list[dict]) -> None:
        # redacted text only: the raw text holds personal data and must not reach Dagster's event log
        for row in rows[: max(0, preview_rows - len(report.preview))]:
            report.preview.append({
                "task": str(row.get("task") or ""),
                "prompt": _last_user_turn(row.get("messages"))[:PREVIEW_CHARS],
                "completion": str(row.get("completion") or "")[:PREVIEW_CHARS],
            })

    _table("examples", examples_path, out_dir / "examples.parquet", ANONYMIZED_EXAMPLE_COLUMNS, "example_id", prepare_example,
           opted_out, redact, cache, report.example_counts, report, batch_rows, keep_preview)
    _table("pairs", pairs, out_dir / "pairs.parquet", ANONYMIZED_PAIR_COLUMNS, "pair_id", prepare_pair,
           opted_out, redact, cache, report.pair_counts, report, batch_rows)
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
