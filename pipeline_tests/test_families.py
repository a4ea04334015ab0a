"""Families: partitions that grow and shrink with the tenants, retirement, the refusal, and isolation per tenant.

Layers: the planning table (pure), the targets file, the store's migration, the sensor through
`build_sensor_context`, `fine_tune_job` refusing a retired member, and the whole curation path
for several tenants, where each tenant's training file and evaluation items hold its rows only.
"""

from __future__ import annotations

import json
import random
import re

import dagster as dg
import pytest

from pipeline.core.families import TenantStats, departure, plan_partitions, standing
from pipeline.core.resources import StoreResource
from pipeline.core.store import Store
from pipeline.core.targets import TargetsFileError, parse_targets, resolve_target
from pipeline.defs.partitions import TARGET_PARTITIONS
from pipeline.evaluation.decision import Decision
from pipeline.serving import production
from pipeline.serving.rollout import ModelRef, base_ref, rollout_path
from pipeline_tests.curation_helpers import insert_accepted, record
from pipeline_tests.ingest_helpers import jsonl, organization

FAMILIES = """
targets:
  fixed:
    tasks: [page_generation]
    backend: huggingface
    base_model: some/model
  chat_family:
    tasks: [chat]
    per_tenant: {min_examples: 12}
    method: sft
    backend: huggingface
    base_model: some/model
    min_examples: 12
    scoring: {export_threshold: 3}
    training_file: {validation_share: 0.2}
  paid_family:
    tasks: [chat]
    per_tenant: {plans: [pro, enterprise], min_examples: 5}
    exclude_tenants: [org_banned]
    backend: openai
    base_model: gpt-4.1-mini-2025-04-14
    min_examples: 5
    scoring: {export_threshold: 3}
"""
TARGETS = parse_targets(FAMILIES)
CHAT, PAID = TARGETS["chat_family"], TARGETS["paid_family"]


# ------------------------------------------------------------------ the planning table (pure)

@pytest.mark.parametrize("family, stats, verdict, says", [
    (CHAT, TenantStats("org_a", plan="free", accepted=40, examples=12), "member", "12 examples"),
    (CHAT, TenantStats("org_a", plan=None, accepted=40, examples=11), "remove", "fewer than per_tenant.min_examples=12"),
    (CHAT, TenantStats("org_a", accepted=3), "remove", "3 accepted chat interactions"),
    (CHAT, TenantStats("org_a", opted_out=True, accepted=40, examples=40), "retire", "opted out"),
    (CHAT, TenantStats("org_a", opted_out=True, malformed=True), "retire", "unreadable"),
    (CHAT, TenantStats("org_a", on_record=False, accepted=0), "retire", "left"),
    (CHAT, TenantStats("org_a", on_record=False, accepted=20, examples=20), "member", "20 examples"),
    (CHAT, TenantStats("org a/../x", accepted=40, examples=40), "skip", "cannot be part of a partition key"),
    (PAID, TenantStats("org_a", plan="pro", accepted=9, examples=5), "member", "on plan 'pro'"),
    (PAID, TenantStats("org_a", plan="free", accepted=90, examples=90), "retire", "plan 'free', not one of"),
    (PAID, TenantStats("org_a", plan=None, accepted=90, examples=90), "retire", "no plan on record"),
    (PAID, TenantStats("org_banned", plan="pro", accepted=90, examples=90), "remove", "exclude_tenants"),
])
def test_where_a_tenant_stands(family, stats, verdict, says):
    result = standing(family, stats)
    assert result.verdict == verdict and says in result.reason, result
    assert (departure(family, stats) is not None) == (verdict == "retire")


def test_an_uncounted_tenant_that_may_qualify_is_an_error_not_a_guess():
    with pytest.raises(ValueError, match="not counted"):
        standing(CHAT, TenantStats("org_a", accepted=40, examples=None))


def stats(org, **kw) -> TenantStats:
    return TenantStats(org, **{"plan": "pro", "accepted": 50, "examples": 50, **kw})


@pytest.mark.parametrize("tenants, current, trained, add, remove, retire", [
    # a fresh instance: the fixed target and every qualifying member are added
    ({"chat_family": [stats("org_a"), stats("org_b", examples=2)]}, [], [],
     {"fixed", "chat_family/org_a"}, set(), set()),
    # nothing changed: nothing to do
    ({"chat_family": [stats("org_a")]}, ["fixed", "chat_family/org_a"], [], set(), set(), set()),
    # fell below the minimum: removed, models kept; left the plan: retired
    ({"chat_family": [stats("org_a", examples=3)], "paid_family": [stats("org_b", plan="free")]},
     ["fixed", "chat_family/org_a", "paid_family/org_b"], [], set(), {"chat_family/org_a"}, {"paid_family/org_b"}),
    # removed earlier for too few examples, opted out since: its remaining models are retired
    ({"chat_family": [stats("org_a", opted_out=True)]}, ["fixed"], ["chat_family/org_a"], set(), set(),
     {"chat_family/org_a"}),
    # never a member, opted out: nothing to retire
    ({"chat_family": [stats("org_a", opted_out=True)]}, ["fixed"], [], set(), set(), set()),
    # a tenant the store no longer knows at all, a family and a fixed target no longer declared
    ({}, ["fixed", "chat_family/org_gone", "old_family/org_a", "old_fixed"], [], set(),
     {"old_family/org_a", "old_fixed"}, {"chat_family/org_gone"}),
])
def test_plan_partitions(tenants, current, trained, add, remove, retire):
    plan = plan_partitions(TARGETS, tenants, current, trained)
    assert (set(plan.add), set(plan.remove), set(plan.retire)) == (add, remove, retire)
    assert set(plan.members) == (set(current) | add) - remove - retire
    assert plan.changed == bool(add or remove or retire)


def test_plan_says_why_a_tenant_is_not_a_member():
    plan = plan_partitions(TARGETS, {"chat_family": [stats("org_b", examples=2), stats("bad id"),
                                                     stats("org_c", accepted=0, examples=None)]}, [])
    assert "fewer than per_tenant.min_examples=12" in plan.declined["chat_family/org_b"]
    assert "chat_family/org_c" not in plan.declined  # no chat at all: no candidate, not listed
    assert "cannot be part of a partition key" in plan.skipped["chat_family/bad id"]


# ------------------------------------------------------------------ the targets file

def test_member_keys_resolve_to_the_family_settings_for_one_tenant():
    member = resolve_target(TARGETS, "chat_family/org_a")
    assert (member.name, member.tenants, member.family, member.tenant) == ("chat_family/org_a", ("org_a",),
                                                                            "chat_family", "org_a")
    assert member.per_tenant is None and member.scoring.export_threshold == 3 and member.min_examples == 12
    assert member.takes("org_a", "chat") and not member.takes("org_b", "chat")
    assert resolve_target(TARGETS, "fixed").family is None


@pytest.mark.parametrize("key, says", [
    ("chat_family", "is a family: its partitions are its members"),
    ("fixed/org_a", "is not a family"),
    ("nope/org_a", "unknown training target"),
    ("paid_family/org_banned", "excluded"),
    ("chat_family/../etc", "cannot be part of a partition key"),
])
def test_keys_that_name_no_model_fail_clearly(key, says):
    with pytest.raises(KeyError, match=says.replace("(", r"\(")):
        resolve_target(TARGETS, key)


def test_per_tenant_fields_are_checked_with_their_line():
    bad = FAMILIES.replace("per_tenant: {min_examples: 12}", "per_tenant: {min_examples: 12, plan: [pro]}")
    with pytest.raises(TargetsFileError, match=r"targets\.yaml:9: target 'chat_family', field 'per_tenant.plan'"):
        parse_targets(bad, source="targets.yaml")
    with pytest.raises(TargetsFileError, match="at least one plan"):
        parse_targets(FAMILIES.replace("plans: [pro, enterprise]", "plans: []"), source="targets.yaml")


def test_the_project_declares_the_two_seed_families():
    from pipeline.core.targets import load_targets

    targets = load_targets()
    assert targets["avatar_chat"].per_tenant.min_examples == 30 and targets["avatar_chat"].per_tenant.plans is None
    assert targets["roast_custom"].per_tenant.min_examples == 100
    from pipeline.synth.world import ORGS

    assert set(targets["roast_custom"].per_tenant.plans) <= {o.plan for o in ORGS}
    assert "avatar_luna" not in targets and "avatar_max" not in targets


# ------------------------------------------------------------------ the store: an older registry gains the columns

def test_an_older_model_registry_gains_the_retirement_columns(store_url):
    import sqlalchemy as sa

    engine = sa.create_engine(Store(store_url).url)
    with engine.begin() as conn:  # the table as it was before retirement existed, with a row
        conn.execute(sa.text("DROP TABLE fw_model_registry"))
        conn.execute(sa.text(
            "CREATE TABLE fw_model_registry (job_id TEXT PRIMARY KEY, target TEXT NOT NULL, dataset_version TEXT "
            "NOT NULL, backend VARCHAR(40) NOT NULL, method VARCHAR(20) NOT NULL, base_model TEXT NOT NULL, "
            "hyperparameters TEXT NOT NULL, status VARCHAR(20) NOT NULL, created_at TEXT NOT NULL, updated_at TEXT "
            "NOT NULL, finished_at TEXT, trained_tokens BIGINT, cost_usd FLOAT, result_model TEXT, error TEXT, "
            "metrics TEXT, details TEXT)"))
        conn.execute(sa.text("INSERT INTO fw_model_registry VALUES ('j1', 'chat_family/org_a', 'v1', 'openai', 'sft', "
                             "'m', '{}', 'succeeded', 't0', 't0', NULL, NULL, NULL, NULL, NULL, NULL, NULL)"))
    engine.dispose()
    from pipeline.finetune import registry

    store = Store(store_url)  # opening it migrates; opening it again is a no-op
    Store(store_url).dispose()
    assert registry.targets_with_active_models(store) == {"chat_family/org_a"}
    assert registry.retire_models(store, "chat_family/org_a", "left", now="t1") == 1
    row = registry.get_job(store, "j1")
    assert (row["retired_at"], row["retired_reason"], row["updated_at"]) == ("t1", "left", "t0")
    assert registry.retire_models(store, "chat_family/org_a", "again") == 0  # the first retirement is kept
    assert registry.targets_with_active_models(store) == set()
    store.dispose()


# ------------------------------------------------------------------ a world of tenants in a store

#: each tenant talks about its own things, in words no recognizer takes for personal data
VOCABULARY = {
    "org_alpha": "harbor anchor mast rudder keel jib mooring buoy tide sail deck galley compass regatta dinghy stern",
    "org_beta": "flour yeast oven dough crust whisk butter sugar muffin bagel croissant knead glaze sourdough pastry loaf",
    "org_gamma": "tulip compost trowel seedling hedge mulch orchid shrub shovel greenhouse lawn rake petal sprout soil weed",
    "org_small": "cable router modem server laptop monitor keyboard printer",
    "org_out": "guitar drum violin piano cello flute",
}


def chats(org: str, n: int, *, good: bool = True, seed: int = 0) -> list[dict]:
    """`n` distinct chat turns of `org`, prompt and answer drawn from the tenant's own vocabulary."""
    rng, vocabulary = random.Random(f"{org}{seed}"), VOCABULARY[org].split()
    return [record(f"{org}-{seed}-{i}", org=org, task="chat", prompt=" ".join(rng.sample(vocabulary, 6)) + "?",
                   response="the " + " ".join(rng.sample(vocabulary, 7)) + ".", feedback=[("thumbs", 1 if good else -1)])
            for i in range(n)]


def import_orgs(store: Store, *orgs: dict) -> None:
    from pipeline.ingest.importer import import_lines

    import_lines(store, jsonl(*orgs).splitlines())


@pytest.fixture
def world(tmp_path, monkeypatch):
    path = tmp_path / "targets.yaml"
    path.write_text(FAMILIES, encoding="utf-8")
    monkeypatch.setenv("FLYWHEEL_TARGETS", str(path))
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = Store(url)
    import_orgs(store, organization("org_alpha", plan="pro"), organization("org_beta", plan="enterprise"),
                organization("org_gamma", plan="free"), organization("org_small", plan="pro"),
                organization("org_out", opt_out=True, plan="pro"))
    insert_accepted(store, [*chats("org_alpha", 20), *chats("org_beta", 16), *chats("org_gamma", 14),
                            *chats("org_small", 4), *chats("org_small", 30, good=False, seed=1)])
    with dg.instance_for_test() as instance:
        yield {"url": url, "store": store, "instance": instance}
    store.dispose()


def tick(world, cursor=None):
    """One sensor tick, then the run it requested (what the daemon would launch)."""
    from pipeline.defs.target_partitions import sync_target_partitions_job, target_partitions_sensor

    before = keys(world)
    with dg.build_sensor_context(instance=world["instance"], cursor=cursor,
                                 resources={"store": StoreResource(url=world["url"])}) as ctx:
        result = target_partitions_sensor(ctx)
    assert keys(world) == before  # the tick only looks; the run plans and applies
    for request in result.run_requests or []:
        run = sync_target_partitions_job.execute_in_process(
            instance=world["instance"], resources={"store": StoreResource(url=world["url"])}, tags=request.tags)
        assert run.success
    return result


def keys(world) -> set[str]:
    return set(world["instance"].get_dynamic_partitions(TARGET_PARTITIONS))


def test_the_sensor_grows_the_partitions_skips_when_nothing_changed_and_retires_who_left(world):
    from pipeline.finetune import registry
    from pipeline_tests.test_finetune_registry import job, request

    first = tick(world)
    assert keys(world) == {"fixed", "chat_family/org_alpha", "chat_family/org_beta", "chat_family/org_gamma",
                           "paid_family/org_alpha", "paid_family/org_beta"}
    # org_small: 4 good turns of 34; org_out opted out; org_gamma is on the free plan: none is a paid member
    assert len(first.run_requests) == 1
    second = tick(world, first.cursor)
    assert second.skip_reason and "nothing changed" in second.skip_reason.skip_message
    assert not second.run_requests

    for key in ("paid_family/org_alpha", "chat_family/org_alpha", "chat_family/org_beta"):
        registry.record_job(world["store"], job(f"j-{key}", "succeeded"), request(target=key))
    # org_beta's chat model serves as champion, another as challenger: both stop when org_beta leaves
    beta = TARGETS["chat_family"].member("org_beta")
    trained = ModelRef("/models/beta-v1", "huggingface", job_id="j-chat_family/org_beta", dataset_version="v1")
    production.record_decision(world["store"], beta, Decision("promote_champion", "better"), candidate=trained, by="t")
    production.record_decision(world["store"], beta, Decision("promote_challenger", "canary", challenger_share=0.1),
                               candidate=ModelRef("/models/beta-v2", "huggingface", job_id="j2"), by="t")
    import_orgs(world["store"], organization("org_alpha", plan="free"),  # left the plan
                organization("org_beta", opt_out=True, plan="enterprise"))  # opted out
    third = tick(world, second.cursor)
    assert third.cursor != second.cursor
    assert keys(world) == {"fixed", "chat_family/org_alpha", "chat_family/org_gamma"}
    rows = {r["target"]: r for r in registry.list_jobs(world["store"])}
    assert "plan 'free'" in rows["paid_family/org_alpha"]["retired_reason"]
    assert "opted out" in rows["chat_family/org_beta"]["retired_reason"]
    assert rows["chat_family/org_alpha"]["retired_at"] is None  # still a member of the family without plans
    assert registry.find_job(world["store"], "paid_family/org_alpha", "v1") is None  # never re-attached
    served = production.current(world["store"], "chat_family/org_beta")
    assert served.champion == base_ref(beta) and served.challenger is None
    last = production.history(world["store"], "chat_family/org_beta", limit=1)[0]
    assert last["action"] == "retire" and "opted out" in last["reason"] and last["model"] == "/models/beta-v1"
    on_disk = json.loads(rollout_path("chat_family/org_beta").read_text(encoding="utf-8"))
    assert on_disk["champion"]["model"] == "some/model" and on_disk["challenger"] is None
    assert production.current(world["store"], "paid_family/org_alpha") is None  # never served: nothing to retire
    tick(world, third.cursor)
    assert len(production.history(world["store"], "chat_family/org_beta")) == 4  # base, promote x2, retire once


def test_the_demo_helper_is_idempotent(world):
    from pipeline.defs.target_partitions import sync_target_partitions

    plan = sync_target_partitions(world["instance"], world["store"])
    assert plan.changed and "chat_family/org_small" in plan.declined
    again = sync_target_partitions(world["instance"], world["store"])
    assert not again.changed and again.members == plan.members


def test_tenant_counts_after_new_data_score_only_what_changed_and_equal_a_count_from_scratch(world):
    """The re-count keeps each tenant's scored state: after new turns, late feedback and a duplicate it
    scores only those rows, and every count is the one a count from scratch gives."""
    from pipeline.core.artifacts import tenant_counts_dir
    from pipeline.curation import parts
    from pipeline.curation.tenants import count_in_memory, exportable_counts

    store, orgs = world["store"], ["org_alpha", "org_beta", "org_small"]
    first = exportable_counts(store, CHAT, orgs)
    assert first == count_in_memory(store, CHAT, orgs) == {"org_alpha": 20, "org_beta": 16, "org_small": 4}
    beta = chats("org_beta", 16)
    disliked = [record(r["id"], org="org_beta", task="chat", prompt=r["messages"][0]["content"], response=r["response"],
                       feedback=[("thumbs", 1), ("thumbs", -1, "2026-03-01T12:00:00Z")]) for r in beta[:3]]
    twin = chats("org_alpha", 1)[0] | {"id": "org_alpha-twin"}  # the same prompt as an earlier turn
    insert_accepted(store, [*chats("org_alpha", 5, seed=2), twin, *disliked], first_seq=1_000)

    second = exportable_counts(store, CHAT, orgs)
    assert second == count_in_memory(store, CHAT, orgs) == {"org_alpha": 25, "org_beta": 13, "org_small": 4}
    manifests = {org: parts.load(tenant_counts_dir(CHAT.name, org))[0] for org in orgs}
    assert len(manifests["org_alpha"].parts) == len(manifests["org_beta"].parts) == 2  # one incremental part each
    rows = {org: parts.read_rows_table(tenant_counts_dir(CHAT.name, org), m.parts[-1]).num_rows
            for org, m in manifests.items() if len(m.parts) == 2}
    assert rows == {"org_alpha": 6, "org_beta": 3}  # only the new and updated rows were scored again
    assert len(manifests["org_small"].parts) == 1  # nothing new: unchanged


def test_fine_tune_request_refuses_a_retired_member_and_retires_its_models(world):
    from pipeline.backends.huggingface.backend import HuggingFaceBackend
    from pipeline.backends.openai.backend import OpenAIBackend
    from pipeline.backends.resource import FineTuneBackends
    from pipeline.backends.sentence_transformers.backend import SentenceTransformersBackend
    from pipeline.defs.fine_tune_job import fine_tune_job
    from pipeline.finetune import registry
    from pipeline_tests.test_finetune_registry import job, request

    tick(world)
    key = "paid_family/org_alpha"
    registry.record_job(world["store"], job("j-old", "succeeded"), request(target=key))
    import_orgs(world["store"], organization("org_alpha", plan="free"))  # before the sensor's next tick
    result = dg.materialize(
        [fine_tune_job], partition_key=key, instance=world["instance"], raise_on_error=False,
        resources={"store": StoreResource(url=world["url"]), "backends": FineTuneBackends(
            openai=OpenAIBackend(api_key="sk-test"), huggingface=HuggingFaceBackend(),
            sentence_transformers=SentenceTransformersBackend())},
    )
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    text = str(failure.event_specific_data.error)
    assert f"{key} is retired: org_alpha has plan 'free', not one of paid_family's plans" in text
    assert "Nothing is trained" in text and failure.step_key.startswith("fine_tune_job.fine_tune_request")
    assert [r["job_id"] for r in registry.list_jobs(world["store"])] == ["j-old"]  # nothing new submitted
    assert "plan 'free'" in registry.get_job(world["store"], "j-old")["retired_reason"]


# ------------------------------------------------------------------ isolation: each tenant's file holds its rows only

def test_each_tenants_training_file_and_evaluation_items_hold_only_its_rows(world):
    from pipeline.anonymize.records import tenant_hash
    from pipeline.backends.huggingface.backend import HuggingFaceBackend
    from pipeline.backends.openai.backend import OpenAIBackend
    from pipeline.backends.resource import FineTuneBackends
    from pipeline.backends.sentence_transformers.backend import SentenceTransformersBackend
    from pipeline.core.artifacts import read_manifest
    from pipeline.training_files.hub import HubResource
    from pipeline_tests.curation_helpers import read_rows
    from pipeline_tests.defs_helpers import everything

    tick(world)
    tenants = ("org_alpha", "org_beta", "org_gamma")
    resources = {"store": StoreResource(url=world["url"]), "hf_hub": HubResource(), "backends": FineTuneBackends(
        openai=OpenAIBackend(api_key=""), huggingface=HuggingFaceBackend(),
        sentence_transformers=SentenceTransformersBackend())}
    for org in tenants:
        key = f"chat_family/{org}"
        result = dg.materialize(
            everything(), selection=[dg.AssetKey(k) for k in ("scored_examples", "anonymized_dataset", "training_file")],
            partition_key=key, instance=world["instance"], resources=resources, raise_on_error=False,
            run_config={"ops": {"anonymized_dataset": {"config": {"workers": 1}}}},
        )
        assert result.success, key
        assert all(e.passed for e in result.get_asset_check_evaluations()), key
        meta = {k: v.value for k, v in result.asset_materializations_for_node("anonymized_dataset")[0].metadata.items()}
        assert {r["tenant_hash"] for r in read_rows(meta["examples_path"])} == {tenant_hash(org)}
        version = result.asset_materializations_for_node("training_file")[0].metadata["dataset_version"].value
        manifest = read_manifest(key, version)
        files = manifest["files"][manifest["backend_format"]]
        for side in ("train", "validation"):
            lines = [json.loads(line) for line in open(files[side], encoding="utf-8")]
            assert lines, (key, side)  # evaluation items exist, so the assertion below is about something
            own = set(VOCABULARY[org].split())
            foreign = {w for o, text in VOCABULARY.items() if o != org for w in text.split()}
            for line in lines:
                for message in line["messages"]:
                    said = set(re.findall(r"[a-z]+", message["content"]))
                    if message["role"] == "user":  # (answers of bare rare words can be redacted as a name)
                        assert said & own, (key, side, message)  # the tenant's own words
                    assert not said & foreign, (key, side, message)  # and no other tenant's


def test_a_member_key_with_a_slash_works_from_the_dagster_cli(world, tmp_path, monkeypatch):
    """`dagster asset materialize --partition chat_family/org_alpha`: '/' is a plain character in a partition key."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from pipeline.defs.target_partitions import sync_target_partitions

    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    monkeypatch.setenv("FLYWHEEL_SOURCE_URL", world["url"])
    with dg.DagsterInstance.from_config(str(home)) as instance:
        sync_target_partitions(instance, world["store"])
        cli = subprocess.run(
            [str(Path(sys.executable).with_name("dagster")), "asset", "materialize", "-m", "pipeline.definitions",
             "--select", "scored_examples", "--partition", "chat_family/org_alpha"],
            capture_output=True, text=True, cwd=Path(__file__).parents[1], timeout=300,
            env={**os.environ, "DAGSTER_HOME": str(home)},
        )
        assert cli.returncode == 0, cli.stdout[-2000:] + cli.stderr[-2000:]
        [mat] = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("scored_examples"), asset_partitions=["chat_family/org_alpha"]),
            limit=1).records
        assert mat.event_log_entry.asset_materialization.metadata["kept"].value == 20
        unknown = subprocess.run(
            [str(Path(sys.executable).with_name("dagster")), "asset", "materialize", "-m", "pipeline.definitions",
             "--select", "scored_examples", "--partition", "chat_family/org_small"],
            capture_output=True, text=True, cwd=Path(__file__).parents[1], timeout=300,
            env={**os.environ, "DAGSTER_HOME": str(home)},
        )
        assert unknown.returncode != 0  # not a member: Dagster itself refuses the key


def test_status_without_a_target_lists_each_member_not_the_family(world):
    from pipeline.serving.commands import _target_names, status

    names = _target_names(world["store"], None)
    assert names == ["chat_family/org_alpha", "chat_family/org_beta", "chat_family/org_gamma", "fixed",
                     "paid_family/org_alpha", "paid_family/org_beta"]
    rows = status(world["store"], names)["targets"]
    assert rows["chat_family/org_beta"]["champion"]["model"] == "some/model"  # the family's base model serves
    assert all(row["champion"] for row in rows.values())


def test_the_sensor_waits_for_a_sync_run_in_flight_and_keeps_its_cursor(world):
    from pipeline.defs.target_partitions import target_partitions_sensor

    instance = world["instance"]
    instance.add_run(dg.DagsterRun(job_name="sync_target_partitions_job", run_id="r-in-flight",
                                   status=dg.DagsterRunStatus.STARTED))
    with dg.build_sensor_context(instance=instance, cursor="old",
                                 resources={"store": StoreResource(url=world["url"])}) as ctx:
        result = target_partitions_sensor(ctx)
    assert not result.run_requests and "in flight" in result.skip_reason.skip_message
    assert result.cursor == "old"  # the change is still unseen: the tick after that run requests one
