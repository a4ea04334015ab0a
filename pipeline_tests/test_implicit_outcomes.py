"""Outcomes inferred from the log (abandoned, regenerated), kept apart from explicit feedback."""

from __future__ import annotations

import json

import pytest

from pipeline.core.contract import latest_feedback
from pipeline.core.targets import ScoringConfig
from pipeline.curation.curate import curate_target, store_clock, store_inferred
from pipeline.curation.implicit import (
    ImplicitWindows,
    Inferred,
    effective_outcome,
    infer_conversation,
    infer_outcomes,
)
from pipeline.curation.scoring import score_interaction
from pipeline_tests.curation_helpers import insert_accepted, kept_rows, pair_rows, record, target

PROMPT = "Build a landing page for a bakery"
SAME = "build a landing page, for a BAKERY!"  # normalises to PROMPT
OTHER = "Pricing table for a gym with three plans"
ACCEPTED = [("outcome", "accepted")]
DEFAULT = ImplicitWindows()


def turn(id: str, at: str, prompt: str = PROMPT, conv: str | None = "c1", org: str = "org_a", fb=(),
         response: str = "Fresh bread every morning.") -> dict:
    return record(id, org=org, conversation=conv, prompt=prompt, at=f"2026-03-01T{at}Z", feedback=fb,
                  response=response)


# name, turns, as_of (time of day), windows, expected inferred outcomes
TABLE = [
    ("abandoned once the window has passed", [turn("a", "10:00:00")], "10:15:00", DEFAULT, {"a": "abandoned"}),
    ("a later turn within the window is no abandonment",
     [turn("a", "10:00:00"), turn("b", "10:10:00", OTHER, fb=ACCEPTED)], "12:00:00", DEFAULT, {}),
    ("a later turn after the window does not save it",
     [turn("a", "10:00:00"), turn("b", "10:20:00", OTHER, fb=ACCEPTED)], "12:00:00", DEFAULT, {"a": "abandoned"}),
    ("younger than the window: undecided", [turn("a", "10:00:00")], "10:14:59", DEFAULT, {}),
    ("an explicit outcome wins over abandoned", [turn("a", "10:00:00", fb=[("outcome", "rejected")])],
     "12:00:00", DEFAULT, {}),
    ("an explicit outcome wins over regenerated",
     [turn("a", "10:00:00", fb=ACCEPTED), turn("b", "10:00:42", SAME, fb=ACCEPTED)], "12:00:00", DEFAULT, {}),
    ("action feedback blocks abandonment", [turn("a", "10:00:00", fb=[("action", "saved")])], "12:00:00", DEFAULT, {}),
    ("a thumbs up is a verdict too", [turn("a", "10:00:00", fb=[("thumbs", 1)])], "12:00:00", DEFAULT, {}),
    ("regenerated: the next turn asks the same within the window",
     [turn("a", "10:00:00"), turn("b", "10:00:42", SAME, fb=ACCEPTED)], "12:00:00", DEFAULT, {"a": "regenerated"}),
    ("regenerated even with a thumbs down",
     [turn("a", "10:00:00", fb=[("thumbs", -1)]), turn("b", "10:05:00", fb=ACCEPTED)], "12:00:00", DEFAULT,
     {"a": "regenerated"}),
    ("not regenerated when the next prompt differs",
     [turn("a", "10:00:00"), turn("b", "10:00:42", OTHER, fb=ACCEPTED)], "12:00:00", DEFAULT, {}),
    ("not regenerated after the window (abandoned instead)",
     [turn("a", "10:00:00"), turn("b", "10:16:00", SAME, fb=ACCEPTED)], "12:00:00", DEFAULT, {"a": "abandoned"}),
    ("only the next turn counts, not a later one",
     [turn("a", "10:00:00"), turn("b", "10:01:00", OTHER, fb=ACCEPTED), turn("c", "10:02:00", SAME, fb=ACCEPTED)],
     "12:00:00", DEFAULT, {}),
    ("regenerated takes precedence over abandoned",
     [turn("a", "10:00:00"), turn("b", "10:05:00", SAME, fb=ACCEPTED)], "12:00:00",
     ImplicitWindows(abandon_after_s=60), {"a": "regenerated"}),
    ("the similarity threshold decides",
     [turn("a", "10:00:00"), turn("b", "10:00:42", PROMPT + " and a cafe", fb=ACCEPTED)], "12:00:00",
     ImplicitWindows(regenerate_similarity=0.99), {}),
    ("no conversation_id: nothing", [turn("a", "10:00:00", conv=None)], "12:00:00", DEFAULT, {}),
    ("different conversations do not mix",
     [turn("a", "10:00:00"), turn("b", "10:00:42", SAME, conv="c2", fb=ACCEPTED)], "12:00:00", DEFAULT,
     {"a": "abandoned"}),
    ("different orgs do not mix",
     [turn("a", "10:00:00"), turn("b", "10:00:42", SAME, org="org_b", fb=ACCEPTED)], "12:00:00", DEFAULT,
     {"a": "abandoned"}),
    ("unordered input",
     [turn("c", "10:20:00", OTHER, fb=ACCEPTED), turn("b", "10:00:42", SAME, fb=ACCEPTED), turn("a", "10:00:00")],
     "12:00:00", DEFAULT, {"a": "regenerated"}),
    ("a fractional timestamp orders before the next second",
     [turn("b", "10:00:01", SAME, fb=ACCEPTED), turn("a", "10:00:00.500000")], "12:00:00", DEFAULT,
     {"a": "regenerated"}),
]


@pytest.mark.parametrize(("turns", "as_of", "windows", "expected"), [row[1:] for row in TABLE],
                         ids=[row[0] for row in TABLE])
def test_inferred_outcomes(turns, as_of, windows, expected):
    inferred = infer_outcomes(turns, windows, f"2026-03-01T{as_of}Z")
    assert {rid: inf.outcome for rid, inf in inferred.items()} == expected


def test_reasons_say_why():
    turns = [turn("a", "10:00:00"), turn("b", "10:00:42", SAME, fb=ACCEPTED), turn("c", "11:00:00", OTHER)]
    inferred = infer_conversation(turns, DEFAULT, "2026-03-01T12:00:00Z")
    assert inferred == {
        "a": Inferred("regenerated", "next turn 42 s later asks the same (similarity 1.00)"),
        "c": Inferred("abandoned", "no outcome and no later turn within 15 min"),
    }
    late = infer_conversation([turn("a", "10:00:00", OTHER), turn("b", "10:20:00", fb=ACCEPTED)], DEFAULT,
                              "2026-03-01T12:00:00Z")
    assert late["a"].reason == "no outcome and the next turn 20 min later, past the 15 min window"


def test_windows_come_from_the_scoring_config():
    scoring = ScoringConfig(abandon_after_minutes=30, regenerate_within_minutes=2, regenerate_similarity=0.8)
    assert ImplicitWindows.from_scoring(scoring) == ImplicitWindows(1800.0, 120.0, 0.8)
    assert ImplicitWindows.from_scoring(ScoringConfig()) == DEFAULT
    with pytest.raises(ValueError):
        ScoringConfig(regenerate_similarity=1.5)
    with pytest.raises(ValueError):
        ScoringConfig(abandon_after_minutes=0)


def test_effective_outcome_explicit_wins():
    abandoned = Inferred("abandoned", "why")
    assert effective_outcome({"outcome": "accepted"}, abandoned) == ("accepted", "explicit")
    assert effective_outcome({"thumbs": 1}, abandoned) == ("abandoned", "inferred")
    assert effective_outcome({}, None) == (None, None)


def test_scoring_weighs_an_inferred_outcome_only_without_an_explicit_one():
    weights = ScoringConfig()
    plain = record("a", feedback=[("thumbs", 1)])
    scored = score_interaction(plain, weights, inferred=Inferred("regenerated", "why"))
    assert scored.reasons == ["thumbs_up +3", "regenerated (inferred) -2"] and scored.score == 1
    quiet = record("q", response_format="json", response="{}")
    scored = score_interaction(quiet, weights, inferred=Inferred("abandoned", "why"))
    assert scored.reasons == ["json_valid +3", "abandoned (inferred) -2"] and scored.score == 1
    explicit = record("e", response_format="json", response="{}", feedback=[("outcome", "abandoned")])
    scored = score_interaction(explicit, weights, inferred=Inferred("regenerated", "why"))
    assert scored.reasons == ["json_valid +3", "abandoned -2"] and scored.score == 1
    assert score_interaction(quiet, weights).reasons == ["json_valid +3"]


def _log() -> list[dict]:
    return [
        # c1: asked twice within a minute; the second answer was accepted
        turn("r1", "10:00:00", fb=[("thumbs", -1)], response="Bread."),
        turn("r2", "10:00:42", SAME, fb=[("thumbs", 1), ("outcome", "accepted")]),
        # c2: answered, then silence
        turn("s1", "10:00:00", OTHER, conv="c2"),
        # c3: too young to judge at the log's clock
        turn("y1", "11:50:00", "Footer for a florist", conv="c3"),
        # no conversation: the newest record sets the log's clock
        turn("n1", "12:00:00", "Contact form", conv=None, fb=ACCEPTED),
        # another tenant, excluded by the target
        turn("x1", "10:00:00", "Gallery", org="org_x", conv="c9"),
    ]


def test_store_pass_and_curation_count_and_pair_inferred_outcomes(store):
    insert_accepted(store, _log())
    assert store_clock(store) == "2026-03-01T12:00:00Z"
    t = target(exclude_tenants=("org_x",), scoring={"export_threshold": 0})
    assert {k: v.outcome for k, v in store_inferred(store, t, "2026-03-01T12:00:00Z").items()} == {
        "r1": "regenerated", "s1": "abandoned"}

    report = curate_target(store, t)
    assert report.implicit_as_of == "2026-03-01T12:00:00Z"
    assert report.outcomes_explicit == 2
    assert dict(report.outcomes_inferred) == {"regenerated": 1, "abandoned": 1}
    assert report.as_dict()["outcomes"] == {"explicit": 2, "inferred_abandoned": 1, "inferred_regenerated": 1}
    rows = {r["example_id"]: r for r in kept_rows(report.scored_path)}
    assert json.loads(rows["s1"]["score_reasons"]) == ["abandoned (inferred) -2", "clamped to 0 (was -2)"]
    # the inferred regeneration followed by an accepted turn makes the DPO pair an explicit one would
    [pair] = [p for p in pair_rows(report.scored_path) if p["source"] == "regenerated"]
    assert (pair["chosen"], pair["rejected"]) == ("Fresh bread every morning.", "Bread.")
    assert report.pairs["regenerated"] == 1


def test_infer_implicit_false_infers_nothing(store):
    insert_accepted(store, _log())
    t = target(exclude_tenants=("org_x",), scoring={"export_threshold": 0, "infer_implicit": False})
    assert store_inferred(store, t, "2026-03-01T12:00:00Z") == {}
    report = curate_target(store, t)
    assert report.implicit_as_of is None and not report.outcomes_inferred
    assert report.outcomes_explicit == 2 and report.pairs["regenerated"] == 0


def test_embedding_targets_infer_nothing(store):
    insert_accepted(store, _log())
    t = target(method="embedding", backend="sentence_transformers")
    assert store_inferred(store, t, "2026-03-01T12:00:00Z") == {}


def test_latest_feedback_is_what_effective_outcome_reads():
    rec = record("a", feedback=[("outcome", "regenerated"), ("outcome", "accepted", "2026-03-01T12:00:00Z")])
    assert effective_outcome(latest_feedback(rec["feedback"]), Inferred("abandoned", "x")) == ("accepted", "explicit")


def test_the_log_clock_is_the_newest_occurred_at_fraction_included(store):
    assert store_clock(store) is None
    insert_accepted(store, [turn("a", "12:00:00.250000", conv=None), turn("b", "12:00:00", conv=None),
                            turn("c", "11:59:59.999999", conv=None)])
    assert store_clock(store) == "2026-03-01T12:00:00.250000Z"
