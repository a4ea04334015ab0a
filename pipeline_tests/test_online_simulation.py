"""The simulated product: the real experiment logic decides right as often as its statistics promise.

Seeds are fixed, so each test is deterministic; the thresholds are what the design claims
(bench/online_experiment.py reports the same rates over more seeds and effect sizes).
"""

from __future__ import annotations

import json

import dagster as dg
import pytest

from pipeline.experiments.simulate import simulate

SEEDS = range(20)


def test_store_and_memory_modes_decide_alike():
    store = simulate("page_builder", 0.3, 4, days=14, mode="store")
    memory = simulate("page_builder", 0.3, 4, days=14, mode="memory")
    assert store["decision"] == memory["decision"] == "promote"
    assert [(h["day"], h["verdict"], h["users"], h["primary"]) for h in store["history"]] == \
           [(h["day"], h["verdict"], h["users"], h["primary"]) for h in memory["history"]]


@pytest.mark.parametrize("lift, misroute, days, expected, at_least", [
    (0.0, 0.0, 21, "promote", None),   # no effect: promoting is the false positive
    (0.3, 0.0, 28, "promote", 18),
    (-0.3, 0.0, 28, "rollback", 18),
    (0.0, 0.2, 28, "stop", 18),        # 20% of challenger users served by the champion: 60/40 at 50/50
])
def test_decisions_over_many_seeds(lift, misroute, days, expected, at_least):
    decisions = [simulate("page_builder", lift, seed, days=days, misroute=misroute)["decision"] for seed in SEEDS]
    hits = decisions.count(expected)
    if at_least is None:
        assert hits <= 1, f"{hits} of {len(SEEDS)} null simulations promoted (alpha 0.05): {decisions}"
        assert "stop" not in decisions
    else:
        assert hits >= at_least, f"{expected}: {hits} of {len(SEEDS)}: {decisions}"


def test_the_asset_rolls_back_a_harmful_challenger_and_says_why(store_url, _isolated_home):
    simulate("page_builder", -0.6, 1, days=6, mode="store", looks=False, home=_isolated_home, store_url=store_url)
    with dg.instance_for_test() as instance:
        _asset_rolls_back(instance, store_url)


def _asset_rolls_back(instance, store_url):
    from datetime import UTC, datetime

    from pipeline.core.resources import StoreResource
    from pipeline.core.store import Store
    from pipeline.defs.online_experiment import online_experiment, online_experiment_daily
    from pipeline.defs.partitions import TARGET_PARTITIONS
    from pipeline.serving import production

    instance.add_dynamic_partitions(TARGET_PARTITIONS, ["page_builder", "ux_review"])
    resources = {"store": StoreResource(url=store_url)}
    ctx = dg.build_schedule_context(instance=instance, resources=resources,
                                    scheduled_execution_time=datetime(2026, 1, 12, 6, tzinfo=UTC))
    requests = online_experiment_daily(ctx)
    assert [r.partition_key for r in requests] == ["page_builder"]  # ux_review has no challenger

    result = dg.materialize([online_experiment], partition_key="page_builder", instance=instance, resources=resources)
    meta = result.asset_materializations_for_node("online_experiment")[0].metadata
    assert meta["decision"].value == "rollback" and meta["decision_applied"].value is True
    assert meta["summary"].value.startswith("rolled back: accepted_rate significantly worse (accepted_rate -")
    assert "significantly worse" in meta["reason"].value and "accepted_rate" in meta["reason"].value
    assert "challenger" in meta["variants"].value and "anytime" in meta["reason"].value
    assert meta["interactions_tallied"].value == sum(meta["outcomes"].value.values()) > 0
    db = Store(store_url)
    row = production.history(db, "page_builder")[0]
    assert row["action"] == "rollback" and row["by"] == "online_experiment"
    assert row["evaluation"]["online_experiment"]["primary"]["metric"] == "accepted_rate"
    assert production.current(db, "page_builder").challenger is None

    again = dg.materialize([online_experiment], partition_key="page_builder", instance=instance, resources=resources)
    meta = again.asset_materializations_for_node("online_experiment")[0].metadata
    assert meta["decision"].value == "none" and "nothing to judge" in meta["reason"].value
    assert isinstance(online_experiment_daily(ctx), dg.SkipReason)


def test_cli_prints_one_json_object(capsys):
    from pipeline.cli import main

    assert main(["experiment", "simulate", "--target", "page_builder", "--lift", "-0.5", "--seed", "2",
                 "--days", "6", "--mode", "memory", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["decision"] == "rollback" and out["history"][-1]["verdict"] == "rollback"
    assert main(["experiment", "simulate", "--target", "nope", "--lift", "0.1", "--json"]) == 2
    assert "nope" in capsys.readouterr().err
