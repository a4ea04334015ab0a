"""Anonymization at scale: the engine's analysis cache, redactions reused by content hash, batches.

Each reuse must give the bytes a fresh redaction gives; a changed example, a new engine or a
removed example must never be served an old redaction.
"""

from __future__ import annotations

import json

import dagster as dg
import pyarrow.parquet as pq
import pytest

from pipeline.anonymize import cache as cache_mod
from pipeline.anonymize.cache import EXAMPLE_TEXT, RedactionCache, engine_version, row_key
from pipeline.anonymize.dataset import anonymize_scored
from pipeline.anonymize.engine import ENTITIES
from pipeline.anonymize.records import prepare_example
from pipeline.core.artifacts import anonymized_dir, scored_dir
from pipeline_tests.anonymize_helpers import load_engine, scored_example, scored_pair, write_scored
from pipeline_tests.test_anonymize_assets import TARGET, materialize, store_with_orgs


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    return load_engine(tmp_path_factory)


class Counting:
    """`RedactionPool.redact` in this process, counting the groups the engine was given."""

    def __init__(self, engine):
        self.engine, self.groups = engine, 0

    def __call__(self, groups):
        self.groups += len(groups)
        return self.engine.redact_groups(groups)


def _run(engine, out, cache=None, batch_rows=2048, segments=None, opted_out=frozenset()):
    """One run into `out`; segments under `out/.segments` (this run's only) unless `segments` is given."""
    out.mkdir(parents=True, exist_ok=True)
    redact = Counting(engine)
    report = anonymize_scored(scored_dir(TARGET), set(opted_out), redact, out, segments or out / ".segments",
                              cache=cache, batch_rows=batch_rows)
    return report, redact.groups


def _bytes(folder):
    return (folder / "examples.parquet").read_bytes(), (folder / "pairs.parquet").read_bytes()


def test_analysis_cache_gives_what_a_fresh_analysis_gives_and_survives_callers_editing_results(engine):
    # the same person in texts that repeat across groups: the group steps edit the results they get
    groups = [
        ["You build landing pages.", f"I'm Maria Lopez, call (415) 555-01{i:02d}.", "Maria will check it."]
        for i in range(6)
    ] + [["You build landing pages.", "Ask Oluwaseun Adeyemi; lopez is away."]] * 2 + [
        # a JSON key's hint makes the whole value one entity; the same text without the hint must not inherit it
        [("open on sunday", "ORGANIZATION"), "hours"],
        ["open on sunday", "hours"],
    ]
    engine._analyses.clear()
    warm = [r.texts for r in engine.redact_groups(groups)]
    again = [r.texts for r in engine.redact_groups(groups)]  # every text now from the cache
    assert engine.analysis_hits > 0
    fresh = []
    for group in groups:
        engine._analyses.clear()
        fresh.extend(r.texts for r in engine.redact_groups([group]))
    assert warm == again == fresh
    assert all("Maria" not in t and "555-01" not in t for g in warm for t in g)


def test_second_run_reuses_every_redaction_byte_for_byte_and_only_new_rows_reach_the_engine(
    engine, _isolated_home, monkeypatch
):
    examples = [scored_example(i) for i in range(30)]
    pairs = [scored_pair(i) for i in range(5)]
    write_scored(TARGET, examples, pairs)
    folder = _isolated_home / "redactions"
    version = engine_version(ENTITIES)
    with RedactionCache(folder, version) as cache:
        first, sent_first = _run(engine, _isolated_home / "a", cache)
    plain, _ = _run(engine, _isolated_home / "plain")  # no cache at all
    # the five pairs differ only in their ids: one content, redacted once
    assert (first.redacted, first.reused, sent_first) == (31, 4, 31)
    assert _bytes(_isolated_home / "a") == _bytes(_isolated_home / "plain")
    import pipeline.anonymize.dataset as dataset

    parsed = []
    monkeypatch.setattr(dataset, "prepare_example", lambda row: parsed.append(row) or prepare_example(row))
    with RedactionCache(folder, version) as cache:
        second, sent_second = _run(engine, _isolated_home / "b", cache)
    assert parsed == []  # a known row is not even parsed
    assert (second.redacted, second.reused, sent_second) == (0, 35, 0)
    assert _bytes(_isolated_home / "b") == _bytes(_isolated_home / "a")
    assert second.entities == first.entities and second.example_counts.as_dict() == first.example_counts.as_dict()

    changed = dict(examples[3], completion="Now ask Oluwaseun Adeyemi at ade@example.org.")
    write_scored(TARGET, [*examples[:3], changed, *examples[4:], scored_example(99)], pairs)
    with RedactionCache(folder, version) as cache:
        third, sent_third = _run(engine, _isolated_home / "c", cache)
        assert cache.prune() == 1  # example 3 as it was is no longer in the dataset
    assert (third.redacted, sent_third) == (2, 2)  # the changed row and the new one
    rows = pq.read_table(_isolated_home / "c" / "examples.parquet").to_pylist()
    assert "Oluwaseun" not in rows[3]["completion"] and "[PERSON_NAME" in rows[3]["completion"]
    assert "ade@example.org" not in rows[3]["completion"]


def test_identical_examples_in_one_run_go_to_the_engine_once(engine, _isolated_home):
    same = scored_example(1)
    write_scored(TARGET, [dict(same, example_id=f"int-{i}") for i in range(4)], [])
    report, sent = _run(engine, _isolated_home / "out")
    assert (report.redacted, report.reused, sent) == (1, 3, 1)
    rows = pq.read_table(_isolated_home / "out" / "examples.parquet").to_pylist()
    assert len({r["example_id"] for r in rows}) == 4 and len({r["completion"] for r in rows}) == 1


def test_a_new_engine_version_starts_empty_and_removes_the_old_file(engine, _isolated_home, monkeypatch):
    write_scored(TARGET, [scored_example(i) for i in range(3)], [])
    folder = _isolated_home / "redactions"
    with RedactionCache(folder, "engine-aaaa") as cache:
        _run(engine, _isolated_home / "a", cache)
    with RedactionCache(folder, "engine-bbbb") as cache:
        report, sent = _run(engine, _isolated_home / "b", cache)
    assert (report.redacted, sent) == (3, 3)
    assert [p.name for p in folder.glob("*.sqlite")] == ["engine-bbbb.sqlite"]
    # the version follows the redactor's code: an edit to a module of the engine changes it
    before = engine_version(("PERSON",))
    monkeypatch.setattr(cache_mod, "ENGINE_PACKAGES", (*cache_mod.ENGINE_PACKAGES, "faker"))
    engine_version.cache_clear()
    assert engine_version(("PERSON",)) != before
    engine_version.cache_clear()


def test_cache_keys_follow_the_text_columns_only():
    row = scored_example(1)
    key = row_key("examples", row, EXAMPLE_TEXT)
    assert row_key("examples", dict(row, example_id="other", score=1.0, org_id="org_b"), EXAMPLE_TEXT) == key
    assert row_key("pairs", row, EXAMPLE_TEXT) != key
    for column in EXAMPLE_TEXT:
        assert row_key("examples", dict(row, **{column: (row[column] or "") + " "}), EXAMPLE_TEXT) != key, column
    assert row_key("examples", dict(row, system_prompt=None), EXAMPLE_TEXT) != row_key(
        "examples", dict(row, system_prompt=""), EXAMPLE_TEXT)
    # a value moved from one column to the next is another row
    assert row_key("examples", dict(row, response="ab", completion="c"), EXAMPLE_TEXT) != row_key(
        "examples", dict(row, response="a", completion="bc"), EXAMPLE_TEXT)


def test_small_batches_write_the_same_rows_as_one_batch(engine, _isolated_home):
    write_scored(TARGET, [scored_example(i) for i in range(23)] + [scored_example(50, org=None)],
                 [scored_pair(i) for i in range(7)])
    one, _ = _run(engine, _isolated_home / "one", batch_rows=10_000)
    small, _ = _run(engine, _isolated_home / "small", batch_rows=4)
    for name in ("examples.parquet", "pairs.parquet"):
        a = pq.read_table(_isolated_home / "one" / name).to_pylist()
        b = pq.read_table(_isolated_home / "small" / name).to_pylist()
        assert a == b and a
    assert one.example_counts.as_dict() == small.example_counts.as_dict() == {
        "rows_in": 24, "rows_out": 23, "removed": {"missing_tenant": 1}}
    assert pq.ParquetFile(_isolated_home / "small" / "examples.parquet").metadata.num_row_groups == 6


def test_asset_reuses_redactions_and_keeps_its_version(engine, _isolated_home):
    write_scored(TARGET, [scored_example(i) for i in range(55)], [scored_pair(i) for i in range(3)])
    store = store_with_orgs(_isolated_home, {"org_a": False})
    first, second = materialize(store), materialize(store)
    assert first.success and second.success

    def meta(result):
        (event,) = result.get_asset_materialization_events()
        return {k: v.value for k, v in event.materialization.metadata.items()}

    a, b = meta(first), meta(second)
    assert (a["redacted_by_engine"], a["reused_redactions"]) == (56, 2)  # the three pairs share one content
    assert (b["redacted_by_engine"], b["reused_redactions"]) == (0, 58)
    assert a["anonymized_version"] == b["anonymized_version"]
    assert a["engine_version"] == b["engine_version"] == engine_version(ENTITIES)
    caches = list((anonymized_dir(TARGET) / ".redactions").glob("*.sqlite"))
    assert [p.stem for p in caches] == [engine_version(ENTITIES)]
    # the cache holds hashes and redactions only: no planted raw value
    import sqlite3

    with sqlite3.connect(caches[0]) as conn:
        stored = json.dumps(conn.execute("SELECT key, value FROM redactions").fetchall())
    assert "Maria Lopez" not in stored and "555-01" not in stored and "gmail.com" not in stored
    assert dg.DataVersion(a["anonymized_version"])


def test_worker_processes_start_without_torch_and_redact_as_this_process_does(engine):
    from pipeline.anonymize.engine import WORKER_SKIPS_IMPORTS, RedactionPool, loaded

    groups = [[f"I'm Maria Lopez, call (415) 555-01{i:02d}.", "Ship to 12 Elm Street, Austin TX 78701."] for i in range(8)]
    with RedactionPool(workers=2, min_parallel=0, chunk_groups=2) as pool:
        pooled = [r.texts for r in pool.redact(groups)]
        assert not any(pool._pool.map(loaded, WORKER_SKIPS_IMPORTS * 2))
        assert all(pool._pool.map(loaded, ["spacy", "presidio_analyzer"] * 2))
    assert pooled == [r.texts for r in engine.redact_groups(groups)]


def test_a_fresh_process_starts_workers_even_for_a_few_rows(_isolated_home):
    # its own engine would load torch (about 7 s); two workers skip it (about 2 s each, side by side)
    import subprocess
    import sys

    script = (
        "from pipeline.anonymize.engine import RedactionPool, get_engine\n"
        "with RedactionPool(workers=2) as pool:\n"
        "    texts = [r.texts for r in pool.redact([['Call Maria Lopez on (415) 555-0101.']])]\n"
        "    print(pool._pool is not None, get_engine.cache_info().currsize, texts)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().startswith("True 0 [['Call [PERSON_NAME] on"), out.stdout
