"""What a retraining-sensor tick reads: only the rows above the watermark and their conversations, by index.

SQLite's `EXPLAIN QUERY PLAN` of the queries the tick runs must name an index search on
`(task, accepted_seq)` and a covering index on `(org_id, conversation_id, occurred_at)`; with the
task index alone (the schema before issue 13) SQLite visited every row of the target's tasks on
every tick, and the tick re-read every conversation of the store (30 s at 1M interactions).
bench/sensor_tick.py measures the ticks.
"""

import sqlalchemy as sa

from pipeline.core import store as st
from pipeline.curation.curate import continuation, conversation_last_turns, last_turns_of, last_turns_query
from pipeline.finetune.retraining import count_new_examples
from pipeline_tests.curation_helpers import insert_accepted, record, target

TASK_SEQ = "ix_fw_accepted_interactions_task_seq"
CONVERSATION = "ix_fw_accepted_interactions_conversation"


def plan(store: st.Store, query: sa.Select) -> list[str]:
    """SQLite's plan for the query, on a new connection (sqlite3 caches prepared statements, plans included)."""
    sql = str(query.compile(store.engine, compile_kwargs={"literal_binds": True}))
    store.engine.dispose()
    with store.engine.connect() as conn:
        return [row[3] for row in conn.execute(sa.text(f"EXPLAIN QUERY PLAN {sql}"))]


def searches_above_watermark(steps: list[str]) -> bool:
    """The plan finds the rows by task and accepted_seq in the index: it never visits a row below the watermark."""
    return any(f"USING INDEX {TASK_SEQ} (task=? AND accepted_seq>?" in step for step in steps) and not any(
        step.startswith("SCAN fw_accepted_interactions") for step in steps)


def new_rows_query(store: st.Store) -> sa.Select:
    return st.accepted_ids_query(["page_generation", "chat"], None, ["org_out"], since_seq=40, through_seq=60)


def test_the_new_rows_query_is_an_index_search_on_task_and_accepted_seq(tmp_path):
    store = st.Store(f"sqlite:///{tmp_path / 'store.db'}")
    insert_accepted(store, [record(f"r{i}", task=("chat", "page_generation", "roast")[i % 3]) for i in range(60)])
    steps = plan(store, new_rows_query(store))
    assert searches_above_watermark(steps), steps
    member = plan(store, st.accepted_ids_query(["chat"], ["org_a"], (), since_seq=40, through_seq=60))
    assert searches_above_watermark(member), member  # a tenant's target too, not the tenant's every row

    # the schema before: the single-column task index, and none on (task, accepted_seq)
    with store.engine.begin() as conn:
        conn.execute(sa.text(f"DROP INDEX {TASK_SEQ}"))
        conn.execute(sa.text("CREATE INDEX ix_fw_accepted_interactions_task ON fw_accepted_interactions (task)"))
    before = plan(store, new_rows_query(store))
    assert not searches_above_watermark(before), before
    assert any("(task=?)" in step for step in before)  # every row of the tasks, filtered one by one


def test_the_conversations_of_new_rows_are_read_from_a_covering_index(tmp_path):
    store = st.Store(f"sqlite:///{tmp_path / 'store.db'}")
    steps = plan(store, last_turns_query("org_a", ["c1", "c2"]))
    assert any(f"USING COVERING INDEX {CONVERSATION} (org_id=? AND conversation_id=?)" in s for s in steps), steps
    with store.engine.begin() as conn:
        conn.execute(sa.text(f"DROP INDEX {CONVERSATION}"))
    assert not any(CONVERSATION in s for s in plan(store, last_turns_query("org_a", ["c1", "c2"])))


def test_an_older_store_gets_the_indexes_when_opened(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = st.Store(url)
    with store.engine.begin() as conn:
        for name in st.ADDED_INDEXES:
            conn.execute(sa.text(f"DROP INDEX {name}"))
    store.dispose()
    names = {ix["name"] for ix in sa.inspect(st.Store(url).engine).get_indexes("fw_accepted_interactions")}
    assert set(st.ADDED_INDEXES) <= names


def _conversations_store(tmp_path) -> st.Store:
    """Turns of conversations across tenants and tasks, some imported out of order (a later turn, a lower seq)."""
    store = st.Store(f"sqlite:///{tmp_path / 'store.db'}")
    rows = []
    for i in range(30):
        org = ("org_a", "org_b", "org_out")[i % 3]
        rows.append(record(f"t{i}", org=org, task=("chat", "page_generation")[i % 2], conversation=f"c{i % 7}",
                           at=f"2026-03-01T10:{59 - i:02d}:00Z", prompt=f"Turn {i} of a long talk about pages",
                           feedback=[("thumbs", 1), ("outcome", "accepted")] if i % 4 else [("thumbs", -1)]))
    rows.append(record("solo", conversation="c_solo", at="2026-03-01T09:00:00Z", feedback=[("thumbs", 1)]))
    insert_accepted(store, rows)
    return store


def test_a_tick_judges_continued_conversations_as_a_full_scan_did(tmp_path):
    """Reading only the new rows' conversations gives each new row the same answer as reading every conversation."""
    store = _conversations_store(tmp_path)
    everything = continuation(conversation_last_turns(store, None, ["org_out"]))
    new = [r for batch in store.iter_accepted(["chat", "page_generation"], None, ["org_out"], since_seq=12,
                                              through_seq=31) for r in batch]
    assert new and any(everything(r) for r in new) and not all(everything(r) for r in new)
    only_theirs = continuation(last_turns_of(store, new))
    assert [only_theirs(r) for r in new] == [everything(r) for r in new]


def _reads_of_the_log(statements: list[str]) -> list[str]:
    """Each read of fw_accepted_interactions by what bounds it: the watermark, a conversation list or an id list."""
    kinds = []
    for sql in statements:
        if "FROM fw_accepted_interactions" not in sql:
            continue
        text = " ".join(sql.split())
        kinds.append("above watermark" if "accepted_seq > ?" in text else
                     "by conversation" if "conversation_id IN (" in text else
                     "by id" if "fw_accepted_interactions.id IN (" in text else f"unbounded: {text}")
    return kinds


def test_count_new_examples_reads_only_rows_above_the_watermark(tmp_path):
    store = _conversations_store(tmp_path)
    statements: list[str] = []
    sa.event.listen(store.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    pages = target(tasks=("chat", "page_generation"), exclude_tenants=("org_out",))
    assert count_new_examples(store, pages, 31, 31) == 0 and statements == []  # nothing new: no query at all
    window = count_new_examples(store, pages, 12, 31)
    reads = _reads_of_the_log(statements)
    assert reads[0] == "above watermark" and set(reads) == {"above watermark", "by conversation", "by id"}, reads
    assert 0 < window < count_new_examples(store, pages, 0, 31)
