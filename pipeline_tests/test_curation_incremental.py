"""`scored_examples` after new data scores only what changed, and keeps what a full run over the same log keeps."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from pipeline.core.store import Store
from pipeline.core.targets import load_targets
from pipeline.curation import incremental, parts
from pipeline.curation.curate import curate_target
from pipeline.ingest.importer import import_lines
from pipeline.ingest.ingestion import ingest_increment
from pipeline.synth.generate import dumps, iter_records
from pipeline_tests.curation_helpers import insert_accepted, kept_rows, pair_rows, record, target

GOOD_FEEDBACK = [("thumbs", 1), ("outcome", "accepted")]


def _targets():
    """Every fixed target of the targets file and one member of each family (sft, dpo, embedding all occur)."""
    targets = load_targets()
    out = [t for t in targets.values() if not t.is_family]
    out.append(targets["avatar_chat"].member("avatar_luna"))
    return out


def _result(report) -> dict:
    """What a run leaves for the next stage, and its counts (without timings and how it got there)."""
    counts = report.as_dict()
    counts.pop("seconds"), counts.pop("run")
    examples = sorted(kept_rows(report.scored_path), key=lambda r: r["example_id"])
    pairs = sorted((p["source"], p["messages"], p["chosen"], p["rejected"]) for p in pair_rows(report.scored_path))
    return {"counts": counts, "examples": examples, "pairs": pairs}


def _import(store: Store, lines: list[str], cursor: int) -> int:
    import_lines(store, [line.encode() for line in lines])
    ingest_increment(store, cursor)
    return store.high_watermark()


def test_incremental_runs_keep_what_a_full_run_keeps(tmp_path, monkeypatch):
    """The synthetic log in three slices: later slices add turns to earlier conversations, feedback to
    earlier interactions (updated rows), duplicates of earlier prompts, and move the clock on."""
    records = list(iter_records(900, seed=11))
    rng = random.Random(5)
    late = [r for r in records if r.get("type") == "feedback" and rng.random() < 0.2]  # feedback that comes later
    lines = [dumps(r) for r in records if not any(r is x for x in late)]
    cuts = [0, int(len(lines) * 0.6), int(len(lines) * 0.85), len(lines) + len(late)]
    lines += [dumps(r) for r in late]
    store = Store(f"sqlite:///{tmp_path}/s.db")
    targets = _targets()
    assert {t.method for t in targets} >= {"sft", "dpo", "embedding"}
    cursor = 0
    modes, superseded = [], 0
    for start, end in zip(cuts, cuts[1:], strict=False):
        cursor = _import(store, lines[start:end], cursor)
        for t in targets:
            monkeypatch.setenv("FLYWHEEL_HOME", str(tmp_path / "incremental"))
            step = curate_target(store, t)
            modes.append(step.mode)
            monkeypatch.setenv("FLYWHEEL_HOME", str(tmp_path / "full"))
            full = curate_target(store, t, full_refresh=True)
            assert full.mode == "full"
            assert _result(step) == _result(full), f"{t.name} after lines {end}"
            assert step.counts_add_up
            if step.mode == "incremental":
                assert 0 < step.scored_now < full.scored_now  # only what changed was read
                superseded += step.superseded
    assert modes.count("incremental") >= len(targets)  # every target went incremental at least once
    assert any(m == "incremental" for m in modes[-len(targets):])
    assert superseded > 20  # late feedback and later turns scored earlier rows again


def test_a_second_run_with_nothing_new_reads_nothing_and_keeps_the_masks(store):
    insert_accepted(store, [record("a1", prompt="Hero for a bakery", feedback=GOOD_FEEDBACK),
                            record("a2", prompt="Footer for a florist", feedback=GOOD_FEEDBACK)])
    first = curate_target(store, target())
    folder = first.scored_path
    before = parts.load(folder)
    second = curate_target(store, target())
    after = parts.load(folder)
    assert (second.mode, second.scored_now, second.kept) == ("unchanged", 0, 2)
    assert before[0].parts == after[0].parts == ["part-000001"]
    assert all(np.array_equal(before[1].keep[p], after[1].keep[p]) for p in before[0].parts)


def test_a_better_duplicate_later_replaces_the_earlier_example(store):
    insert_accepted(store, [record("o1", prompt="Hero for a bakery", feedback=GOOD_FEEDBACK)])
    first = curate_target(store, target())
    assert [r["example_id"] for r in kept_rows(first.scored_path)] == ["o1"]
    insert_accepted(store, [record("n1", prompt="hero for a BAKERY!", feedback=[*GOOD_FEEDBACK, ("rating", 5)])],
                    first_seq=2)
    second = curate_target(store, target())
    assert second.mode == "incremental" and second.scored_now == 1 and second.parts == 2
    assert [r["example_id"] for r in kept_rows(second.scored_path)] == ["n1"]
    assert second.dropped["duplicate_prompt"] == 1 and second.read == 2 and second.counts_add_up


def test_new_feedback_on_an_earlier_interaction_scores_it_again(store):
    insert_accepted(store, [record("u1", prompt="Pricing table", feedback=[("thumbs", -1)])])
    first = curate_target(store, target())
    assert first.kept == 0 and first.dropped["below_threshold"] == 1
    insert_accepted(store, [record("u1", prompt="Pricing table", feedback=GOOD_FEEDBACK)], first_seq=2)
    second = curate_target(store, target())
    assert (second.mode, second.scored_now, second.superseded, second.read, second.kept) == ("incremental", 1, 1, 1, 1)
    assert second.dropped.get("below_threshold", 0) == 0


def test_a_later_turn_continues_an_earlier_conversation(store):
    insert_accepted(store, [record("c1", prompt="Build my page", feedback=GOOD_FEEDBACK, conversation="k",
                                   at="2026-03-01T10:00:00Z")])
    first = curate_target(store, target())
    [row] = kept_rows(first.scored_path)
    assert "conversation_continued +1" not in json.loads(row["score_reasons"])
    insert_accepted(store, [record("c2", task="chat", prompt="thanks", conversation="k", at="2026-03-01T10:01:00Z")],
                    first_seq=2)
    second = curate_target(store, target())
    assert second.mode == "incremental" and second.superseded == 1
    [row] = kept_rows(second.scored_path)
    assert "conversation_continued +1" in json.loads(row["score_reasons"])


@pytest.mark.parametrize("change", ["scoring", "opt_out"])
def test_what_every_score_depends_on_changing_scores_everything_again(store, change):
    insert_accepted(store, [record("f1", prompt="Hero", feedback=GOOD_FEEDBACK)])
    curate_target(store, target())
    if change == "scoring":
        again = curate_target(store, target(scoring={"export_threshold": 6.0}))
    else:
        again = curate_target(store, target(exclude_tenants=("org_zzz",)))
    assert again.mode == "full" and "changed" in again.mode_reason and again.parts == 1


def test_a_damaged_state_is_rebuilt_from_the_store(store):
    insert_accepted(store, [record("d1", prompt="Hero", feedback=GOOD_FEEDBACK)])
    first = curate_target(store, target())
    (first.scored_path / parts.MANIFEST).write_text("{not json")
    again = curate_target(store, target())
    assert (again.mode, again.kept) == ("full", 1)


def test_the_fingerprint_follows_the_code():
    assert incremental.code_digest() == incremental.code_digest()
    assert set(incremental.CODE) >= {"curate.py", "scoring.py", "dedup.py", "pairs.py", "implicit.py"}


def _same_as_full(store, t, report, monkeypatch, tmp_path):
    """The incremental report's result equals a full run's over the same store (in another FLYWHEEL_HOME)."""
    incremental_result = _result(report)
    monkeypatch.setenv("FLYWHEEL_HOME", str(tmp_path / "full"))
    assert incremental_result == _result(curate_target(store, t, full_refresh=True))


def test_a_later_clock_turns_an_undecided_silence_into_abandoned(store, monkeypatch, tmp_path):
    t = target(scoring={"export_threshold": 0})
    insert_accepted(store, [
        record("q1", prompt="Pricing page", conversation="k1", at="2026-03-01T10:00:00Z"),  # no feedback
        record("q2", prompt="About page", conversation="k2", at="2026-03-01T10:05:00Z", feedback=GOOD_FEEDBACK),
    ])
    first = curate_target(store, t)
    assert not first.outcomes_inferred.get("abandoned")  # 5 minutes of silence: undecided at this clock
    insert_accepted(store, [record("q3", prompt="Team page", conversation="k3", at="2026-03-01T11:00:00Z",
                                   feedback=GOOD_FEEDBACK)], first_seq=3)
    second = curate_target(store, t)
    assert second.mode == "incremental" and second.superseded == 2  # q1 and q2: younger than the window at 10:05
    assert second.outcomes_inferred["abandoned"] == 1
    _same_as_full(store, t, second, monkeypatch, tmp_path)


def test_a_new_skipped_item_pairs_with_an_earlier_saved_one_of_the_same_user_and_query(store, monkeypatch, tmp_path):
    t = target(tasks=("signal_extraction",), method="embedding", backend="sentence_transformers",
               scoring={"export_threshold": 3})

    def item(rid, chunk, action, conversation):
        return record(rid, task="signal_extraction", prompt="pricing strategy", response=chunk, user="u1",
                      conversation=conversation, feedback=[("action", action)])

    insert_accepted(store, [item("s1", "Chunk A: raise prices yearly", "saved", "k1")])
    first = curate_target(store, t)
    assert not first.pairs.get("saved_vs_skipped")
    insert_accepted(store, [item("k9", "Chunk C: weather small talk", "skipped", "k2")], first_seq=2)
    second = curate_target(store, t)
    assert second.mode == "incremental" and second.superseded == 1  # s1 is scored again, with its new partner
    assert second.pairs["saved_vs_skipped"] == 1
    _same_as_full(store, t, second, monkeypatch, tmp_path)
