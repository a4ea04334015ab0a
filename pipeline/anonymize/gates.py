"""The privacy and quality gates on an anonymized dataset, as pure functions.

Each gate returns a `GateResult` (passed, a description that says what failed, how many rows and
what to do next, and metadata); `checks.py` turns them into blocking Dagster asset checks.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from typing import Any

import pandas as pd

from pipeline.anonymize.records import ANONYMIZED_EXAMPLE_COLUMNS, ANONYMIZED_PAIR_COLUMNS, tenant_hash
from pipeline.anonymize.residual import KINDS, redacted_context, scan
from pipeline.core.artifacts import ID_COLUMNS
from pipeline.core.contract import MAX_TEXT_CHARS
from pipeline.core.gates import GateResult

EXAMPLE_TEXT_COLUMNS = ("system_prompt", "messages", "response", "completion", "context")
PAIR_TEXT_COLUMNS = ("system_prompt", "messages", "chosen", "rejected")
SAMPLES = 5


def _texts(df: pd.DataFrame, columns: tuple[str, ...]):
    for column in columns:
        if column not in df.columns:
            continue
        for index, value in df[column].items():
            if isinstance(value, str) and value:
                yield column, index, value


def residual_pii(examples: pd.DataFrame, pairs: pd.DataFrame) -> GateResult:
    """Zero emails, phones, cards, IPs, national ids or IBANs left, by the independent detector."""
    by_kind: Counter = Counter()
    rows: dict[str, set] = {"examples": set(), "pairs": set()}
    by_column: Counter = Counter()
    samples: list[str] = []
    for table, df, columns in (
        ("examples", examples, EXAMPLE_TEXT_COLUMNS),
        ("pairs", pairs, PAIR_TEXT_COLUMNS),
    ):
        for column, index, text in _texts(df, columns):
            findings = scan(text)
            if not findings:
                continue
            by_kind.update(f.kind for f in findings)
            by_column[f"{table}.{column}"] += len(findings)
            rows[table].add(index)
            for finding in findings:
                if len(samples) < SAMPLES:
                    samples.append(f"{table}.{column} row {index}: {redacted_context(text, finding)}")
    counts = {kind: by_kind.get(kind, 0) for kind in KINDS}
    metadata = {
        "residual_by_kind": counts,
        "residual_by_column": dict(by_column),
        "rows_with_residual": {t: len(r) for t, r in rows.items()},
        "samples": samples,
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


def opted_out_absent(examples: pd.DataFrame, pairs: pd.DataFrame, opted_out: set[str]) -> GateResult:
    """No opted-out tenant's rows (by tenant hash) or raw ids (in any text) and no raw id columns."""
    hashes = {tenant_hash(org): org for org in opted_out}
    leaked_rows = Counter()
    for table, df in (("examples", examples), ("pairs", pairs)):
        if "tenant_hash" in df.columns:
            leaked_rows[table] = int(df["tenant_hash"].isin(hashes).sum())
    raw_hits: Counter = Counter()
    if opted_out:
        pattern = re.compile(
            r"(?<![\w-])(?:"
            + "|".join(map(re.escape, sorted(opted_out, key=len, reverse=True)))
            + r")(?![\w-])"
        )
        for table, df, columns in (
            ("examples", examples, EXAMPLE_TEXT_COLUMNS),
            ("pairs", pairs, PAIR_TEXT_COLUMNS),
        ):
            for _column, _index, text in _texts(df, columns):
                if pattern.search(text):
                    raw_hits[table] += 1
    id_columns = sorted({c for df in (examples, pairs) for c in df.columns if c in ID_COLUMNS})
    metadata = {
        "opted_out_tenants": len(opted_out),
        "rows_of_opted_out_tenants": dict(leaked_rows),
        "texts_naming_opted_out_tenants": dict(raw_hits),
        "raw_id_columns_present": id_columns,
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


def enough_examples(
    examples: pd.DataFrame, pairs: pd.DataFrame, method: str, minimum: int, target: str
) -> GateResult:
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
    suite.add_expectation(gxe.ExpectColumnValuesToBeUnique(column="example_id"))
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


def expectations(examples: pd.DataFrame, pairs: pd.DataFrame, tasks: list[str]) -> GateResult:
    """Great Expectations 1.x (ephemeral context, called directly) on both tables' columns."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    source = context.data_sources.add_pandas("flywheel")
    outcomes = []
    tables = [("examples", examples, _example_suite(tasks))]
    if len(pairs):
        tables.append(("pairs", pairs, _pair_suite(tasks)))
    for name, df, suite in tables:
        batch = (
            source.add_dataframe_asset(name)
            .add_batch_definition_whole_dataframe("all")
            .get_batch(batch_parameters={"dataframe": df})
        )
        for res in batch.validate(suite).results:
            config = res.expectation_config
            outcomes.append(
                {
                    "table": name,
                    "expectation": config.type,
                    "column": config.kwargs.get("column"),
                    "success": bool(res.success),
                    "unexpected_count": res.result.get("unexpected_count"),
                    "element_count": res.result.get("element_count"),
                    "partial_unexpected_list": _jsonable(
                        (res.result.get("partial_unexpected_list") or [])[:5]
                    ),
                    "observed_value": _jsonable(res.result.get("observed_value")),
                }
            )
    failed = [o for o in outcomes if not o["success"]]
    metadata = {"expectations": len(outcomes), "failed": len(failed), "results": outcomes}
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
