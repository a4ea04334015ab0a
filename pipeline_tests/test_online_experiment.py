"""Online experiments: the contract's rollout field, savvi's tests, the step decision, attribution, history."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from pipeline.core.contract import ContractError, validate_interaction
from pipeline.core.targets import OnlineConfig, get_target
from pipeline.experiments.decide import decide, next_step
from pipeline.experiments.exposure import tally_records, variant_of
from pipeline.experiments.statistics import Effect, RatioTest, effect, regression, sample_ratio

BASE = {"id": "i1", "occurred_at": "2026-01-05T10:00:00Z", "org_id": "o", "user_id": "u1", "task": "page_generation",
        "messages": [{"role": "user", "content": "hi"}], "response": "{}"}


# ------------------------------------------------------------------ the contract's rollout field
@pytest.mark.parametrize("rollout, problem", [
    ({"id": "ro_1", "variant": "challenger"}, None),
    ({"id": "ro_1", "variant": "champion"}, None),
    ("ro_1", "must be an object"),
    ({"variant": "challenger"}, "rollout.id"),
    ({"id": " ", "variant": "challenger"}, "rollout.id"),
    ({"id": "ro_1", "variant": "treatment"}, "rollout.variant"),
    ({"id": "ro_1", "variant": "champion", "arm": 2}, "unknown field"),
])
def test_the_rollout_field_is_validated(rollout, problem):
    record = {**BASE, "rollout": rollout}
    if problem is None:
        assert validate_interaction(record)["rollout"] == rollout
        return
    with pytest.raises(ContractError) as err:
        validate_interaction(record)
    assert err.value.rejection.reason == "bad_rollout" and problem in str(err.value)


def test_no_rollout_field_is_fine():
    assert "rollout" not in validate_interaction(BASE)


# ------------------------------------------------------------------ savvi's tests
def test_batch_sufficient_statistics_equal_savvis_own_recursive_updates():
    from savvi.linear_regression import LinearRegression

    rng = np.random.default_rng(3)
    arm = rng.integers(0, 2, 400)
    y = rng.binomial(4, 0.3 + 0.05 * arm) / 4
    online = LinearRegression(0.05, 2)
    for yi, ai in zip(y, arm, strict=True):
        online.update(np.array([yi, 1.0, ai]))
    batch = regression(y, arm, 0.05, 1.0)
    np.testing.assert_allclose(batch.calculate_conf_int(), online.calculate_conf_int(), rtol=1e-6)
    np.testing.assert_allclose(batch.calculate_p_value(), online.calculate_p_value(), rtol=1e-6)


def test_effect_sees_a_real_difference_and_not_a_null_one():
    rng = np.random.default_rng(0)
    arm = rng.integers(0, 2, 4000).astype(bool)
    better = effect("m", rng.binomial(5, np.where(arm, 0.40, 0.30)) / 5, arm, 0.05)
    assert better.low > 0 and better.p_value < 0.05 and 0.07 < better.difference < 0.13
    null = effect("m", rng.binomial(5, 0.3, 4000) / 5, arm, 0.05)
    assert null.low < 0 < null.high and null.p_value > 0.05
    tiny = effect("m", np.array([1.0, 0.0]), np.array([True, False]), 0.05)
    assert tiny.low == -np.inf and tiny.high == np.inf and tiny.p_value == 1.0


def test_sample_ratio_flags_a_broken_split_only():
    assert sample_ratio(600, 400, 0.5, 0.001).p_value < 1e-5
    assert sample_ratio(5_030, 4_970, 0.5, 0.001).p_value > 0.5
    assert sample_ratio(905, 95, 0.1, 0.001).p_value > 0.01
    with pytest.raises(ValueError):
        sample_ratio(1, 1, 1.0, 0.001)


# ------------------------------------------------------------------ the decision, as a table
def E(low: float, high: float, metric: str = "accepted_rate") -> Effect:  # noqa: N802
    return Effect(metric, 0.3, 0.3 + (low + high) / 2, (low + high) / 2, low, high, 0.5, 500, 500, 0.05)


SRM_OK = RatioTest(500, 500, 0.5, 0.9)
CFG = OnlineConfig()


@pytest.mark.parametrize("share, srm, primary, guard, days, verdict, next_share", [
    (0.5, RatioTest(600, 400, 0.5, 1e-6), E(0.01, 0.2), [], 5, "stop", 0.0),          # broken split first
    (0.1, SRM_OK, E(-0.2, -0.01), [], 0.5, "rollback", 0.0),                           # harm before the minimum
    (0.1, SRM_OK, E(-0.1, 0.1), [E(0.001, 0.05, "abandon_rate")], 5, "rollback", 0.0),  # a guardrail is worse
    (0.1, SRM_OK, E(-0.1, 0.1), [E(-0.05, 0.05, "abandon_rate")], 1, "continue", 0.1),  # too young
    (0.1, SRM_OK, E(-0.1, 0.1), [E(-0.05, -0.01, "abandon_rate")], 5, "advance", 0.5),  # no harm: next step
    (0.5, SRM_OK, E(-0.1, 0.1), [], 5, "continue", 0.5),                                # not shown better
    (0.5, SRM_OK, E(0.01, 0.1), [], 5, "promote", 1.0),                                 # better at the last step
])
def test_decision_table(share, srm, primary, guard, days, verdict, next_share):
    got = decide(share=share, steps=(0.1, 0.5, 1.0), srm=srm, primary=primary, guardrails=guard,
                 days_in_step=days, online=CFG)
    assert (got.verdict, got.next_share) == (verdict, next_share), got.reason
    assert got.reason


def test_too_few_users_continues():
    srm = RatioTest(900, 100, 0.1, 0.5)
    got = decide(share=0.1, steps=(0.1, 0.5, 1.0), srm=srm, primary=E(-0.1, 0.1), guardrails=[], days_in_step=9,
                 online=CFG)
    assert got.verdict == "continue" and "100 of 200 users" in got.reason


def test_next_step_follows_the_configured_steps():
    assert next_step(0.1, (0.1, 0.5, 1.0)) == 0.5
    assert next_step(0.3, (0.1, 0.5, 1.0)) == 0.5  # a manual share between steps goes on to the next one
    assert next_step(0.5, (0.1, 0.5, 1.0)) == 1.0


def test_online_config_refuses_a_harm_as_primary():
    with pytest.raises(ValueError, match="lower is better"):
        OnlineConfig(primary="abandon_rate", guardrails=())
    with pytest.raises(ValueError, match="success rates"):
        OnlineConfig(guardrails=("save_rate",))


# ------------------------------------------------------------------ which variant served
ROLLOUT = SimpleNamespace(rollout_id="ro_now", updated_at="2026-01-05T00:00:00Z",
                          champion=SimpleNamespace(model="base"), challenger=SimpleNamespace(model="tuned"))


@pytest.mark.parametrize("extra, expected", [
    ({"rollout": {"id": "ro_now", "variant": "challenger"}, "model": "anything"}, ("challenger", None)),
    ({"rollout": {"id": "ro_old", "variant": "challenger"}}, (None, "other_rollout")),
    ({"model": "tuned"}, ("challenger", None)),
    ({"model": "base"}, ("champion", None)),
    ({"model": "gpt-x"}, (None, "unknown_model")),
    ({"model": "tuned", "occurred_at": "2026-01-04T23:00:00Z"}, (None, "before_step")),
])
def test_variant_of(extra, expected):
    from pipeline.experiments.exposure import parse_time

    record = {**BASE, **extra}
    assert variant_of(record, ROLLOUT, parse_time(ROLLOUT.updated_at)) == expected


def _record(i: str, user: str | None, when: str, variant: str, feedback=()):
    rec = {**BASE, "id": i, "user_id": user, "occurred_at": when, "conversation_id": f"c-{i}",
           "rollout": {"id": "ro_now", "variant": variant}}
    rec["feedback"] = [{"interaction_id": i, "kind": k, "value": v, "occurred_at": when} for k, v in feedback]
    return rec


def test_every_interaction_is_tallied_or_set_aside_with_a_reason():
    from pipeline.curation.implicit import ImplicitWindows

    records = [
        _record("a", "u1", "2026-01-05T10:00:00Z", "champion", [("outcome", "accepted")]),
        _record("b", "u2", "2026-01-05T10:00:00Z", "challenger", [("outcome", "rejected")]),
        _record("c", None, "2026-01-05T10:00:00Z", "challenger"),                  # no user: cannot randomise
        _record("d", "u3", "2026-01-05T23:50:00Z", "challenger"),                  # younger than the window
        {**_record("e", "u4", "2026-01-05T10:00:00Z", "challenger"), "rollout": {"id": "ro_x", "variant": "champion"}},
        _record("f", "u1", "2026-01-05T11:00:00Z", "challenger", [("outcome", "accepted")]),  # u1 in both
        _record("g", "u5", "2026-01-05T10:00:00Z", "champion"),                    # abandoned (inferred)
    ]
    tally, counts = tally_records(records, ROLLOUT, ImplicitWindows(), "2026-01-05T23:59:00Z")
    assert counts.add_up and counts.read == 7 and counts.tallied == 4
    assert dict(counts.set_aside) == {"no_user": 1, "not_settled": 1, "other_rollout": 1}
    assert tally.crossed == {"u1"} and tally.users_per_variant() == {"champion": 1, "challenger": 1}
    y, arm = tally.per_user("abandon_rate")
    assert sorted(zip(arm.tolist(), y.tolist(), strict=True)) == [(False, 1.0), (True, 0.0)]
    assert counts.outcomes["inferred"] == 1


# ------------------------------------------------------------------ decisions in the history
def _serving(store, share=0.1, model="tuned"):
    from pipeline.evaluation.decision import Decision
    from pipeline.serving import production
    from pipeline.serving.rollout import ModelRef

    target = get_target("page_builder")
    cand = ModelRef(model, "huggingface", f"job-{model}", "v1")
    return target, production.record_decision(store, target, Decision("promote_challenger", "gates passed", share),
                                              candidate=cand, by="test")


def test_advance_promote_and_stop_change_the_rollout_file(store):
    from pipeline.serving import production
    from pipeline.serving.routing import load_rollout

    target, r = _serving(store)
    advanced = production.experiment_step(store, target, "advance", expect_rollout_id=r.rollout_id, share=0.5,
                                          by="online_experiment", reason="no harm")
    assert advanced.challenger_share == 0.5 and load_rollout(target.name).challenger_share == 0.5
    promoted = production.experiment_step(store, target, "promote_champion", expect_rollout_id=advanced.rollout_id,
                                          share=1.0, by="online_experiment", reason="better")
    assert promoted.champion.model == "tuned" and promoted.challenger is None
    target, r = _serving(store, model="tuned-2")
    stopped = production.experiment_step(store, target, "stop", expect_rollout_id=r.rollout_id, share=0.0,
                                         by="online_experiment", reason="srm")
    assert stopped.challenger is None and load_rollout(target.name).challenger is None
    actions = [h["action"] for h in production.history(store, target)]
    assert actions[:4] == ["stop", "promote_challenger", "promote_champion", "advance"]


def test_a_manual_change_since_the_look_wins(store):
    from pipeline.serving import production

    target, r = _serving(store)
    production.rollback(store, target, by="alice", reason="looks wrong to me")
    rows = len(production.history(store, target))
    assert production.experiment_step(store, target, "advance", expect_rollout_id=r.rollout_id, share=0.5,
                                      by="online_experiment", reason="no harm") is None
    assert len(production.history(store, target)) == rows
    assert production.current(store, target).challenger is None


def test_experiment_decisions_page_on_call():
    from pipeline.alerts.watch import _history_alert

    row = {"id": 7, "action": "advance", "target": "page_builder", "model": "tuned", "challenger_share": 0.5,
           "champion": {"model": "base"}, "by": "online_experiment", "at": "now", "reason": "no harm",
           "evaluation": {"online_experiment": {}}}
    alert = _history_alert(row, "http://ui")
    assert alert.kind == "advanced" and "50%" in alert.title and "online_experiment" in alert.link
    alert = _history_alert({**row, "action": "stop", "reason": "sample ratio mismatch"}, "http://ui")
    assert alert.kind == "experiment_stopped" and "sample ratio mismatch" in alert.what_happened
    json.dumps(alert.__dict__, default=str)


def test_a_bad_rollout_is_quarantined_with_its_reason_and_the_rest_ingested(store):
    from pipeline.ingest.importer import import_lines
    from pipeline.ingest.ingestion import ingest_increment

    good = {**BASE, "type": "interaction", "id": "ok", "rollout": {"id": "ro_1", "variant": "challenger"}}
    bad = {**BASE, "type": "interaction", "id": "bad", "rollout": {"id": "ro_1", "variant": "B"}}
    import_lines(store, [json.dumps(good).encode(), json.dumps(bad).encode()])
    report = ingest_increment(store, 0)
    assert store.quarantine_counts().get("bad_rollout") == 1
    [record] = [r for batch in store.iter_accepted(["page_generation"]) for r in batch]
    assert record["id"] == "ok" and record["rollout"] == {"id": "ro_1", "variant": "challenger"}
    assert report.records_in["interaction"] == 2
