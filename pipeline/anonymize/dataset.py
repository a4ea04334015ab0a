"""`anonymized_dataset` as a pure function: scored tables in, redacted tables and counts out.

Every input row is either written (redacted, ids replaced by hashes) or removed with a reason:
`tenant_opted_out` (the tenant's `training_opt_out` is true) or `missing_tenant` (no org_id, so
its opt-out cannot be verified). Rows in = rows out + rows removed, for examples and pairs.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

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


@dataclass
class TableCounts:
    rows_in: int = 0
    rows_out: int = 0
    removed: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict:
        return {"rows_in": self.rows_in, "rows_out": self.rows_out, "removed": dict(self.removed)}


@dataclass
class AnonymizedTables:
    examples: pd.DataFrame
    pairs: pd.DataFrame
    example_counts: TableCounts
    pair_counts: TableCounts
    entities: Counter
    notes: Counter
    preview: list[dict[str, str]]
    seconds: float
    words: int

    @property
    def texts_per_second(self) -> float:
        rows = self.example_counts.rows_out + self.pair_counts.rows_out
        return rows / self.seconds if self.seconds else 0.0


def _missing_columns(df: pd.DataFrame, expected: list[str], name: str) -> None:
    missing = [c for c in expected if c not in df.columns]
    if missing:
        raise ValueError(
            f"{name} lacks columns {missing}; scored_examples must write {expected} "
            "(pipeline/core/artifacts.py): re-materialize scored_examples for this target"
        )


def _split(df: pd.DataFrame, opted_out: set[str], counts: TableCounts) -> list[dict]:
    keep = []
    for row in df.to_dict(orient="records"):
        counts.rows_in += 1
        org = row.get("org_id")
        if org is None or (isinstance(org, float) and pd.isna(org)) or str(org).strip() == "":
            counts.removed["missing_tenant"] += 1
        elif str(org) in opted_out:
            counts.removed["tenant_opted_out"] += 1
        else:
            keep.append({k: (None if isinstance(v, float) and pd.isna(v) else v) for k, v in row.items()})
    return keep


def _redact(
    rows: list[dict],
    prepare: Callable[[dict], Prepared],
    redact: Callable[[list[list[str]]], Iterable],
    entities: Counter,
    notes: Counter,
) -> tuple[list[dict], int]:
    prepared = [prepare(row) for row in rows]
    words = sum(len(segment_text(t).split()) for p in prepared for t in p.segments)
    for prep, result in zip(prepared, redact([p.segments for p in prepared]), strict=True):
        prep.apply(result.texts)
        entities.update(result.entities)
        notes.update(prep.notes)
    return rows, words


def anonymize_tables(
    examples: pd.DataFrame,
    pairs: pd.DataFrame,
    opted_out: set[str],
    redact: Callable[[list[list[str]]], Iterable],
    preview_rows: int = 3,
) -> AnonymizedTables:
    """Remove opted-out tenants, redact every text, replace ids; `redact` is `RedactionPool.redact`."""
    _missing_columns(examples, EXAMPLE_COLUMNS, "scored examples.parquet")
    if len(pairs.columns):
        _missing_columns(pairs, PAIR_COLUMNS, "scored pairs.parquet")
    start = time.perf_counter()
    example_counts, pair_counts = TableCounts(), TableCounts()
    entities: Counter = Counter()
    notes: Counter = Counter()
    example_rows = _split(examples, opted_out, example_counts)
    pair_rows = _split(pairs, opted_out, pair_counts) if len(pairs.columns) else []
    example_rows, example_words = _redact(example_rows, prepare_example, redact, entities, notes)
    pair_rows, pair_words = _redact(pair_rows, prepare_pair, redact, entities, notes)
    # redacted text only: the raw text holds personal data and must not reach Dagster's event log
    preview = [
        {
            "task": str(a.get("task") or ""),
            "prompt": _last_user_turn(a.get("messages"))[:PREVIEW_CHARS],
            "completion": str(a.get("completion") or "")[:PREVIEW_CHARS],
        }
        for a in example_rows[:preview_rows]
    ]
    out_examples = pd.DataFrame(
        [strip_ids(r, "example_id") for r in example_rows], columns=ANONYMIZED_EXAMPLE_COLUMNS
    )
    out_pairs = pd.DataFrame([strip_ids(r, "pair_id") for r in pair_rows], columns=ANONYMIZED_PAIR_COLUMNS)
    example_counts.rows_out, pair_counts.rows_out = len(out_examples), len(out_pairs)
    for counts in (example_counts, pair_counts):
        if counts.rows_in != counts.rows_out + sum(counts.removed.values()):
            raise AssertionError(f"row counts do not add up: {counts.as_dict()}")
    return AnonymizedTables(
        examples=out_examples,
        pairs=out_pairs,
        example_counts=example_counts,
        pair_counts=pair_counts,
        entities=entities,
        notes=notes,
        preview=preview,
        seconds=time.perf_counter() - start,
        words=example_words + pair_words,
    )


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
