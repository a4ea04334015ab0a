"""Each gate fails on bad data with a description that says what, how many and what next; passes on good."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from pipeline.anonymize import gates
from pipeline.anonymize.records import ANONYMIZED_EXAMPLE_COLUMNS, ANONYMIZED_PAIR_COLUMNS, tenant_hash


def good_examples(n: int = 4, org: str = "org_a") -> pd.DataFrame:
    rows = [
        {
            "example_id": f"{i:016x}",
            "tenant_hash": tenant_hash(org),
            "group_id": f"{i:040x}",
            "task": "page_generation",
            "occurred_at": "2026-03-01T10:00:00Z",
            "system_prompt": None,
            "messages": json.dumps([{"role": "user", "content": "Build a page for [BUSINESS_NAME]"}]),
            "response_format": "text",
            "response": "Welcome!",
            "completion": "Welcome to [BUSINESS_NAME], call +1 (555) 000-0000 or write contact@example.com.",
            "completion_source": "response",
            "score": 7.0,
            "score_reasons": "[]",
            "context": "{}",
        }
        for i in range(n)
    ]
    return pd.DataFrame(rows, columns=ANONYMIZED_EXAMPLE_COLUMNS)


def good_pairs(n: int = 2, org: str = "org_a") -> pd.DataFrame:
    rows = [
        {
            "pair_id": f"{i:016x}",
            "tenant_hash": tenant_hash(org),
            "group_id": f"{i:040x}",
            "task": "page_generation",
            "system_prompt": None,
            "messages": "[]",
            "chosen": "Better",
            "rejected": "Worse",
            "source": "edit",
            "score": 5.0,
        }
        for i in range(n)
    ]
    return pd.DataFrame(rows, columns=ANONYMIZED_PAIR_COLUMNS)


EMPTY_PAIRS = pd.DataFrame(columns=ANONYMIZED_PAIR_COLUMNS)


def test_residual_gate_passes_on_placeholders_only():
    result = gates.residual_pii(good_examples(), good_pairs())
    assert result.passed, result.description
    assert result.metadata["residual_by_kind"] == {k: 0 for k in result.metadata["residual_by_kind"]}


def test_residual_gate_fails_with_counts_by_kind_and_masked_samples():
    examples = good_examples()
    examples.loc[1, "completion"] = "Reach Maria on (415) 555-0132 or maria@gmail.com"
    examples.loc[2, "context"] = json.dumps({"server": "203.0.113.57"})
    pairs = good_pairs()
    pairs.loc[0, "chosen"] = "Pay with 4111-1111-1111-1111"
    result = gates.residual_pii(examples, pairs)
    assert not result.passed
    assert result.metadata["residual_by_kind"]["phone"] == 1
    assert result.metadata["residual_by_kind"]["email"] == 1
    assert result.metadata["residual_by_kind"]["ip"] == 1
    assert result.metadata["residual_by_kind"]["card"] == 1
    assert result.metadata["rows_with_residual"] == {"examples": 2, "pairs": 1}
    assert "in 3 rows" in result.description and "recognizers.py" in result.description
    assert "re-materialize" in result.description
    assert all("maria@gmail.com" not in s and "555-0132" not in s for s in result.metadata["samples"])


def test_opt_out_gate():
    opted = {"org_out"}
    assert gates.opted_out_absent(good_examples(), good_pairs(), opted).passed
    leaked = pd.concat([good_examples(), good_examples(2, org="org_out")], ignore_index=True)
    result = gates.opted_out_absent(leaked, EMPTY_PAIRS, opted)
    assert not result.passed
    assert "2 rows belong to opted-out tenants" in result.description
    assert "training_opt_out" in result.description


def test_opt_out_gate_finds_raw_ids_in_text_and_raw_id_columns():
    examples = good_examples()
    examples.loc[0, "context"] = json.dumps({"note": "migrated from org_out"})
    examples["user_id"] = "u1"
    result = gates.opted_out_absent(examples, EMPTY_PAIRS, {"org_out"})
    assert not result.passed
    assert "1 texts contain an opted-out tenant's id" in result.description
    assert "['user_id']" in result.description
    # an id that is only part of a longer word is not that id
    examples = good_examples()
    examples.loc[0, "completion"] = "org_outlet is another tenant"
    assert gates.opted_out_absent(examples, EMPTY_PAIRS, {"org_out"}).passed


def test_min_examples_gate_counts_examples_or_pairs_by_method():
    assert gates.enough_examples(good_examples(4), EMPTY_PAIRS, "sft", 4, "t").passed
    result = gates.enough_examples(good_examples(3), EMPTY_PAIRS, "sft", 5, "t")
    assert not result.passed
    assert "has 3 examples" in result.description and "at least 5" in result.description
    assert "min_examples" in result.description
    dpo = gates.enough_examples(good_examples(50), good_pairs(2), "dpo", 20, "roast")
    assert not dpo.passed and "2 pairs" in dpo.description


@pytest.fixture(scope="module")
def gx_loaded():
    """Import Great Expectations once for this module (it is slow to import)."""
    import great_expectations  # noqa: F401


def test_expectations_pass_on_good_data(gx_loaded):
    result = gates.expectations(good_examples(), good_pairs(), ["page_generation"])
    assert result.passed, result.description
    assert result.metadata["failed"] == 0 and result.metadata["expectations"] > 15


def test_expectations_fail_with_rows_and_next_step(gx_loaded):
    examples = good_examples(5)
    examples.loc[0, "score"] = 12.0
    examples.loc[1, "response_format"] = "yaml"
    examples.loc[2, "completion"] = None
    examples.loc[3, "task"] = "roast"
    result = gates.expectations(examples, EMPTY_PAIRS, ["page_generation"])
    assert not result.passed
    failed = {(o["column"], o["expectation"]) for o in result.metadata["results"] if not o["success"]}
    assert ("score", "expect_column_values_to_be_between") in failed
    assert ("response_format", "expect_column_values_to_be_in_set") in failed
    assert ("completion", "expect_column_values_to_not_be_null") in failed
    assert ("task", "expect_column_values_to_be_in_set") in failed
    assert "examples.score expect_column_values_to_be_between (1 of 5 rows)" in result.description
    assert "fix scored_examples" in result.description
    json.dumps(result.metadata)  # metadata is JSON for the UI


@pytest.mark.parametrize(
    "leak,kind",
    [
        ("write to maria.contact@example.com", "email"),  # a placeholder inside a real address
        ("call +1 (555) 000-00001", "phone"),  # ... or inside a real number
        ("desk (030) 6913920 ext 22201", "phone"),
        ("iban de89370400440532013000", "iban"),
        ("card 501811524492", "card"),
        ("PESEL 93090881248", "national_id"),
    ],
)
def test_residual_gate_fails_on_what_the_engine_used_to_miss(leak, kind):
    examples = good_examples()
    examples.loc[0, "completion"] = f"Welcome to [BUSINESS_NAME], {leak}."
    result = gates.residual_pii(examples, good_pairs())
    assert not result.passed
    assert result.metadata["residual_by_kind"][kind] >= 1


def _chunked(tmp_path, df: pd.DataFrame, name: str, columns: list[str], rows: int = 3) -> gates.ParquetChunks:
    path = tmp_path / f"{name}.parquet"
    df.to_parquet(path, index=False)
    return gates.ParquetChunks(path, columns, rows=rows)


def test_gates_read_in_chunks_judge_as_on_the_whole_table(tmp_path, gx_loaded):
    examples = good_examples(10)
    examples.loc[7, "completion"] = "Welcome, write to maria.contact@example.com."  # residual PII in the 3rd chunk
    examples.loc[8, "score"] = 12.0
    examples.loc[9, "example_id"] = examples.loc[1, "example_id"]  # duplicate ids in different chunks
    examples.loc[4, "tenant_hash"] = tenant_hash("org_out")
    pairs = good_pairs(4)
    chunks = _chunked(tmp_path, examples, "examples", ANONYMIZED_EXAMPLE_COLUMNS)
    pair_chunks = _chunked(tmp_path, pairs, "pairs", ANONYMIZED_PAIR_COLUMNS)
    assert len(chunks) == 10 and [len(c) for c in chunks.chunks()] == [3, 3, 3, 1]
    for gate in (gates.residual_pii, lambda e, p: gates.opted_out_absent(e, p, {"org_out"}),
                 lambda e, p: gates.enough_examples(e, p, "dpo", 4, "t"),
                 lambda e, p: gates.expectations(e, p, ["page_generation"])):
        whole, chunked = gate(examples, pairs), gate(chunks, pair_chunks)
        assert (chunked.passed, chunked.description) == (whole.passed, whole.description)
        assert chunked.metadata == whole.metadata
    result = gates.expectations(chunks, pair_chunks, ["page_generation"])
    failed = {(o["column"], o["expectation"]) for o in result.metadata["results"] if not o["success"]}
    assert ("example_id", "expect_column_values_to_be_unique") in failed  # across chunks, not within one
    assert "examples.score expect_column_values_to_be_between (1 of 10 rows)" in result.description
    assert "row 7" in gates.residual_pii(chunks, pair_chunks).metadata["samples"][0]


def test_a_missing_file_is_an_empty_table_with_its_columns(tmp_path):
    missing = gates.ParquetChunks(tmp_path / "nope.parquet", ANONYMIZED_PAIR_COLUMNS)
    assert len(missing) == 0 and missing.columns == ANONYMIZED_PAIR_COLUMNS
    assert [list(c.columns) for c in missing.chunks(["chosen"])] == [["chosen"]]
    assert not gates.enough_examples(good_examples(3), missing, "dpo", 1, "t").passed
