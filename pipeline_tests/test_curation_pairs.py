"""Preference pairs of each source: edit, regenerated, saved vs skipped."""

from __future__ import annotations

import json

import pytest

from pipeline.core.artifacts import PAIR_COLUMNS
from pipeline.core.targets import ScoringConfig
from pipeline.curation.curate import curate_target
from pipeline.curation.pairs import round_robin, sha1
from pipeline_tests.curation_helpers import insert_accepted, pair_rows, record, target

EMBEDDING = {"tasks": ("signal_extraction",), "method": "embedding", "backend": "sentence_transformers",
             "scoring": ScoringConfig(export_threshold=3)}


def _pairs(store, records, **over):
    insert_accepted(store, records)
    report = curate_target(store, target(**over), batch_size=3)
    table = pair_rows(report.scored_path)
    assert all(list(row) == PAIR_COLUMNS for row in table)
    return report, table


def test_edit_pairs_put_the_edit_over_the_response(store):
    report, rows = _pairs(store, [
        record("e1", prompt="Write a roast", response="Meh joke", conversation="c9",
               feedback=[("outcome", "accepted_with_edits"), ("edit", "A sharper joke")]),
        record("e2", prompt="Write another", response="Same text", feedback=[("edit", "  Same   text ")]),  # whitespace
        record("e3", prompt="Write a third", response="Fine", feedback=[("outcome", "accepted")]),
    ], tasks=("page_generation",))
    assert len(rows) == 1 and report.pairs["edit"] == 1
    pair = rows[0]
    assert (pair["source"], pair["chosen"], pair["rejected"]) == ("edit", "A sharper joke", "Meh joke")
    assert json.loads(pair["messages"]) == [{"role": "user", "content": "Write a roast"}]
    assert pair["group_id"] == sha1("c9") and pair["org_id"] == "org_a"


def test_regenerated_pairs_need_the_same_prompt_in_the_same_conversation(store):
    report, rows = _pairs(store, [
        record("r1", conversation="c1", prompt="Hero for a gym", response="Weak hero", at="2026-03-01T10:00:00Z",
               feedback=[("outcome", "regenerated")]),
        record("r2", conversation="c1", prompt="Hero for a gym", response="Strong hero", at="2026-03-01T10:01:00Z",
               feedback=[("outcome", "accepted")]),
        # another conversation with the same prompt: no pair with c1
        record("r3", conversation="c2", prompt="Hero for a gym", response="Other weak", feedback=[("outcome", "regenerated")]),
        # same conversation, another prompt: no pair
        record("r4", conversation="c1", prompt="Footer please", response="Footer", at="2026-03-01T10:02:00Z",
               feedback=[("outcome", "accepted")]),
        # accepted with edits: the edit is the chosen side
        record("r5", conversation="c3", prompt="Pricing table", response="Bad table", feedback=[("outcome", "regenerated")]),
        record("r6", conversation="c3", prompt="Pricing table", response="Good table",
               feedback=[("outcome", "accepted_with_edits"), ("edit", "Great table")]),
    ])
    regenerated = sorted((r["chosen"], r["rejected"]) for r in rows if r["source"] == "regenerated")
    assert regenerated == [("Great table", "Bad table"), ("Strong hero", "Weak hero")]
    assert report.pairs["regenerated"] == 2 and report.pairs["edit"] == 1  # r6's own edit pair


def test_saved_over_skipped_items_of_the_same_user_and_query(store):
    def item(id, query, chunk, action, user="u1"):
        return record(id, task="signal_extraction", prompt=query, response=chunk, user=user,
                      feedback=[("action", action)])

    report, rows = _pairs(store, [
        item("s1", "pricing strategy", "Chunk A: raise prices yearly", "saved"),
        item("s2", "Pricing strategy", "Chunk B: anchor on value", "snipped"),
        item("k1", "pricing strategy", "Chunk C: weather small talk", "skipped"),
        item("k2", "hiring", "Chunk D: off topic", "skipped"),  # another query: never paired with s1/s2
        item("k3", "pricing strategy", "Chunk E: sponsor read", "skipped", user="u2"),  # another user
        item("s3", "hiring", "Chunk F: hire slow", "saved", user="u3"),  # no skipped item of u3
    ], **EMBEDDING)
    got = sorted((r["chosen"], r["rejected"]) for r in rows)
    assert got == [("Chunk A: raise prices yearly", "Chunk C: weather small talk"),
                   ("Chunk B: anchor on value", "Chunk C: weather small talk")]
    assert all(r["source"] == "saved_vs_skipped" for r in rows) and report.pairs["saved_vs_skipped"] == 2
    assert {r["messages"] for r in rows} <= {json.dumps([{"role": "user", "content": q}])
                                              for q in ("pricing strategy", "Pricing strategy")}
    assert all(r["system_prompt"] is None for r in rows)


def test_pairs_of_one_kind_per_method(store):
    edit = [("outcome", "accepted_with_edits"), ("edit", "Better chunk")]
    insert_accepted(store, [
        record("x1", task="signal_extraction", prompt="q", response="chunk", feedback=[*edit, ("action", "saved")]),
        record("x2", task="signal_extraction", prompt="q", response="other", feedback=[("action", "skipped")]),
    ])
    sft = curate_target(store, target("sft_t", tasks=("signal_extraction",)))
    emb = curate_target(store, target("emb_t", **EMBEDDING))
    assert dict(sft.pairs) == {"edit": 1}
    assert dict(emb.pairs) == {"saved_vs_skipped": 1}


def test_duplicate_pairs_are_written_once(store):
    same = {"prompt": "Write a roast", "response": "Meh", "feedback": [("edit", "Sharp")]}
    report, rows = _pairs(store, [record("d1", **same), record("d2", **same)])
    assert len(rows) == 1 and report.pairs_skipped["duplicate_pair"] == 1


@pytest.mark.parametrize(
    ("chosen", "rejected", "expected"),
    [
        (["a"], ["x"], [("a", "x")]),
        (["a", "b", "c"], ["x"], [("a", "x"), ("b", "x"), ("c", "x")]),
        (["a"], ["x", "y"], [("a", "x"), ("a", "y")]),
        (["a", "b"], ["x", "y", "z"], [("a", "x"), ("b", "y"), ("a", "z")]),
        ([], ["x"], []),
        (["a"], [], []),
    ],
)
def test_round_robin_uses_every_item_without_a_cross_product(chosen, rejected, expected):
    assert list(round_robin(chosen, rejected)) == expected
