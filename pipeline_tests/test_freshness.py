"""Freshness: how old the model in service is (pure, clock injected), the check on a real instance, and the
sensor that runs the check once per change of state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from pipeline.core.resources import StoreResource
from pipeline.core.store import Store
from pipeline.core.targets import TargetsFileError, parse_targets
from pipeline.defs.model_freshness import (
    CHECK_KEY,
    model_freshness_job,
    model_freshness_sensor,
    model_in_service_fresh,
)
from pipeline.defs.partitions import TARGET_PARTITIONS
from pipeline.defs.production_model import production_model
from pipeline.evaluation.decision import Decision
from pipeline.serving import production
from pipeline.serving.freshness import assess, freshness, plan_requests
from pipeline.serving.rollout import ModelRef, Rollout

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
BASE = {"model": "base/m", "backend": "huggingface", "job_id": None, "dataset_version": None}
TUNED = {"model": "/models/1", "backend": "huggingface", "job_id": "local-1", "dataset_version": "v-1"}
OLDER = {"model": "/models/0", "backend": "huggingface", "job_id": "local-0", "dataset_version": "v-0"}
TARGETS_YAML = """
targets:
  page_builder:
    tasks: [page_generation]
    backend: huggingface
    base_model: base/m
    freshness_days: 14
"""


def _iso(days_ago: float) -> str:
    return (NOW - timedelta(days=days_ago)).isoformat().replace("+00:00", "Z")


def _rollout(champion: dict, challenger: dict | None = None) -> Rollout:
    return Rollout("page_builder", "ro_1", ModelRef.from_dict(champion),
                   ModelRef.from_dict(challenger) if challenger else None, 0.1 if challenger else 0.0, _iso(0))


def _row(action: str, champion: dict, days_ago: float) -> dict:
    return {"action": action, "champion": champion, "at": _iso(days_ago)}


# --- pure: age and staleness with an injected clock ----------------------------------------------------------


def test_age_runs_from_when_the_champion_first_served():
    history = [_row("promote_champion", TUNED, 20), _row("base", BASE, 30)]  # newest first, as history() returns
    stale = assess("page_builder", 14, _rollout(TUNED), history, NOW)
    assert (stale.state, stale.age_days, stale.since, stale.model) == ("stale", 20.0, _iso(20), "/models/1")
    assert "nothing newer was promoted" in stale.describe()
    fresh = assess("page_builder", 21, _rollout(TUNED), history, NOW)
    assert fresh.state == "fresh" and not fresh.stale


def test_the_window_is_exclusive_and_a_challenger_does_not_reset_the_clock():
    history = [_row("promote_challenger", TUNED, 1), _row("promote_champion", OLDER, 14)]
    at_limit = assess("page_builder", 14, _rollout(OLDER, TUNED), history, NOW)
    assert at_limit.state == "fresh" and at_limit.age_days == 14.0
    later = assess("page_builder", 14, _rollout(OLDER, TUNED), history, NOW + timedelta(hours=1))
    assert later.stale and later.challenger == "/models/1" and "advance it or roll it back" in later.describe()


def test_a_rolled_back_model_keeps_its_old_date():
    history = [_row("rollback", OLDER, 1), _row("promote_champion", TUNED, 5), _row("promote_champion", OLDER, 40)]
    result = assess("page_builder", 14, _rollout(OLDER), history, NOW)
    assert result.stale and result.since == _iso(40)


def test_the_base_model_is_judged_like_any_model_and_nothing_recorded_is_unknown():
    base = assess("page_builder", 14, _rollout(BASE), [_row("base", BASE, 15)], NOW)
    assert base.stale and base.is_base and "no fine-tuned model has beaten the base model" in base.describe()
    unknown = assess("page_builder", 14, None, [], NOW)
    assert unknown.state == "unknown" and not unknown.stale and "not judged" in unknown.describe()


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="not an RFC 3339 time"):
        assess("page_builder", 14, _rollout(TUNED), [{"champion": TUNED, "at": "yesterday"}], NOW)
    with pytest.raises(ValueError, match="no time zone"):
        assess("page_builder", 14, _rollout(TUNED), [{"champion": TUNED, "at": "2026-01-01T00:00:00"}], NOW)
    with pytest.raises(ValueError, match="aware"):
        assess("page_builder", 14, _rollout(TUNED), [], NOW.replace(tzinfo=None))
    with pytest.raises(TargetsFileError, match="freshness_days"):
        parse_targets(TARGETS_YAML.replace("freshness_days: 14", "freshness_days: 0"))
    assert parse_targets(TARGETS_YAML.replace("    freshness_days: 14\n", ""))["page_builder"].freshness_days == 14


def test_plan_requests_once_per_change_of_state():
    def states(state):
        return {"page_builder": assess("page_builder", 14, _rollout(TUNED), [_row("promote_champion", TUNED,
                                                                                    20 if state == "stale" else 1)],
                                       NOW)}

    requests, cursor = plan_requests(states("stale"), None, lambda key: None)
    assert [(r.target, r.state) for r in requests] == [("page_builder", "stale")]
    assert plan_requests(states("stale"), cursor, lambda key: None)[0] == []  # requested: nothing twice
    back, cursor2 = plan_requests(states("fresh"), cursor, lambda key: False)
    assert [r.state for r in back] == ["fresh"] and back[0].run_key != requests[0].run_key
    # the latest evaluation already says stale (production_model evaluated it): no run, cursor follows
    again, cursor3 = plan_requests(states("stale"), cursor2, lambda key: False)
    assert again == [] and cursor3["targets"]["page_builder"]["state"] == "stale"
    # nothing serves yet: only noted; a target that left the partitions leaves the cursor
    unknown = {"page_builder": assess("page_builder", 14, None, [], NOW)}
    assert plan_requests(unknown, None, lambda key: None)[0] == []
    assert plan_requests({}, cursor3, lambda key: None)[1] == {"targets": {}}


# --- the check and the sensor on a real instance ---------------------------------------------------------------


@pytest.fixture
def world(tmp_path, monkeypatch):
    """A targets file, a SQLite store, an instance with the partition, and the real check, job and sensor."""
    targets = tmp_path / "targets.yaml"
    targets.write_text(TARGETS_YAML, encoding="utf-8")
    monkeypatch.setenv("FLYWHEEL_TARGETS", str(targets))
    url = f"sqlite:///{tmp_path / 'store.db'}"
    defs = dg.Definitions(assets=[production_model], asset_checks=[model_in_service_fresh], jobs=[model_freshness_job],
                          sensors=[model_freshness_sensor], resources={"store": StoreResource(url=url)})
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(TARGET_PARTITIONS, ["page_builder"])
        yield {"defs": defs, "instance": instance, "store": Store(url), "url": url}


def promote(world, model: dict, days_ago: float) -> None:
    """`model` becomes the champion, recorded as if `days_ago` days before now (the history's clock, injected)."""
    from pipeline.core.targets import get_target

    at = (datetime.now(UTC) - timedelta(days=days_ago)).isoformat().replace("+00:00", "Z")
    with pytest.MonkeyPatch.context() as clock:
        clock.setattr(production, "now_iso", lambda: at)
        production.record_decision(world["store"], get_target("page_builder"), Decision("promote_champion", "test"),
                                   candidate=ModelRef.from_dict(model), by="test")


def run_check(world, request: dg.RunRequest | None = None) -> dg.AssetCheckEvaluation:
    """Run the job as the sensor's request says (only the check selected), as the daemon launches it."""
    job = world["defs"].resolve_job_def("model_freshness_job")
    checks = set(request.asset_check_keys) if request else {CHECK_KEY}
    subset = job.get_subset(asset_selection=set(request.asset_selection if request else []),
                            asset_check_selection=checks)
    result = subset.execute_in_process(instance=world["instance"], partition_key=request.partition_key if request
                                       else "page_builder", tags=request.tags if request else None)
    assert result.success
    assert result.get_asset_materialization_events() == []  # the check alone: production_model is not materialized
    [evaluation] = result.get_asset_check_evaluations()
    return evaluation


def test_the_check_fails_for_an_old_promotion_and_passes_for_a_new_one(world):
    promote(world, TUNED, days_ago=20)
    old = run_check(world)
    assert not old.passed and old.severity == dg.AssetCheckSeverity.ERROR and old.partition == "page_builder"
    assert old.metadata["model_in_service"].value == "/models/1"
    assert old.metadata["window_days"].value == 14.0 and 19.9 < old.metadata["age_days"].value < 20.1
    assert "stale" in old.description
    promote(world, OLDER, days_ago=0.5)
    new = run_check(world)
    assert new.passed and new.metadata["model_in_service"].value == "/models/0"
    assert new.metadata["promoted_at"].value == freshness(world["store"], _target()).since


def _target():
    from pipeline.core.targets import get_target

    return get_target("page_builder")


def test_the_sensor_requests_once_per_transition_and_nothing_on_a_second_tick(world):
    defs, instance = world["defs"], world["instance"]
    sensor = defs.resolve_sensor_def("model_freshness_sensor")

    def tick(cursor):
        with dg.build_sensor_context(instance=instance, cursor=cursor, resources={"store": StoreResource(url=world["url"])}) as context:
            result = sensor(context)
        return result.run_requests or [], result.cursor, result.skip_reason

    requests, cursor, skip = tick(None)  # nothing serves yet: nothing to run
    assert requests == [] and "page_builder unknown" in skip.skip_message
    promote(world, TUNED, days_ago=20)
    requests, cursor, _ = tick(cursor)
    assert [(r.partition_key, list(r.asset_check_keys), r.asset_selection) for r in requests] == [
        ("page_builder", [CHECK_KEY], [])]
    assert tick(cursor)[0] == []  # the run is queued: not requested twice
    assert not run_check(world, requests[0]).passed
    requests, cursor, skip = tick(cursor)
    assert requests == [] and "page_builder stale (20.0 of 14 days)" in skip.skip_message
    promote(world, OLDER, days_ago=0)  # a new champion: fresh again, one run
    requests, cursor, _ = tick(cursor)
    assert [r.tags["flywheel/freshness"] for r in requests] == ["fresh"]
    assert run_check(world, requests[0]).passed
    assert tick(cursor)[0] == []
