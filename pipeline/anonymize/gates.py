"""The privacy and quality gates on an anonymized dataset, as pure functions.

Each gate returns a `GateResult` (passed, a description that says what failed, how many rows and
what to do next, and metadata); `checks.py` turns them into blocking Dagster asset checks.

A table is a DataFrame or a `ParquetChunks` (a Parquet file read `rows` at a time, only the
columns a gate needs), so a gate's memory does not grow with the dataset: the checks of a
million-example target read it chunk by chunk, and row numbers stay those of the whole file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.anonymize.records import ANONYMIZED_EXAMPLE_COLUMNS, ANONYMIZED_PAIR_COLUMNS, tenant_hash
from pipeline.anonymize.residual import KINDS, redacted_context, scan
from pipeline.anonymize.text_memo import TextMemo, row_hashes, text_hashes
from pipeline.core.artifacts import ID_COLUMNS
from pipeline.core.code_version import source_version
from pipeline.core.contract import MAX_TEXT_CHARS
from pipeline.core.gates import GateResult

EXAMPLE_TEXT_COLUMNS = ("system_prompt", "messages", "response", "completion", "context")
PAIR_TEXT_COLUMNS = ("system_prompt", "messages", "chosen", "rejected")
SAMPLES = 5


CHUNK_ROWS = 20_000


class ParquetChunks:
    """A Parquet table read in chunks of `rows` rows; a missing file is an empty table with `columns`."""

    def __init__(self, path: str | Path | None, columns: list[str], rows: int = CHUNK_ROWS):
        self.path = Path(path) if path else None
        self.rows = rows
        self._file = None
        if self.path is not None and self.path.exists():
            import pyarrow.parquet as pq

            self._file = pq.ParquetFile(self.path)
        self.columns = list(self._file.schema_arrow.names) if self._file is not None else list(columns)

    def __len__(self) -> int:
        return self._file.metadata.num_rows if self._file is not None else 0

    def chunks(self, columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
        wanted = [c for c in (columns or self.columns) if c in self.columns]
        if self._file is None or not len(self):
            yield pd.DataFrame(columns=wanted)
            return
        offset = 0
        for batch in self._file.iter_batches(batch_size=self.rows, columns=wanted):
            df = batch.to_pandas()
            df.index = pd.RangeIndex(offset, offset + len(df))
            offset += len(df)
            yield df


Table = pd.DataFrame | ParquetChunks


def _columns(table: Table) -> list[str]:
    return list(table.columns)


def _chunks(table: Table, columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
    if isinstance(table, ParquetChunks):
        yield from table.chunks(columns)
    else:
        yield table if columns is None else table[[c for c in columns if c in table.columns]]


def _text_arrays(table: Table, columns: tuple[str, ...]) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(column, row numbers, texts) for each chunk and text column: the non-empty strings only."""
    present = [c for c in columns if c in _columns(table)]
    for df in _chunks(table, present):
        for column in present:
            values = df[column].to_numpy(dtype=object)
            is_text = np.fromiter((isinstance(v, str) and v != "" for v in values), dtype=bool, count=len(values))
            yield column, df.index.to_numpy()[is_text], values[is_text]


def _untested(texts: np.ndarray, memo: TextMemo | None) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """Which texts to test (the ones `memo` has not seen pass) and their hashes (None without a memo)."""
    if memo is None:
        return np.ones(len(texts), dtype=bool), None
    hashes = text_hashes(texts)
    todo = ~memo.seen(*hashes)
    memo.tested += int(todo.sum())
    return todo, hashes


def _record_passes(memo: TextMemo | None, hashes, passed: np.ndarray) -> None:
    if memo is not None:
        memo.passed(hashes[0][passed], hashes[1][passed])


def residual_memo(path: Path | None) -> TextMemo:
    """The memo of texts the residual detector found clean, for this detector's source."""
    return TextMemo(path, "residual-" + source_version(("pipeline.anonymize.residual", "pipeline.anonymize.checksums"))[:16])


def residual_pii(examples: Table, pairs: Table, memo: TextMemo | None = None) -> GateResult:
    """Zero emails, phones, cards, IPs, national ids or IBANs left, by the independent detector.

    With a `memo` (`residual_memo`), texts it saw pass under this detector are not scanned again;
    every text is still read and hashed, and the memo is saved with this run's clean texts.
    """
    by_kind: Counter = Counter()
    rows: dict[str, set] = {"examples": set(), "pairs": set()}
    by_column: Counter = Counter()
    samples: list[str] = []
    texts_in = 0
    for table, df, columns in (
        ("examples", examples, EXAMPLE_TEXT_COLUMNS),
        ("pairs", pairs, PAIR_TEXT_COLUMNS),
    ):
        for column, index, texts in _text_arrays(df, columns):
            texts_in += len(texts)
            todo, hashes = _untested(texts, memo)
            clean = np.zeros(len(texts), dtype=bool)
            for i in np.flatnonzero(todo).tolist():
                text = texts[i]
                findings = scan(text)
                if not findings:
                    clean[i] = True
                    continue
                by_kind.update(f.kind for f in findings)
                by_column[f"{table}.{column}"] += len(findings)
                rows[table].add(int(index[i]))
                for finding in findings:
                    if len(samples) < SAMPLES:
                        samples.append(f"{table}.{column} row {index[i]}: {redacted_context(text, finding)}")
            _record_passes(memo, hashes, clean)
    if memo is not None:
        memo.save()
    counts = {kind: by_kind.get(kind, 0) for kind in KINDS}
    metadata = {
        "residual_by_kind": counts,
        "residual_by_column": dict(by_column),
        "rows_with_residual": {t: len(r) for t, r in rows.items()},
        "samples": samples,
        "texts": texts_in,
        **(memo.metadata() if memo is not None else {}),
    }
    total = sum(by_kind.values())
    if not total:
        return GateResult(
            True, "No residual emails, phones, cards, IPs, national ids or IBANs found.", metadata
        )
    kinds = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    n_rows = sum(len(r) for r in rows.values())
    return GateResult(
        False,
        f"Residual PII after anonymization: {kinds} in {n_rows} rows "
        f"({len(rows['examples'])} examples, {len(rows['pairs'])} pairs). The redaction engine missed these formats: "
        "see `samples` for where (values masked), add or fix the recognizer in pipeline/anonymize/recognizers.py, "
        "and re-materialize anonymized_dataset. Nothing downstream runs until this is zero.",
        metadata,
    )


def _opted_out_pattern(opted_out: set[str]) -> re.Pattern:
    """Any opted-out id as a whole token (not inside a longer id)."""
    return re.compile(
        r"(?<![\w-])(?:" + "|".join(map(re.escape, sorted(opted_out, key=len, reverse=True))) + r")(?![\w-])"
    )


def opted_out_memo(path: Path | None, opted_out: set[str]) -> TextMemo:
    """The memo of texts that name none of these opted-out ids (a new opt-out starts a new memo)."""
    return TextMemo(path, "opted-out-" + hashlib.sha256(_opted_out_pattern(opted_out).pattern.encode()).hexdigest()[:16])


def opted_out_absent(examples: Table, pairs: Table, opted_out: set[str], memo: TextMemo | None = None) -> GateResult:
    """No opted-out tenant's rows (by tenant hash) or raw ids (in any text) and no raw id columns.

    With a `memo` (`opted_out_memo`, for the same opted-out set), texts known to name none of them
    are not searched again.
    """
    hashes = {tenant_hash(org): org for org in opted_out}
    leaked_rows = Counter()
    for table, df in (("examples", examples), ("pairs", pairs)):
        if "tenant_hash" in _columns(df):
            leaked_rows[table] = sum(int(c["tenant_hash"].isin(hashes).sum()) for c in _chunks(df, ["tenant_hash"]))
    raw_hits: Counter = Counter()
    if opted_out:
        pattern = _opted_out_pattern(opted_out)
        for table, df, columns in (
            ("examples", examples, EXAMPLE_TEXT_COLUMNS),
            ("pairs", pairs, PAIR_TEXT_COLUMNS),
        ):
            for _column, _index, texts in _text_arrays(df, columns):
                todo, text_hashes_ = _untested(texts, memo)
                named = np.zeros(len(texts), dtype=bool)
                for i in np.flatnonzero(todo).tolist():
                    named[i] = pattern.search(texts[i]) is not None
                if named.any():
                    raw_hits[table] += int(named.sum())
                _record_passes(memo, text_hashes_, todo & ~named)
        if memo is not None:
            memo.save()
    id_columns = sorted({c for df in (examples, pairs) for c in _columns(df) if c in ID_COLUMNS})
    metadata = {
        "opted_out_tenants": len(opted_out),
        "rows_of_opted_out_tenants": dict(leaked_rows),
        "texts_naming_opted_out_tenants": dict(raw_hits),
        "raw_id_columns_present": id_columns,
        **(memo.metadata() if memo is not None and opted_out else {}),
    }
    problems = []
    if sum(leaked_rows.values()):
        problems.append(f"{sum(leaked_rows.values())} rows belong to opted-out tenants ({dict(leaked_rows)})")
    if sum(raw_hits.values()):
        problems.append(f"{sum(raw_hits.values())} texts contain an opted-out tenant's id ({dict(raw_hits)})")
    if id_columns:
        problems.append(f"raw id columns {id_columns} are still in the output")
    if not problems:
        return GateResult(
            True, f"None of the {len(opted_out)} opted-out tenants' rows or ids appear.", metadata
        )
    return GateResult(
        False,
        "Opted-out tenant data in the anonymized dataset: " + "; ".join(problems) + ". "
        "These tenants must never reach a training file: check that the organization rows in the source say "
        "training_opt_out=true and that anonymized_dataset ran after the opt-out, then re-materialize it.",
        metadata,
    )


def enough_examples(examples: Table, pairs: Table, method: str, minimum: int, target: str) -> GateResult:
    """The target has at least its `min_examples` (pairs for dpo and embedding targets)."""
    unit, count = ("pairs", len(pairs)) if method in ("dpo", "embedding") else ("examples", len(examples))
    metadata = {
        "count": count,
        "unit": unit,
        "min_examples": minimum,
        "examples": len(examples),
        "pairs": len(pairs),
    }
    if count >= minimum:
        return GateResult(True, f"{count} {unit} for target {target!r} (minimum {minimum}).", metadata)
    return GateResult(
        False,
        f"Target {target!r} has {count} {unit} after anonymization; it needs at least {minimum} (short by "
        f"{minimum - count}). Collect more feedback, lower the target's scoring.export_threshold, or lower "
        f"min_examples in targets.yaml, then re-materialize scored_examples and anonymized_dataset.",
        metadata,
    )


# ---------------------------------------------------------------- Great Expectations


def _example_suite(tasks: list[str]):
    import great_expectations as gx
    import great_expectations.expectations as gxe

    suite = gx.ExpectationSuite(name="anonymized_examples")
    suite.add_expectation(
        gxe.ExpectTableColumnsToMatchSet(column_set=ANONYMIZED_EXAMPLE_COLUMNS, exact_match=True)
    )
    for column in (
        "example_id",
        "tenant_hash",
        "group_id",
        "task",
        "messages",
        "response_format",
        "completion",
        "completion_source",
        "score",
    ):
        suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=column))
    suite.add_expectation(
        gxe.ExpectColumnValuesToBeInSet(column="response_format", value_set=["text", "json"])
    )
    suite.add_expectation(
        gxe.ExpectColumnValuesToBeInSet(column="completion_source", value_set=["label", "edit", "response"])
    )
    suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column="task", value_set=tasks))
    suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column="score", min_value=0, max_value=10))
    suite.add_expectation(
        gxe.ExpectColumnValueLengthsToBeBetween(column="completion", min_value=1, max_value=MAX_TEXT_CHARS)
    )
    suite.add_expectation(
        gxe.ExpectColumnValueLengthsToBeBetween(column="messages", min_value=2, max_value=MAX_TEXT_CHARS * 4)
    )
    suite.add_expectation(
        gxe.ExpectColumnValueLengthsToBeBetween(column="tenant_hash", min_value=16, max_value=16)
    )
    return suite


def _pair_suite(tasks: list[str]):
    import great_expectations as gx
    import great_expectations.expectations as gxe

    suite = gx.ExpectationSuite(name="anonymized_pairs")
    suite.add_expectation(
        gxe.ExpectTableColumnsToMatchSet(column_set=ANONYMIZED_PAIR_COLUMNS, exact_match=True)
    )
    for column in ("pair_id", "tenant_hash", "task", "chosen", "rejected", "source"):
        suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=column))
    suite.add_expectation(
        gxe.ExpectColumnValuesToBeInSet(
            column="source", value_set=["edit", "regenerated", "saved_vs_skipped"]
        )
    )
    suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column="task", value_set=tasks))
    suite.add_expectation(
        gxe.ExpectColumnValueLengthsToBeBetween(column="chosen", min_value=1, max_value=MAX_TEXT_CHARS)
    )
    suite.add_expectation(
        gxe.ExpectColumnValueLengthsToBeBetween(column="rejected", min_value=1, max_value=MAX_TEXT_CHARS)
    )
    return suite


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value, allow_nan=False)
        return value
    except (TypeError, ValueError):
        return repr(value)


def _outcome(table: str, res) -> dict[str, Any]:
    config = res.expectation_config
    return {
        "table": table,
        "expectation": config.type,
        "column": config.kwargs.get("column"),
        "success": bool(res.success),
        "unexpected_count": res.result.get("unexpected_count"),
        "element_count": res.result.get("element_count"),
        "partial_unexpected_list": _jsonable((res.result.get("partial_unexpected_list") or [])[:5]),
        "observed_value": _jsonable(res.result.get("observed_value")),
    }


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """One expectation's outcomes on two chunks of a table, as its outcome on both."""

    def total(key: str) -> int | None:
        values = [o[key] for o in (a, b) if o[key] is not None]
        return sum(values) if values else None

    return {
        **a,
        "success": a["success"] and b["success"],
        "unexpected_count": total("unexpected_count"),
        "element_count": total("element_count"),
        "partial_unexpected_list": (a["partial_unexpected_list"] + b["partial_unexpected_list"])[:5],
        "observed_value": a["observed_value"] if not a["success"] or b["success"] else b["observed_value"],
    }


def _id_suite():
    import great_expectations as gx
    import great_expectations.expectations as gxe

    suite = gx.ExpectationSuite(name="anonymized_example_ids")
    suite.add_expectation(gxe.ExpectColumnValuesToBeUnique(column="example_id"))
    return suite


def _suite_version(suites) -> str:
    """What the row-wise verdicts depend on: each expectation's type and arguments, and the GX release."""
    import great_expectations as gx

    spec = [[(e.expectation_type, e.configuration.kwargs) for e in suite.expectations] for suite in suites]
    payload = json.dumps([gx.__version__, spec], sort_keys=True, default=str)
    return "gx-" + hashlib.sha256(payload.encode()).hexdigest()[:16]


def expectations_memo(path: Path | None, tasks: list[str]) -> TextMemo:
    """The memo of rows that passed every row-wise expectation of these suites (a new task list: a new memo)."""
    _gx_context()
    return TextMemo(path, _suite_version([_example_suite(tasks), _pair_suite(tasks)]))


def _gx_context():
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return context


def _unseen_batches(table: Table, name: str, memo: TextMemo | None, rows: Counter):
    """(frame, row hashes) to validate: every chunk without a memo; with one, only the rows it has not
    seen pass, gathered into frames of up to CHUNK_ROWS rows (at least one frame, maybe empty)."""
    pending: list[pd.DataFrame] = []
    hashes: list[tuple[np.ndarray, np.ndarray]] = []
    waiting, yielded = 0, False
    for df in _chunks(table):
        rows[name] += len(df)
        if memo is None:
            yield df, None
            continue
        first, second = row_hashes(df, name)
        new = ~memo.seen(first, second)
        memo.tested += int(new.sum())
        pending.append(df[new])
        hashes.append((first[new], second[new]))
        waiting += int(new.sum())
        if waiting >= CHUNK_ROWS:
            yield pd.concat(pending), _joined(hashes)
            pending, hashes, waiting, yielded = [], [], 0, True
    if memo is not None and (waiting or not yielded):
        yield (pd.concat(pending) if pending else pd.DataFrame(columns=_columns(table))), _joined(hashes)


def _joined(hashes: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    if not hashes:
        return _NONE, _NONE
    return np.concatenate([f for f, _ in hashes]), np.concatenate([s for _, s in hashes])


_NONE = np.empty(0, dtype=np.uint64)


def expectations(examples: Table, pairs: Table, tasks: list[str], memo: TextMemo | None = None) -> GateResult:
    """Great Expectations 1.x (ephemeral context, called directly) on both tables' columns.

    Row-wise expectations run chunk by chunk and their counts are summed; uniqueness of
    `example_id` is a whole-table property, so it runs once on that one column of every row.
    With a `memo` (`expectations_memo`), rows it saw pass every row-wise expectation (same values,
    same suites) are not validated again: a row's expectations read only that row. A frame with a
    failure is not remembered, so its rows are validated again next time; counts of unexpected
    values are exact, and `element_count` is every row of the table.
    """
    context = _gx_context()
    source = context.data_sources.add_pandas("flywheel")
    outcomes = []
    rows: Counter = Counter()
    tables = [("examples", examples, _example_suite(tasks))]
    if len(pairs):
        tables.append(("pairs", pairs, _pair_suite(tasks)))

    def validate(asset: str, frames, suite) -> list[dict[str, Any]]:
        batches = source.add_dataframe_asset(asset).add_batch_definition_whole_dataframe("all")
        merged: list[dict[str, Any]] = []
        for df, hashes in frames:
            results = [_outcome(asset, r) for r in batches.get_batch(batch_parameters={"dataframe": df}).validate(suite).results]
            if hashes is not None and all(o["success"] for o in results):
                memo.passed(*hashes)
            merged = results if not merged else [_merge(a, b) for a, b in zip(merged, results, strict=True)]
        return merged

    for name, table, suite in tables:
        results = validate(name, _unseen_batches(table, name, memo, rows), suite)
        if memo is not None:  # the rows the memo vouched for were counted too
            results = [dict(o, element_count=rows[name]) if o["element_count"] is not None else o for o in results]
        outcomes.extend(results)
        if name == "examples" and "example_id" in _columns(table):
            ids = pd.concat(list(_chunks(table, ["example_id"])), ignore_index=True)
            outcomes.extend(dict(o, table="examples") for o in validate("example_ids", [(ids, None)], _id_suite()))
    if memo is not None:
        memo.save()
    failed = [o for o in outcomes if not o["success"]]
    metadata = {"expectations": len(outcomes), "failed": len(failed), "results": outcomes,
                **({"rows": sum(rows.values()), "rows_validated": memo.tested, "rows_known_to_pass": memo.known,
                    **({"memo_note": memo.note} if memo.note else {})} if memo is not None else {})}
    if not failed:
        return GateResult(True, f"All {len(outcomes)} Great Expectations expectations passed.", metadata)
    detail = "; ".join(
        f"{o['table']}.{o['column'] or '(table)'} {o['expectation']}"
        + (
            f" ({o['unexpected_count']} of {o['element_count']} rows)"
            if o["unexpected_count"] is not None
            else ""
        )
        for o in failed
    )
    return GateResult(
        False,
        f"{len(failed)} of {len(outcomes)} expectations failed: {detail}. The scored data breaks the dataset "
        "contract: see `results` for sample values, fix scored_examples (or the scoring of this target) and "
        "re-materialize scored_examples and anonymized_dataset.",
        metadata,
    )
