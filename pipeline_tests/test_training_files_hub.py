"""Pushing a dataset version to the Hub, against a loopback server driven by the real huggingface_hub."""

from __future__ import annotations

import pytest

from pipeline.defs.resources import hub_resource as hub_resource_from_env
from pipeline.training_files.build import build_training_files
from pipeline.training_files.dataset_card import dataset_card
from pipeline.training_files.hub import HubResource, push_dataset_version
from pipeline_tests.fakes.hf_hub_server import Response
from pipeline_tests.training_files_helpers import example, make_target, serve_fake_hub, write_examples


@pytest.fixture
def manifest(tmp_path, monkeypatch):
    monkeypatch.setenv("FLYWHEEL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    target = make_target("sft_openai")
    write_examples(target.name, [example(i) for i in range(40)] + [example(99, completion="")])
    return build_training_files(target).manifest


@pytest.fixture
def hub(monkeypatch):
    yield from serve_fake_hub(monkeypatch)


def test_card_has_counts_scores_anonymization_and_dates(manifest):
    card = dataset_card(manifest)
    assert card.startswith("---\n") and "config_name: openai_chat" in card and "default: true" in card
    assert "| train | 36 |" in card and "| validation | 4 |" in card
    assert "dropped: 1 (empty_content: 1)" in card
    assert "| 5-6 |" in card  # score distribution
    assert "Presidio" in card and "opted out" in card
    assert "from 2026-10-01T12:00:00Z to 2026-10-28T12:00:00Z" in card


def test_push_creates_repo_and_commits_files(manifest, hub):
    pushed = push_dataset_version(manifest, "acme/flywheel-sft", endpoint=hub.url, token=hub.token)
    repo = hub.repo("acme/flywheel-sft")
    assert repo.private
    assert sorted(repo.files) == sorted(
        ["README.md", "manifest.json"] + [f"{f}/{s}.jsonl" for f in manifest["files"] for s in ("train", "validation")]
    )
    with open(manifest["files"]["openai_chat"]["train"], "rb") as handle:
        assert repo.files["openai_chat/train.jsonl"] == handle.read()
    assert manifest["dataset_version"] in repo.commits[0]["summary"]
    assert pushed["commit_oid"] == repo.sha and pushed["commit_url"].endswith(repo.sha)
    assert b"/tmp" not in repo.files["manifest.json"] and str(manifest["files"]["openai_chat"]["train"]).encode() not in repo.files["manifest.json"]
    assert ("POST", "/api/datasets/acme/flywheel-sft/preupload/main") in hub.requests

    # the same version again: the client sees identical blobs and makes no commit
    again = push_dataset_version(manifest, "acme/flywheel-sft", endpoint=hub.url, token=hub.token)
    assert len(repo.commits) == 1 and again["commit_oid"] == repo.sha


def test_push_removes_files_the_new_version_lacks(manifest, hub):
    push_dataset_version(manifest, "acme/d", endpoint=hub.url, token=hub.token)
    smaller = dict(manifest, files={f: dict(s, validation=None) for f, s in manifest["files"].items()})
    push_dataset_version(smaller, "acme/d", endpoint=hub.url, token=hub.token)
    assert not any(name.endswith("validation.jsonl") for name in hub.repo("acme/d").files)


def test_wrong_token_is_refused(manifest, hub):
    from huggingface_hub.errors import HfHubHTTPError

    with pytest.raises(HfHubHTTPError):
        push_dataset_version(manifest, "acme/d", endpoint=hub.url, token="hf_wrong")
    assert not hub.repos


def test_route_table_is_extensible(hub):
    import httpx

    hub.route("GET", r"/api/jobs/(?P<ns>[^/]+)")(lambda request: Response(200, [{"namespace": request.params["ns"]}]))
    reply = httpx.get(f"{hub.url}/api/jobs/acme", headers={"Authorization": f"Bearer {hub.token}"})
    assert reply.json() == [{"namespace": "acme"}]


def test_resource_reads_hf_token_from_env(monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    assert hub_resource_from_env().token is None
    with pytest.raises(ValueError, match="HF_TOKEN is not set"):
        HubResource().push({}, "acme/d")
    monkeypatch.setenv("HF_TOKEN", "hf_from_env")
    resource = hub_resource_from_env()
    assert resource.configured and "hf_from_env" not in repr(resource)
