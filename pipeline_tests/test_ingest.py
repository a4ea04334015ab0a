"""The store, `flywheel import` and `raw_interactions` on SQLite and on the real Postgres."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from pipeline.core import store as st
from pipeline.ingest.importer import import_lines
from pipeline.ingest.ingestion import ingest_increment
from pipeline_tests.ingest_helpers import feedback, interaction, jsonl, organization


def _import(store, *records):
    return import_lines(store, jsonl(*records).splitlines(keepends=True), "test.jsonl")


def _accepted(store) -> dict[str, dict]:
    with store.engine.connect() as conn:
        return {r.id: json.loads(r.record) for r in conn.execute(sa.select(st.accepted))}


def _quarantine(store) -> list[sa.Row]:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(st.quarantine)).all()


def test_schema_creation_is_idempotent(store_url):
    first = st.Store(store_url)
    second = st.Store(store_url)  # a second process starting against the same database
    second.create_schema()
    assert first.high_watermark() == second.high_watermark() == 0
    first.dispose()
    second.dispose()


def test_import_upserts_by_id_and_counts(store):
    counts = _import(store, organization(), interaction(), feedback(), interaction(id="i2"))
    assert (counts.read, counts.inserted, counts.updated, counts.unchanged, counts.quarantined) == (4, 4, 0, 0, 0)
    counts = _import(store, interaction(), interaction(id="i2", response="changed"))
    assert (counts.read, counts.inserted, counts.updated, counts.unchanged) == (2, 0, 1, 1)
    assert store.count(st.interactions) == 2
    with store.engine.connect() as conn:
        record = json.loads(conn.execute(sa.select(st.interactions.c.record).where(st.interactions.c.id == "i2")).scalar_one())
    assert record["response"] == "changed"


def test_import_same_id_twice_in_one_file_keeps_the_last(store):
    counts = _import(store, interaction(response="first"), interaction(response="second"))
    assert counts.read == 2 and store.count(st.interactions) == 1
    assert counts.read == counts.inserted + counts.updated + counts.unchanged + counts.quarantined
    ingest_increment(store, 0)
    assert _accepted(store)["i1"]["response"] == "second"


@pytest.mark.parametrize(
    "line, reason",
    [
        (b"this is not json", "not_json"),
        (b"\xff\xfe{\"type\": \"interaction\"}", "not_utf8"),
        (b"[1, 2, 3]", "not_object"),
        (b'{"type": "click", "id": "x"}', "unknown_type"),
        (b'{"id": "x", "org_id": "o"}', "unknown_type"),
        (b'{"type": "interaction", "org_id": "o"}', "missing_field"),
        (b'{"type": "feedback", "kind": "thumbs", "value": 1}', "missing_field"),
        (b'{"type": "interaction", "id": 42}', "missing_field"),
    ],
)
def test_import_quarantines_lines_it_cannot_store(store, line, reason):
    counts = import_lines(store, [line + b"\n", jsonl(interaction())], "bad.jsonl")
    assert counts.read == 2 and counts.quarantined == 1 and counts.inserted == 1
    assert counts.quarantined_by_reason == {reason: 1}
    (row,) = _quarantine(store)
    assert (row.stage, row.record_key, row.reason) == ("import", "bad.jsonl:1", reason)


def test_import_empty_file_reads_nothing(store):
    counts = import_lines(store, [], "empty.jsonl")
    assert counts.as_dict()["read"] == 0 and store.count(st.interactions) == 0
    assert ingest_increment(store, 0).total_in == 0


def test_import_blank_lines_are_counted_not_records(store):
    counts = import_lines(store, [b"\n", b"   \n", jsonl(interaction())], "b.jsonl")
    assert counts.blank_lines == 2 and counts.read == 1


BIG = "x" * 5_000_000  # a 5 MB text


@pytest.mark.parametrize(
    "records, reason, record_type",
    [
        ([interaction(occurred_at=...)], "missing_field", "interaction"),
        ([interaction(task=...)], "missing_field", "interaction"),
        ([interaction(response=...)], "missing_field", "interaction"),
        ([interaction(messages=[])], "wrong_type", "interaction"),
        ([interaction(messages="hello")], "wrong_type", "interaction"),
        ([interaction(messages=[{"role": "assistant", "content": "hi"}])], "no_user_turn", "interaction"),
        ([interaction(messages=[{"role": "robot", "content": "hi"}])], "unknown_role", "interaction"),
        ([interaction(messages=[{"role": "user", "content": 5}])], "wrong_type", "interaction"),
        ([interaction(org_id=7)], "wrong_type", "interaction"),
        ([interaction(response_format="xml")], "wrong_type", "interaction"),
        ([interaction(context=["a"])], "wrong_type", "interaction"),
        ([interaction(occurred_at="last tuesday")], "bad_timestamp", "interaction"),
        ([interaction(occurred_at="2026-03-01T10:00:00")], "bad_timestamp", "interaction"),
        ([interaction(occurred_at=1700000000)], "wrong_type", "interaction"),
        ([interaction(response=BIG)], "text_too_long", "interaction"),
        ([interaction(), feedback(kind="smile")], "unknown_feedback_kind", "feedback"),
        ([interaction(), feedback(value=5)], "bad_feedback_value", "feedback"),
        ([interaction(), feedback(value=True)], "bad_feedback_value", "feedback"),
        ([interaction(), feedback(kind="rating", value=9)], "bad_feedback_value", "feedback"),
        ([interaction(), feedback(kind="outcome", value="loved")], "bad_feedback_value", "feedback"),
        ([interaction(), feedback(kind="action", value="starred")], "bad_feedback_value", "feedback"),
        ([interaction(), feedback(kind="edit", value={"a": 1})], "bad_feedback_value", "feedback"),
        ([interaction(), feedback(value=...)], "missing_field", "feedback"),
        ([interaction(), feedback(at="soon")], "bad_timestamp", "feedback"),
        ([feedback(interaction_id="ghost")], "unknown_interaction", "feedback"),
        ([organization("org_bad", training_opt_out="yes")], "wrong_type", "organization"),
    ],
)
def test_contract_violations_are_quarantined_with_a_reason(store, records, reason, record_type):
    good = [interaction(id="ok1"), feedback(interaction_id="ok1")]
    _import(store, *good, *records)
    report = ingest_increment(store, 0)
    assert report.balanced(), report
    assert report.quarantined[reason] == 1, report.quarantined
    assert report.quarantined_by_type[record_type] == 1
    assert "ok1" in _accepted(store)  # the run went on
    rows = [r for r in _quarantine(store) if r.stage == "raw_interactions"]
    assert len(rows) == 1 and rows[0].reason == reason and rows[0].detail
    assert report.total_in == len(good) + len(records)


def test_feedback_of_a_quarantined_interaction_is_quarantined_too(store):
    _import(store, interaction(occurred_at="bad"), feedback())
    report = ingest_increment(store, 0)
    assert report.quarantined == {"bad_timestamp": 1, "interaction_quarantined": 1}
    assert report.balanced()


def test_feedback_is_attached_and_latest_wins(store):
    _import(
        store,
        interaction(),
        feedback(kind="thumbs", value=-1, at="2026-03-01T10:01:00Z"),
        feedback(kind="thumbs", value=1, at="2026-03-01T10:09:00Z"),
        feedback(kind="outcome", value="accepted_with_edits"),
        feedback(kind="edit", value="Fresh bread, every single morning."),
    )
    report = ingest_increment(store, 0)
    assert report.accepted == {"interaction": 1, "feedback": 4}
    from pipeline.core.contract import latest_feedback

    record = _accepted(store)["i1"]
    assert latest_feedback(record["feedback"])["thumbs"] == 1
    assert record["occurred_at"] == "2026-03-01T10:00:00Z"


def test_incremental_reads_only_what_is_new_and_reattaches_late_feedback(store):
    _import(store, interaction(id="i1"), interaction(id="i2"))
    first = ingest_increment(store, 0)
    assert first.total_in == 2
    again = ingest_increment(store, first.cursor_to)
    assert again.total_in == 0 and again.cursor_to == first.cursor_to
    _import(store, feedback(interaction_id="i1", kind="outcome", value="accepted"))
    third = ingest_increment(store, first.cursor_to)
    assert third.records_in == {"feedback": 1} and third.accepted == {"feedback": 1}
    assert [e["kind"] for e in _accepted(store)["i1"]["feedback"]] == ["outcome"]
    # the row changed: readers of `accepted_seq > watermark` (scored_examples, the retraining sensor) see it again
    with store.engine.connect() as conn:
        seqs = dict(conn.execute(sa.select(st.accepted.c.id, st.accepted.c.accepted_seq)).all())
    assert seqs["i1"] > first.cursor_to >= seqs["i2"]
    assert store.accepted_through() == third.cursor_to


def test_feedback_that_arrives_before_its_interaction_is_resolved_later(store):
    _import(store, feedback(interaction_id="late"))
    first = ingest_increment(store, 0)
    assert first.quarantined == {"unknown_interaction": 1}
    _import(store, interaction(id="late"))
    second = ingest_increment(store, first.cursor_to)
    assert second.accepted == {"interaction": 1} and second.resolved == 1
    assert not _quarantine(store)
    assert len(_accepted(store)["late"]["feedback"]) == 1


def test_opted_out_tenants_never_leave_the_source(store):
    _import(store, organization("org_out", opt_out=True), interaction(id="x", org="org_out"),
            feedback(interaction_id="x"), interaction(id="y", org="org_in"))
    report = ingest_increment(store, 0)
    assert report.excluded_opt_out == {"organization": 1, "interaction": 1, "feedback": 1}
    assert set(_accepted(store)) == {"y"} and report.balanced()


def test_a_tenant_opting_out_later_is_purged(store):
    _import(store, organization("org_a"), interaction(id="a1", org="org_a"))
    first = ingest_increment(store, 0)
    assert set(_accepted(store)) == {"a1"}
    _import(store, organization("org_a", opt_out=True))
    second = ingest_increment(store, first.cursor_to)
    assert second.purged_opt_out == 1 and not _accepted(store)


def test_a_corrected_resend_clears_its_quarantine_row(store):
    _import(store, interaction(occurred_at="bad"))
    first = ingest_increment(store, 0)
    assert len(_quarantine(store)) == 1
    _import(store, interaction())
    second = ingest_increment(store, first.cursor_to)
    assert second.accepted == {"interaction": 1} and not _quarantine(store)


def test_iter_accepted_filters_tenants_in_sql(store):
    _import(store, interaction(id="a", org="org_a"), interaction(id="b", org="org_b"),
            interaction(id="c", org="org_a", task="roast"))
    ingest_increment(store, 0)
    ids = [r["id"] for batch in store.iter_accepted(["chat"], tenants=["org_a"]) for r in batch]
    assert ids == ["a"]
    ids = [r["id"] for batch in store.iter_accepted(["chat", "roast"], exclude_tenants=["org_a"]) for r in batch]
    assert ids == ["b"]


def test_batches_do_not_change_the_result(store):
    records = []
    for i in range(23):
        records += [interaction(id=f"i{i:02d}", conversation_id=f"c{i % 4}"), feedback(interaction_id=f"i{i:02d}")]
    records.append(feedback(interaction_id="ghost"))
    _import(store, *records)
    report = ingest_increment(store, 0, batch_size=5)
    assert report.accepted == {"interaction": 23, "feedback": 23}
    assert report.quarantined == {"unknown_interaction": 1} and report.balanced()


def test_an_unreadable_organization_record_counts_as_opted_out(store):
    """Privacy first: a tenant whose opt-out flag cannot be read is not trained on."""
    _import(store, organization("org_a", training_opt_out="yes"), interaction(id="a1", org="org_a"))
    report = ingest_increment(store, 0)
    assert report.quarantined == {"wrong_type": 1} and report.excluded_opt_out == {"interaction": 1}
    assert not _accepted(store) and report.balanced()


@pytest.mark.parametrize(
    "url, shown",
    [
        ("postgresql://flywheel:s3cret@db.internal:5432/prod", "postgresql+psycopg2://flywheel:***@db.internal:5432/prod"),
        ("postgres://u:p%40ss@h/db", "postgresql+psycopg2://u:***@h/db"),
        ("sqlite:////tmp/flywheel.db", "sqlite:////tmp/flywheel.db"),
    ],
)
def test_source_url_is_normalized_and_its_password_masked(url, shown):
    from pipeline.core.settings import mask_url, normalize_url

    masked = mask_url(normalize_url(url))
    assert masked == shown
    assert "s3cret" not in masked and "p%40ss" not in masked
