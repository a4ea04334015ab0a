"""The 0..10 score: each signal's effect, clamping, labels, light vs heavy edits, normalised ratings."""

from __future__ import annotations

import pytest

from pipeline.core.targets import ScoringConfig
from pipeline.curation.scoring import choose_completion, edit_share, score_interaction
from pipeline_tests.curation_helpers import record

DEFAULT = ScoringConfig()
BASE5 = ScoringConfig(base=5)  # room to show what lowers a score without hitting the floor
PAGE = '{"sections": [{"type": "hero"}]}'
RESPONSE = "Fresh bread every morning."
LIGHT = "Fresh bread every morning!"  # changes ~4% of the response
HEAVY = "Warm croissants, baked at dawn, delivered to you."  # changes ~60%

# (id, weights, record kwargs, conversation_continued, score, reasons, completion_source)
CASES = [
    ("no_signal", DEFAULT, {}, False, 0, [], "response"),
    ("base_only", BASE5, {}, False, 5, ["base +5"], "response"),
    ("json_valid", DEFAULT, {"response": PAGE, "response_format": "json"}, False, 3, ["json_valid +3"], "response"),
    ("json_invalid", BASE5, {"response": "{oops", "response_format": "json"}, False, 2,
     ["base +5", "json_invalid -3"], "response"),
    ("json_only_checked_for_json_format", DEFAULT, {"response": "{oops"}, False, 0, [], "response"),
    ("thumbs_up", DEFAULT, {"feedback": [("thumbs", 1)]}, False, 3, ["thumbs_up +3"], "response"),
    ("thumbs_down", BASE5, {"feedback": [("thumbs", -1)]}, False, 2, ["base +5", "thumbs_down -3"], "response"),
    ("latest_thumbs_wins", BASE5, {"feedback": [("thumbs", 1, "2026-03-01T11:00:00Z"),
                                                ("thumbs", -1, "2026-03-01T12:00:00Z")]},
     False, 2, ["base +5", "thumbs_down -3"], "response"),
    ("accepted", DEFAULT, {"feedback": [("outcome", "accepted")]}, False, 2, ["accepted +2"], "response"),
    ("accepted_with_edits_without_edit", DEFAULT, {"feedback": [("outcome", "accepted_with_edits")]}, False, 1,
     ["accepted_with_edits +1"], "response"),
    ("rejected", BASE5, {"feedback": [("outcome", "rejected")]}, False, 2, ["base +5", "rejected -3"], "response"),
    ("abandoned", BASE5, {"feedback": [("outcome", "abandoned")]}, False, 3, ["base +5", "abandoned -2"], "response"),
    ("regenerated", BASE5, {"feedback": [("outcome", "regenerated")]}, False, 3,
     ["base +5", "regenerated -2"], "response"),
    ("conversation_continued", DEFAULT, {}, True, 1, ["conversation_continued +1"], "response"),
    ("page_builder_seed_max", DEFAULT,
     {"response": PAGE, "response_format": "json", "feedback": [("thumbs", 1), ("outcome", "accepted")]}, True, 9,
     ["json_valid +3", "thumbs_up +3", "accepted +2", "conversation_continued +1"], "response"),
    ("clamped_high", DEFAULT,
     {"response": PAGE, "response_format": "json", "feedback": [("thumbs", 1), ("outcome", "accepted"), ("rating", 5)]},
     True, 10, ["json_valid +3", "thumbs_up +3", "accepted +2", "rating +2 (5 → 1.00)", "conversation_continued +1",
                "clamped to 10 (was 11)"], "response"),
    ("clamped_low", DEFAULT, {"feedback": [("thumbs", -1), ("outcome", "rejected")]}, False, 0,
     ["thumbs_down -3", "rejected -3", "clamped to 0 (was -6)"], "response"),
    ("rating_5_stars", BASE5, {"feedback": [("rating", 5)]}, False, 7, ["base +5", "rating +2 (5 → 1.00)"], "response"),
    ("rating_3_stars", BASE5, {"feedback": [("rating", 3)]}, False, 5, ["base +5", "rating +0 (3 → 0.50)"], "response"),
    ("rating_1_star", BASE5, {"feedback": [("rating", 1)]}, False, 3, ["base +5", "rating -2 (1 → 0.00)"], "response"),
    ("rating_fraction", BASE5, {"feedback": [("rating", 0.75)]}, False, 6, ["base +5", "rating +1 (0.75 → 0.75)"],
     "response"),
    ("rating_fraction_top", BASE5, {"feedback": [("rating", 1.0)]}, False, 7, ["base +5", "rating +2 (1.0 → 1.00)"],
     "response"),
    ("light_edit", DEFAULT, {"feedback": [("outcome", "accepted_with_edits"), ("edit", LIGHT)]}, False, 1,
     ["accepted_with_edits +1", "light_edit +0 (edit changed 4%)"], "edit"),
    ("heavy_edit", BASE5, {"feedback": [("outcome", "accepted_with_edits"), ("edit", HEAVY)]}, False, 5,
     ["base +5", "accepted_with_edits +1", "heavy_edit -1 (edit changed 60%)"], "edit"),
    ("edit_without_edited_outcome_keeps_response", BASE5, {"feedback": [("outcome", "accepted"), ("edit", HEAVY)]},
     False, 6, ["base +5", "accepted +2", "heavy_edit -1 (edit changed 60%)"], "response"),
    ("json_judged_on_the_edit", DEFAULT,
     {"response": "{broken", "response_format": "json", "feedback": [("outcome", "accepted_with_edits"), ("edit", PAGE)]},
     False, 3, ["json_valid +3", "accepted_with_edits +1", "heavy_edit -1 (edit changed 85%)"], "edit"),
    ("label_raises_to_floor", DEFAULT, {"feedback": [("label", "The CTA is below the fold."), ("thumbs", -1)]}, False,
     8, ["thumbs_down -3", "label_floor 8 (was -3)"], "label"),
    ("label_keeps_a_higher_score", DEFAULT,
     {"response": PAGE, "response_format": "json", "feedback": [("label", PAGE), ("thumbs", 1), ("outcome", "accepted")]},
     True, 9, ["json_valid +3", "thumbs_up +3", "accepted +2", "conversation_continued +1"], "label"),
    ("label_overrides_edit", DEFAULT,
     {"feedback": [("outcome", "accepted_with_edits"), ("edit", LIGHT), ("label", "Reviewer text")]}, False, 8,
     ["accepted_with_edits +1", "light_edit +0 (edit changed 4%)", "label_floor 8 (was 1)"], "label"),
    ("saved", DEFAULT, {"task": "signal_extraction", "feedback": [("action", "saved")]}, False, 3, ["saved +3"],
     "response"),
    ("snipped", DEFAULT, {"task": "signal_extraction", "feedback": [("action", "snipped")]}, False, 3, ["snipped +3"],
     "response"),
    ("skipped", BASE5, {"task": "signal_extraction", "feedback": [("action", "skipped")]}, False, 4,
     ["base +5", "skipped -1"], "response"),
    ("custom_weights", ScoringConfig(thumbs_up=5, accepted=0.5), {"feedback": [("thumbs", 1), ("outcome", "accepted")]},
     False, 5.5, ["thumbs_up +5", "accepted +0.5"], "response"),
]


@pytest.mark.parametrize(("weights", "kwargs", "continued", "score", "reasons", "source"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_score(weights, kwargs, continued, score, reasons, source):
    scored = score_interaction(record("i1", **kwargs), weights, conversation_continued=continued)
    assert scored.score == pytest.approx(score)
    assert scored.reasons == reasons
    assert scored.completion_source == source


def test_completion_is_label_then_edit_then_response():
    labelled = record("i1", feedback=[("label", "Ground truth"), ("outcome", "accepted_with_edits"), ("edit", LIGHT)])
    edited = record("i2", feedback=[("outcome", "accepted_with_edits"), ("edit", LIGHT)])
    blank_edit = record("i3", feedback=[("outcome", "accepted_with_edits"), ("edit", "   ")])
    assert choose_completion(labelled) == ("Ground truth", "label")
    assert choose_completion(edited) == (LIGHT, "edit")
    assert choose_completion(blank_edit) == (RESPONSE, "response")


@pytest.mark.parametrize(("share", "expected"), [(0.2, "light_edit"), (0.05, "heavy_edit")])
def test_light_edit_share_is_per_target(share, expected):
    rec = record("i1", feedback=[("outcome", "accepted_with_edits"), ("edit", "Fresh bread each morning.")])
    measured = edit_share(RESPONSE, "Fresh bread each morning.")
    assert 0.05 < measured < 0.2
    scored = score_interaction(rec, ScoringConfig(light_edit_max_share=share))
    assert scored.reasons[1].startswith(expected)
    assert scored.edit_share == pytest.approx(measured)


def test_edit_share_bounds():
    assert edit_share("same", "same") == 0.0
    assert edit_share("abc", "xyz") == 1.0
