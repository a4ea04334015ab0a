"""Segments: what was redacted of a scored part is copied, not redone, and never outlives its part or opt-outs.

A run after `scored_examples` added a part and changed its masks must send the engine only the
rows no segment holds, and write the rows a run from nothing writes.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.anonymize import segments
from pipeline.anonymize.cache import RedactionCache
from pipeline.anonymize.records import tenant_hash
from pipeline.core.artifacts import EXAMPLE_COLUMNS, scored_dir
from pipeline.curation import parts
from pipeline_tests.anonymize_helpers import load_engine, scored_example, scored_pair, write_scored
from pipeline_tests.test_anonymize_assets import TARGET
from pipeline_tests.test_anonymize_cache import _run


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    return load_engine(tmp_path_factory)


def _rows(folder, name="examples"):
    return sorted(pq.read_table(folder / f"{name}.parquet").to_pylist(), key=lambda r: str(sorted(r.items())))


def _add_part(examples, name):
    """What an incremental scored_examples run leaves: one more part, every row of it kept."""
    folder = scored_dir(TARGET)
    manifest, masks = parts.loaded(folder)
    out = parts.part_dir(folder, name)
    out.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(
        [{c: r.get(c) for c in EXAMPLE_COLUMNS} for r in examples], schema=parts.EXAMPLE_SCHEMA), out / parts.CANDIDATES)
    pq.write_table(parts.PAIR_SCHEMA.empty_table(), out / parts.PAIRS)
    manifest.parts.append(name)
    masks.rows[name] = np.ones(0, bool)
    masks.keep[name] = np.ones(len(examples), bool)
    masks.pairs[name] = np.ones(0, bool)
    return manifest, masks


def test_after_a_new_part_and_new_masks_only_unheld_rows_reach_the_engine_and_the_rows_equal_a_fresh_run(
    engine, _isolated_home
):
    write_scored(TARGET, [scored_example(i) for i in range(20)], [scored_pair(i, messages=f'[{{"role": "user", "content": "q{i}"}}]')
                                                               for i in range(3)])
    folder = scored_dir(TARGET)
    manifest, masks = parts.loaded(folder)
    masks.keep["part-000001"][5] = False  # a duplicate at first: never redacted
    parts.save(folder, manifest, masks)
    segs, cache_dir = _isolated_home / "segments", _isolated_home / "redactions"
    with RedactionCache(cache_dir, "engine-test") as cache:
        first, sent_first = _run(engine, _isolated_home / "a", cache, segments=segs)
    assert (sent_first, first.example_counts.rows_out, first.parts_redacted) == (19 + 3, 19, 2)

    manifest, masks = _add_part([scored_example(i) for i in range(100, 104)], "part-000002")
    masks.keep["part-000001"][0] = False  # superseded by the new part
    masks.keep["part-000001"][5] = True  # its duplicate's winner is gone: it is kept now
    parts.save(folder, manifest, masks)
    with RedactionCache(cache_dir, "engine-test") as cache:
        second, sent_second = _run(engine, _isolated_home / "b", cache, segments=segs)
        assert cache.prune() == 1  # example 0: in no segment row the dataset holds any more
    assert sent_second == 4 + 1  # the new part's rows and the one brought back, nothing else
    assert (second.parts_reused, second.parts_redacted) == (1, 2)  # the pairs' part is untouched
    fresh, sent_fresh = _run(engine, _isolated_home / "fresh")  # no cache, no segments
    assert sent_fresh == 23 + 3
    for name in ("examples", "pairs"):
        assert _rows(_isolated_home / "b", name) == _rows(_isolated_home / "fresh", name)
    assert second.example_counts.as_dict() == fresh.example_counts.as_dict() == {
        "rows_in": 23, "rows_out": 23, "removed": {}}
    assert (second.entities, second.notes, second.words) == (fresh.entities, fresh.notes, fresh.words)
    assert (second.redacted, second.reused) == (5, 21)

    with RedactionCache(cache_dir, "engine-test") as cache:  # nothing changed: the same bytes, nothing pruned
        third, sent_third = _run(engine, _isolated_home / "c", cache, segments=segs)
        assert cache.prune() == 0  # held: the rows copied from segments keep their cached redactions
    assert sent_third == 0 and (third.redacted, third.reused) == (0, 26)
    for name in ("examples.parquet", "pairs.parquet"):
        assert (_isolated_home / "c" / name).read_bytes() == (_isolated_home / "b" / name).read_bytes()


def test_a_part_rewritten_under_its_name_is_redacted_again(engine, _isolated_home):
    examples = [scored_example(i) for i in range(6)]
    write_scored(TARGET, examples, [])
    segs = _isolated_home / "segments"
    _run(engine, _isolated_home / "a", segments=segs)
    changed = dict(examples[2], completion="Now ask Oluwaseun Adeyemi at ade@example.org.")
    write_scored(TARGET, [*examples[:2], changed, *examples[3:]], [])  # part-000001 again, other bytes
    report, sent = _run(engine, _isolated_home / "b", segments=segs)
    assert sent == 6 and report.parts_redacted == 1
    completions = [r["completion"] for r in pq.read_table(_isolated_home / "b" / "examples.parquet").to_pylist()]
    assert "Oluwaseun" not in completions[2] and "[PERSON_NAME" in completions[2]


def test_opting_a_tenant_out_removes_its_rows_and_leaves_no_segment_holding_them(engine, _isolated_home):
    write_scored(TARGET, [scored_example(i, org="org_a" if i % 2 else "org_b") for i in range(8)]
                 + [scored_example(9, org="  ")], [scored_pair(1, org="org_b")])
    segs, cache_dir = _isolated_home / "segments", _isolated_home / "redactions"
    with RedactionCache(cache_dir, "engine-test") as cache:
        before, _ = _run(engine, _isolated_home / "a", cache, segments=segs)
    assert before.example_counts.as_dict() == {"rows_in": 9, "rows_out": 8, "removed": {"missing_tenant": 1}}
    with RedactionCache(cache_dir, "engine-test") as cache:
        after, sent = _run(engine, _isolated_home / "b", cache, segments=segs, opted_out={"org_b"})
        assert cache.prune() == 5  # org_b's four examples and its pair
    assert after.example_counts.as_dict() == {
        "rows_in": 9, "rows_out": 4, "removed": {"missing_tenant": 1, "tenant_opted_out": 4}}
    assert after.pair_counts.as_dict() == {"rows_in": 1, "rows_out": 0, "removed": {"tenant_opted_out": 1}}
    assert sent == 0  # new segments for the new opt-out set, filled from the row cache
    tenants = {r["tenant_hash"] for r in pq.read_table(_isolated_home / "b" / "examples.parquet").to_pylist()}
    assert tenants == {tenant_hash("org_a")}
    assert segments.sweep(segs, after.segment_folders) == 2  # the old opt-out set's examples and pairs
    held = {r["tenant_hash"] for f in segs.rglob("seg-*.parquet") for r in pq.read_table(f).to_pylist()}
    assert held == {tenant_hash("org_a")}
