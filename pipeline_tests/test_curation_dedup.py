"""Duplicate prompts: normalisation, exact and near duplicates, the best-scored one kept."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.core.targets import ScoringConfig
from pipeline.curation import dedup
from pipeline.curation.curate import curate_target
from pipeline_tests.curation_helpers import insert_accepted, kept_rows, record, target

GOOD = [("thumbs", 1), ("outcome", "accepted")]  # 5
BETTER = [("thumbs", 1), ("outcome", "accepted"), ("rating", 5)]  # 7
# character 5-gram Jaccard 0.87: a rewording, above the default near-duplicate threshold 0.8
REWORDED = (
    "Please create a landing page for my bakery in Austin, with a hero section and a pricing section.",
    "Create a landing page for my bakery in Austin with a hero section and a pricing section, please",
)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Build a page", "  build   A PAGE "),  # case and whitespace
        ("Build a page, please!", "Build a page please"),  # punctuation
        ("Order 12345 for 3 items", "Order 987 for 42 items"),  # digits
        ("Café menu", "Cafe\u0301 menu"),  # Unicode normal forms
        ("snake_case name", "snake case name"),
    ],
)
def test_normalisation_equates(a, b):
    assert dedup.normalize_text(a) == dedup.normalize_text(b)


def test_normalisation_keeps_words_apart():
    assert dedup.normalize_text("Build a bakery page") != dedup.normalize_text("Build a bakery site")


def _shingles(text: str) -> set[str]:
    """The windows ending in each character of the text, the first ones NUL-padded (as `signatures` reads it)."""
    padded = "\0" * (dedup.SHINGLE_CHARS - 1) + text
    return {padded[i : i + dedup.SHINGLE_CHARS] for i in range(len(text))}


def test_signature_similarity_tracks_jaccard():
    texts = [
        "please create a landing page for my bakery in austin with a hero and pricing section",
        "create a landing page for my bakery in austin with a hero and a pricing section please",
        "a contact form with name email and message fields for a dental clinic",
        "hi",
    ]
    sigs = dedup.signatures(texts)
    assert sigs.shape == (4, dedup.SIGNATURE_SIZE) and sigs.dtype == np.uint32
    for i in range(4):
        for j in range(4):
            a, b = _shingles(texts[i]), _shingles(texts[j])
            true = len(a & b) / len(a | b)
            assert abs(dedup.similarity(sigs[i], sigs[j]) - true) < 0.15, (i, j)
    # a signature does not depend on the rest of the batch; empty texts are all alike
    assert (dedup.signatures(texts[1:2]) == sigs[1:2]).all()
    assert (dedup.signatures(["", texts[0], ""])[[0, 2]] == 0).all()


def _sig(said: np.ndarray, context: np.ndarray | None = None) -> np.ndarray:
    return np.concatenate([said, np.zeros(64, np.uint32) if context is None else context]).astype(np.uint16)


def test_collapse_keeps_first_in_order_and_never_chains():
    base = np.arange(64, dtype=np.uint32)
    near_a = base.copy()
    near_a[::8] += 1000  # 8 of 64 values differ: similarity 0.875 to base
    far = near_a.copy()
    far[4::8] += 1000  # 8 more differ: 0.875 to near_a, 0.75 to base
    sigs = np.stack([_sig(base), _sig(near_a), _sig(far)])
    keys = [b"a", b"b", b"c"]
    ns = np.zeros(3, dtype=np.uint64)
    out = dedup.collapse(keys, sigs, ns, [0, 1, 2], threshold=0.8)
    assert out.keep.tolist() == [True, False, True]  # 'far' is not dropped through the chain a~b~c
    assert out.duplicate_of.tolist() == [-1, 0, -1]
    assert (out.exact, out.near) == (0, 1)
    # best first decides the survivor
    out = dedup.collapse(keys, sigs, ns, [1, 0, 2], threshold=0.8)
    assert out.keep.tolist() == [False, True, False]
    # an exact copy of a near duplicate counts as exact and points at the kept example
    out = dedup.collapse([*keys, b"b"], np.stack([*sigs, sigs[1]]), np.zeros(4, np.uint64), [0, 1, 2, 3], 0.8)
    assert out.keep.tolist() == [True, False, True, False]
    assert out.duplicate_of.tolist() == [-1, 0, -1, 0] and (out.exact, out.near) == (1, 1)
    # exact-only mode ignores signatures
    out = dedup.collapse([b"k", b"k", b"c"], sigs, ns, [0, 1, 2], threshold=1.0)
    assert out.keep.tolist() == [True, False, True] and (out.exact, out.near) == (1, 0)
    # another task (namespace) is never a near duplicate
    out = dedup.collapse(keys, sigs, np.array([1, 2, 3], dtype=np.uint64), [0, 1, 2], threshold=0.8)
    assert out.keep.all()


def test_near_duplicates_need_both_parts_similar():
    said = np.arange(64, dtype=np.uint32)
    page_a = np.arange(100, 164, dtype=np.uint32)
    page_b = page_a.copy()
    page_b[::2] += 1000  # another page: context similarity 0.5
    sigs = np.stack([_sig(said, page_a), _sig(said, page_b), _sig(said, page_a)])
    out = dedup.collapse([b"a", b"b", b"c"], sigs, np.zeros(3, np.uint64), [0, 1, 2], threshold=0.8)
    assert out.keep.tolist() == [True, True, False]  # same words about another page stay


def test_prompts_alike_in_one_half_of_their_context_stay():
    rng = np.random.default_rng(0)
    said = rng.integers(0, 2**16, 64, dtype=np.uint32)
    contexts = rng.integers(0, 2**16, (200, 64), dtype=np.uint32)
    contexts[:, :32] = contexts[0, :32]  # every context half alike: all 200 share buckets
    sigs = np.stack([_sig(said, c) for c in contexts])
    out = dedup.collapse([bytes([i % 256, i // 256]) for i in range(200)], sigs, np.zeros(200, np.uint64),
                         list(range(200)), threshold=0.8)
    assert out.keep.all()


def _run(store, records, **over):
    insert_accepted(store, records)
    report = curate_target(store, target(**over), batch_size=2)  # several batches: dedup spans them
    return report, {r["example_id"]: r for r in kept_rows(report.scored_path)}


def test_exact_duplicates_keep_the_best_scored(store):
    report, kept = _run(store, [
        record("e1", prompt="Build a landing page for a bakery", feedback=GOOD),
        record("e2", prompt="build a LANDING page, for a bakery!!", feedback=BETTER),
        record("e3", prompt="  Build a landing   page for a bakery ", feedback=GOOD),
        record("e4", prompt="Build a landing page for a florist", feedback=GOOD),
    ])
    assert set(kept) == {"e2", "e4"}
    assert report.dropped["duplicate_prompt"] == 2 and report.duplicates == {"exact": 2, "near": 0}


def test_near_duplicates_collapse_and_distinct_prompts_stay(store):
    report, kept = _run(store, [
        record("n1", prompt=REWORDED[0], feedback=GOOD),
        record("n2", prompt=REWORDED[1], feedback=BETTER),
        record("n3", prompt="A contact form with name, email and message fields for a dental clinic", feedback=GOOD),
    ])
    assert set(kept) == {"n2", "n3"}
    assert report.duplicates == {"exact": 0, "near": 1}


def test_near_duplicate_threshold_is_per_target(store):
    report, kept = _run(store, [
        record("n1", prompt=REWORDED[0], feedback=GOOD),
        record("n2", prompt=REWORDED[1], feedback=BETTER),
    ], scoring=ScoringConfig(near_duplicate_threshold=1.0))
    assert set(kept) == {"n1", "n2"} and report.duplicates == {"exact": 0, "near": 0}


def test_dedup_spans_tenants_within_a_target_but_not_tasks(store):
    _, kept = _run(store, [
        record("t1", org="org_a", prompt="Write a hero section", feedback=GOOD),
        record("t2", org="org_b", prompt="Write a hero section", feedback=BETTER),
        record("t3", org="org_b", task="section_edit", prompt="Write a hero section", feedback=GOOD),
    ], tasks=("page_generation", "section_edit"))
    assert set(kept) == {"t2", "t3"}


def test_ties_prefer_label_then_edit_then_newest(store):
    floor5 = ScoringConfig(label_floor=5, export_threshold=5)
    _, kept = _run(store, [
        record("l1", prompt="Review this page", feedback=[("label", "Ground truth")]),  # 0 → floor 5
        record("l2", prompt="Review this page", feedback=GOOD, at="2026-03-02T10:00:00Z"),  # 5, newer
        record("l3", prompt="Audit the page", feedback=GOOD, at="2026-03-01T10:00:00Z"),
        record("l4", prompt="Audit the page", feedback=GOOD, at="2026-03-01T10:00:00.5Z"),  # newer by 0.5 s
    ], scoring=floor5)
    assert set(kept) == {"l1", "l4"}
    assert kept["l1"]["completion_source"] == "label"


def test_embedding_targets_dedup_query_and_item_together(store):
    saved = [("action", "saved")]
    _, kept = _run(store, [
        record("s1", task="signal_extraction", prompt="pricing strategy", response="Chunk about pricing", feedback=saved),
        record("s2", task="signal_extraction", prompt="pricing strategy", response="Chunk about hiring", feedback=saved),
        record("s3", task="signal_extraction", prompt="Pricing strategy!", response="chunk about pricing", feedback=saved,
               user="u2"),
    ], tasks=("signal_extraction",), method="embedding", backend="sentence_transformers",
        scoring=ScoringConfig(export_threshold=3))
    assert set(kept) == {"s1", "s2"}  # one query, two different items; s3 repeats s1


def test_band_keys_in_slices_are_the_keys_of_the_whole(monkeypatch):
    texts = [f"user: make a landing page for my bakery number {i % 7} in town {i % 3}" for i in range(50)]
    sigs = dedup.prompt_signatures(texts, [""] * len(texts))
    spaces = np.full(len(texts), dedup.namespace("page_generation"), dtype=np.uint64)
    every = np.arange(len(texts))
    rows, keys, bounds = dedup._shared_band_keys(sigs, spaces, every)
    monkeypatch.setattr(dedup, "BAND_KEY_ROWS", 7)
    again = dedup._shared_band_keys(sigs, spaces, every)
    assert [a.tolist() for a in again] == [rows.tolist(), keys.tolist(), bounds.tolist()] and len(rows) > 1
    assert len(bounds) == len(rows) + 1 and (np.diff(bounds) > 0).all() and bounds[-1] == len(keys)
    # of a subset, in its order: the keys of those rows' signatures alone
    some = np.array([9, 3, 40, 21, 0, 33, 14])
    sub = dedup._shared_band_keys(sigs, spaces, some)
    alone = dedup._shared_band_keys(sigs[some], spaces[some], np.arange(len(some)))
    assert [a.tolist() for a in sub] == [a.tolist() for a in alone]


def test_exact_firsts_are_the_first_of_each_key_in_walking_order():
    rng = np.random.default_rng(5)
    for n in (1, 2, 50, 400):
        keys = rng.integers(0, max(2, n // 3), n)
        order = rng.permutation(n)
        duplicate_of = np.full(n, -1, dtype=np.int64)
        reps = dedup._exact_firsts(keys, order, duplicate_of)
        first: dict[int, int] = {}
        expected = np.full(n, -1, dtype=np.int64)
        for i in order.tolist():
            twin = first.setdefault(int(keys[i]), i)
            if twin != i:
                expected[i] = twin
        assert reps.tolist() == list(first.values()) and duplicate_of.tolist() == expected.tolist()
    with pytest.raises(ValueError, match="order has 2 positions for 3"):
        dedup._exact_firsts(np.zeros(3), [0, 1], np.full(3, -1))
