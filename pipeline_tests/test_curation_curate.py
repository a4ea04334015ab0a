"""One target end to end on the store: counts add up, tenants stay apart, files are as artifacts.py says."""

from __future__ import annotations

import json

import sqlalchemy as sa

from pipeline.core import store as st
from pipeline.core.artifacts import EXAMPLE_COLUMNS, PAIR_COLUMNS, scored_dir
from pipeline.core.store import ImportCounts
from pipeline.curation.curate import DROP_REASONS, curate_target
from pipeline.curation.pairs import sha1
from pipeline_tests.curation_helpers import insert_accepted, kept_rows, pair_rows, record, target

GOOD = [("thumbs", 1), ("outcome", "accepted")]
EDITED = [("thumbs", 1), ("outcome", "accepted_with_edits"), ("edit", "An edited answer"), ("rating", 5)]


def _mixed() -> list[dict]:
    return [
        record("k1", prompt="Hero for a bakery", feedback=GOOD, conversation="c1"),
        record("k2", prompt="Footer for a florist", feedback=EDITED),
        record("k3", prompt="Review the pricing page", feedback=[("label", "The CTA is hidden.")]),
        record("d1", prompt="hero for a BAKERY!", feedback=GOOD),  # duplicate of k1 (k1's conversation went on)
        record("b1", prompt="Contact form", feedback=[("thumbs", -1)]),  # below threshold
        record("b2", prompt="FAQ section", feedback=[("outcome", "abandoned")]),
        record("x1", prompt="Gallery", response="", feedback=GOOD),  # empty completion
        record("k4", prompt="Team section", feedback=GOOD, conversation="c1", at="2026-03-01T12:00:00Z"),
    ]


def test_counts_add_up_and_files_follow_the_contract(store):
    insert_accepted(store, _mixed())
    report = curate_target(store, target(), batch_size=3)
    assert report.read == 8
    assert report.kept == 4
    assert dict(report.dropped) == {"duplicate_prompt": 1, "below_threshold": 2, "empty_completion": 1}
    assert report.counts_add_up and report.read == report.kept + report.dropped_total
    assert sum(report.scored_histogram) == 8 - report.dropped["unreadable_record"]
    assert sum(report.kept_histogram) == report.kept

    rows = {r["example_id"]: r for r in kept_rows(report.scored_path)}
    assert set(rows) == {"k1", "k2", "k3", "k4"}
    assert all(list(r) == EXAMPLE_COLUMNS for r in rows.values())
    assert report.scored_path == scored_dir("t")
    assert list(pair_rows(report.scored_path)[0]) == PAIR_COLUMNS
    # training target and its source
    assert (rows["k2"]["completion"], rows["k2"]["completion_source"]) == ("An edited answer", "edit")
    assert (rows["k3"]["completion"], rows["k3"]["completion_source"], rows["k3"]["score"]) == (
        "The CTA is hidden.", "label", 8.0)
    assert rows["k1"]["completion_source"] == "response"
    # group ids: the conversation, else the example
    assert rows["k1"]["group_id"] == rows["k4"]["group_id"] == sha1("c1")
    assert rows["k2"]["group_id"] == sha1("k2")
    # the reasons are JSON the UI can show; the conversation went on after k1, not after k4
    assert json.loads(rows["k1"]["score_reasons"]) == ["thumbs_up +3", "accepted +2", "conversation_continued +1"]
    assert "conversation_continued +1" not in json.loads(rows["k4"]["score_reasons"])
    assert json.loads(rows["k1"]["messages"]) == [{"role": "user", "content": "Hero for a bakery"}]
    assert json.loads(rows["k1"]["context"]) == {}
    # written atomically: nothing but the manifest, its masks and the one part is left behind
    assert sorted(p.name for p in scored_dir("t").iterdir()) == ["manifest.json", "masks-1.npz", "parts"]
    assert sorted(p.name for p in (scored_dir("t") / "parts").iterdir()) == ["part-000001"]
    assert sorted(p.name for p in (scored_dir("t") / "parts" / "part-000001").iterdir()) == [
        "candidates.parquet", "keys.npz", "pairs.npz", "pairs.parquet", "rows.parquet"]


def test_a_later_turn_of_another_task_continues_the_conversation(store):
    insert_accepted(store, [
        record("p1", prompt="Build my page", feedback=GOOD, conversation="c7", at="2026-03-01T10:00:00Z"),
        record("p2", task="chat", prompt="thanks", conversation="c7", at="2026-03-01T10:00:00.250Z"),
        record("p3", prompt="Another page", feedback=GOOD, conversation="c8", at="2026-03-01T10:00:00.5Z"),
        record("p4", task="chat", prompt="ok", conversation="c8", at="2026-03-01T10:00:00Z"),  # earlier: not later
    ])
    report = curate_target(store, target())
    rows = {r["example_id"]: json.loads(r["score_reasons"]) for r in kept_rows(report.scored_path)}
    assert "conversation_continued +1" in rows["p1"]
    assert "conversation_continued +1" not in rows["p3"]
    assert report.read == 2  # the chat turns belong to no page_builder example


def test_a_per_tenant_target_never_sees_another_tenant(store):
    luna = [record(f"l{i}", org="avatar_luna", task="chat", prompt=f"Luna question {i} about {w}", feedback=GOOD,
                   conversation="shared-conv", user="u1", response=f"Luna answer {w}")
            for i, w in enumerate(["stars", "moons", "tides"])]
    luna.append(record("l9", org="avatar_luna", task="chat", prompt="Luna roast", response="Meh",
                       feedback=[("edit", "Sharp")]))
    maxs = [record(f"m{i}", org="avatar_max", task="chat", prompt=f"Max question {i} about {w}", feedback=GOOD,
                   conversation="shared-conv", user="u1", response=f"Max answer {w}", at="2026-03-02T10:00:00Z")
            for i, w in enumerate(["cars", "trains", "planes"])]
    maxs.append(record("m9", org="avatar_max", task="chat", prompt="Luna roast", response="Meh",
                       feedback=[("edit", "Sharp")]))
    insert_accepted(store, luna + maxs)
    report = curate_target(store, target("avatar_luna", tasks=("chat",), tenants=("avatar_luna",)))
    examples = kept_rows(report.scored_path)
    pairs = pair_rows(report.scored_path)
    assert report.read == 4
    assert {r["org_id"] for r in examples} == {"avatar_luna"} and len(examples) == 3
    assert {r["org_id"] for r in pairs} == {"avatar_luna"} and len(pairs) == 1
    text = json.dumps(examples + pairs)
    assert "avatar_max" not in text and "Max " not in text
    # the other tenant's later turns in a same-named conversation do not count as the conversation going on
    assert all("conversation_continued +1" not in json.loads(r["score_reasons"]) for r in examples)


def test_excluded_and_opted_out_tenants_are_never_read(store):
    insert_accepted(store, [
        record("a1", org="org_a", prompt="Page A", feedback=GOOD),
        record("b1", org="org_b", prompt="Page B", feedback=GOOD),
        record("c1", org="org_c", prompt="Page C", feedback=GOOD),
    ])
    store.import_batch([("organization", {"org_id": "org_c", "training_opt_out": True})], ImportCounts())
    report = curate_target(store, target(exclude_tenants=("org_b",)))
    assert report.read == 1 and [r["org_id"] for r in kept_rows(report.scored_path)] == ["org_a"]
    assert report.excluded_tenants == ["org_c"]


def test_an_unreadable_record_is_dropped_with_a_reason_and_quarantined(store):
    insert_accepted(store, [record("ok1", prompt="Page", feedback=GOOD)])
    with store.engine.begin() as conn:
        conn.execute(st.accepted.insert(), [{
            "id": "bad1", "org_id": "org_a", "task": "page_generation", "user_id": None, "conversation_id": None,
            "occurred_at": "2026-03-01T10:00:00Z", "response_format": "text",
            "record": json.dumps({"id": "bad1", "org_id": "org_a", "task": "page_generation"}), "accepted_seq": 9,
        }])
    report = curate_target(store, target())
    assert report.read == 2 and report.kept == 1 and report.dropped["unreadable_record"] == 1
    assert report.counts_add_up
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(st.quarantine).where(st.quarantine.c.stage == "scored_examples")).all()
    assert [(r.record_key, r.reason) for r in rows] == [("bad1", "unreadable_record")]
    assert "KeyError" in rows[0].detail and "target t" in rows[0].detail


def test_an_empty_target_writes_empty_files(store):
    report = curate_target(store, target())
    assert (report.read, report.kept) == (0, 0)
    assert kept_rows(report.scored_path) == [] and pair_rows(report.scored_path) == []
    assert set(report.as_dict()["dropped"]) == set(DROP_REASONS)


def test_rerun_replaces_the_files(store):
    insert_accepted(store, [record("r1", prompt="Page one", feedback=GOOD)])
    first = curate_target(store, target())
    insert_accepted(store, [record("r2", prompt="Page two", feedback=GOOD)], first_seq=2)
    second = curate_target(store, target())
    assert first.scored_path == second.scored_path
    assert [r["example_id"] for r in kept_rows(second.scored_path)] == ["r1", "r2"]
