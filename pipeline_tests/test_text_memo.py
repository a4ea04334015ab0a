"""The check memos (`text_memo.py`): a re-check tests only texts it has not seen pass, and never trusts
a memo into a wrong verdict (a failing text, another detector, another opt-out set, a damaged file)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.anonymize import gates
from pipeline.anonymize.records import ANONYMIZED_EXAMPLE_COLUMNS, tenant_hash
from pipeline.anonymize.text_memo import TextMemo, text_hashes
from pipeline_tests.test_anonymize_gates import EMPTY_PAIRS, _chunked, good_examples, good_pairs


def distinct_texts(examples, pairs) -> int:
    texts = set()
    for df, columns in ((examples, gates.EXAMPLE_TEXT_COLUMNS), (pairs, gates.PAIR_TEXT_COLUMNS)):
        for column in columns:
            texts.update(v for v in df[column] if isinstance(v, str) and v)
    return len(texts)


def varied(n: int, start: int = 0):
    examples = good_examples(n)
    examples["completion"] = [f"Welcome to [BUSINESS_NAME], offer number {start + i}." for i in range(n)]
    return examples


def test_a_second_check_tests_only_new_texts_and_gives_the_same_verdict(tmp_path):
    path = tmp_path / "residual.npz"
    examples, pairs = varied(6), good_pairs()
    first = gates.residual_pii(examples, pairs, gates.residual_memo(path))
    assert first.passed and first.metadata["texts_known_to_pass"] == 0
    assert first.metadata["texts_tested"] == first.metadata["texts"] > 0
    assert len(TextMemo(path, gates.residual_memo(None).version)) == distinct_texts(examples, pairs)

    again = gates.residual_pii(examples, pairs, gates.residual_memo(path))
    assert again.passed and again.metadata["texts_tested"] == 0
    assert again.metadata["texts_known_to_pass"] == first.metadata["texts"]

    grown = varied(8)  # two new completions, the rest as before
    after = gates.residual_pii(grown, pairs, gates.residual_memo(path))
    assert after.passed and after.metadata["texts_tested"] == 2


def test_a_text_that_fails_is_never_remembered_and_fails_every_run(tmp_path):
    path = tmp_path / "residual.npz"
    examples = varied(5)
    gates.residual_pii(examples, good_pairs(), gates.residual_memo(path))  # all clean: all remembered
    examples.loc[3, "completion"] = "Call me on +44 20 7946 0958 after six."
    for _ in range(2):
        result = gates.residual_pii(examples, good_pairs(), gates.residual_memo(path))
        assert not result.passed and result.metadata["texts_tested"] == 1
        assert result.metadata["residual_by_kind"]["phone"] == 1 and "row 3" in result.metadata["samples"][0]
    memo = gates.residual_memo(path)
    bad = np.array(["Call me on +44 20 7946 0958 after six."], dtype=object)
    assert not memo.seen(*text_hashes(bad)).any()


def test_the_memo_holds_only_the_texts_of_the_last_check(tmp_path):
    path = tmp_path / "residual.npz"
    gates.residual_pii(varied(10), good_pairs(), gates.residual_memo(path))
    small = varied(3)
    gates.residual_pii(small, EMPTY_PAIRS, gates.residual_memo(path))
    assert len(TextMemo(path, gates.residual_memo(None).version)) == distinct_texts(small, EMPTY_PAIRS)


def test_another_version_or_a_damaged_memo_is_ignored(tmp_path, caplog):
    path = tmp_path / "residual.npz"
    examples = varied(4)
    gates.residual_pii(examples, good_pairs(), gates.residual_memo(path))
    other = TextMemo(path, "residual-another-detector")
    assert len(other) == 0 and "another version" in other.note

    path.write_bytes(b"not an npz file")
    result = gates.residual_pii(examples, good_pairs(), gates.residual_memo(path))
    assert result.passed and result.metadata["texts_known_to_pass"] == 0
    assert result.metadata["texts_tested"] == result.metadata["texts"]
    assert "unreadable" in result.metadata["memo_note"] and "unreadable" in caplog.text
    assert len(TextMemo(path, gates.residual_memo(None).version)) > 0  # rewritten whole


def test_unsorted_hashes_are_a_damaged_memo(tmp_path):
    path = tmp_path / "m.npz"
    np.savez(path, version=np.array("v"), first=np.array([3, 1], dtype=np.uint64),
             second=np.array([1, 2], dtype=np.uint64))
    memo = TextMemo(path, "v")
    assert len(memo) == 0 and "unreadable" in memo.note


def test_both_hashes_must_match(tmp_path):
    texts = np.array(["alpha", "beta"], dtype=object)
    first, second = text_hashes(texts)
    path = tmp_path / "m.npz"
    memo = TextMemo(path, "v")
    memo.passed(first, second)
    memo.save()
    forged = TextMemo(path, "v")
    assert forged.seen(first, second).all()
    assert not forged.seen(first, second ^ np.uint64(1)).any()


def test_a_new_opt_out_is_searched_for_in_texts_the_old_memo_passed(tmp_path):
    path = tmp_path / "opted_out.npz"
    examples = good_examples(4)
    examples.loc[2, "completion"] = "Thanks from the org_later team."
    first = gates.opted_out_absent(examples, EMPTY_PAIRS, {"org_out"}, gates.opted_out_memo(path, {"org_out"}))
    assert first.passed and first.metadata["texts_tested"] > 0
    again = gates.opted_out_absent(examples, EMPTY_PAIRS, {"org_out"}, gates.opted_out_memo(path, {"org_out"}))
    assert again.passed and again.metadata["texts_tested"] == 0

    wider = {"org_out", "org_later"}
    result = gates.opted_out_absent(examples, EMPTY_PAIRS, wider, gates.opted_out_memo(path, wider))
    assert not result.passed and result.metadata["texts_naming_opted_out_tenants"] == {"examples": 1}
    assert result.metadata["texts_known_to_pass"] == 0


@pytest.mark.parametrize("memo", [False, True])
def test_the_memo_changes_no_verdict(tmp_path, memo):
    examples = varied(6)
    examples.loc[1, "response"] = "Reach anna.berg@mailbox.se today."
    examples.loc[4, "tenant_hash"] = tenant_hash("org_out")
    for _ in range(2):
        residual = gates.residual_pii(examples, good_pairs(), gates.residual_memo(tmp_path / "r.npz") if memo else None)
        opted = gates.opted_out_absent(examples, good_pairs(), {"org_out"},
                                       gates.opted_out_memo(tmp_path / "o.npz", {"org_out"}) if memo else None)
        assert (residual.passed, residual.metadata["residual_by_kind"]["email"]) == (False, 1)
        assert (opted.passed, opted.metadata["rows_of_opted_out_tenants"]["examples"]) == (False, 1)


@pytest.fixture(scope="module")
def gx_loaded():
    import great_expectations  # noqa: F401


def _row_outcomes(result) -> list[tuple]:
    return [(o["table"], o["expectation"], o["column"], o["success"], o["unexpected_count"], o["element_count"])
            for o in result.metadata["results"]]


def test_expectations_validate_only_rows_not_seen_pass_and_report_as_without_a_memo(tmp_path, gx_loaded):
    path, tasks = tmp_path / "expectations.npz", ["page_generation"]
    examples, pairs = good_examples(6), good_pairs(3)
    plain = gates.expectations(examples, pairs, tasks)
    first = gates.expectations(examples, pairs, tasks, gates.expectations_memo(path, tasks))
    assert first.passed and first.metadata["rows_validated"] == 9 and first.metadata["rows_known_to_pass"] == 0
    again = gates.expectations(examples, pairs, tasks, gates.expectations_memo(path, tasks))
    assert again.passed and again.metadata["rows_validated"] == 0 and again.metadata["rows_known_to_pass"] == 9
    assert _row_outcomes(again) == _row_outcomes(first) == _row_outcomes(plain)

    grown = good_examples(8)  # two new rows
    after = gates.expectations(grown, pairs, tasks, gates.expectations_memo(path, tasks))
    assert after.passed and after.metadata["rows_validated"] == 2


def test_a_failing_row_is_validated_and_counted_every_run(tmp_path, gx_loaded):
    path, tasks = tmp_path / "expectations.npz", ["page_generation"]
    examples = good_examples(6)
    gates.expectations(examples, EMPTY_PAIRS, tasks, gates.expectations_memo(path, tasks))
    examples.loc[2, "score"] = 12.0
    for _ in range(2):
        result = gates.expectations(examples, EMPTY_PAIRS, tasks, gates.expectations_memo(path, tasks))
        assert not result.passed and result.metadata["rows_validated"] == 1
        assert "examples.score expect_column_values_to_be_between (1 of 6 rows)" in result.description


def test_a_duplicate_id_among_known_rows_still_fails(tmp_path, gx_loaded):
    path, tasks = tmp_path / "expectations.npz", ["page_generation"]
    examples = good_examples(4)
    gates.expectations(examples, EMPTY_PAIRS, tasks, gates.expectations_memo(path, tasks))
    doubled = good_examples(4)
    doubled = pd.concat([doubled, doubled.iloc[[1]]], ignore_index=True)  # the same row twice: both known
    result = gates.expectations(doubled, EMPTY_PAIRS, tasks, gates.expectations_memo(path, tasks))
    assert result.metadata["rows_validated"] == 0
    failed = {(o["column"], o["expectation"]) for o in result.metadata["results"] if not o["success"]}
    assert failed == {("example_id", "expect_column_values_to_be_unique")}


def test_another_task_list_is_another_memo(tmp_path, gx_loaded):
    path = tmp_path / "expectations.npz"
    examples = good_examples(4)
    assert gates.expectations(examples, EMPTY_PAIRS, ["page_generation"],
                              gates.expectations_memo(path, ["page_generation"])).passed
    narrower = gates.expectations(examples, EMPTY_PAIRS, ["section_edit"], gates.expectations_memo(path, ["section_edit"]))
    assert not narrower.passed and narrower.metadata["rows_validated"] == 4
    assert "another version" in narrower.metadata["memo_note"]


def test_expectations_over_chunks_with_a_memo_match_the_whole_table(tmp_path, gx_loaded):
    examples = good_examples(10)
    examples.loc[8, "score"] = -1.0
    chunks = _chunked(tmp_path, examples, "examples", ANONYMIZED_EXAMPLE_COLUMNS)
    tasks = ["page_generation"]
    whole = gates.expectations(examples, EMPTY_PAIRS, tasks)
    for _ in range(2):
        memo = gates.expectations_memo(tmp_path / "m.npz", tasks)
        chunked = gates.expectations(chunks, EMPTY_PAIRS, tasks, memo)
        assert (chunked.passed, chunked.description) == (whole.passed, whole.description)
        assert _row_outcomes(chunked) == _row_outcomes(whole)
