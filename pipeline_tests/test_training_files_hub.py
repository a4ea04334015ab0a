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


def test_a_training_file_over_the_size_threshold_goes_through_lfs(manifest, monkeypatch):
    """The Hub sends files over its size threshold (10 MiB) through LFS; the fake's is lowered to 1 KiB."""
    import os

    path = manifest["files"]["openai_chat"]["train"]
    assert os.path.getsize(path) > 1024
    for hub in serve_fake_hub(monkeypatch, lfs_threshold=1024):
        push_dataset_version(manifest, "acme/big", endpoint=hub.url, token=hub.token)
        repo = hub.repo("acme/big")
        assert hub.uploaded_through_lfs(repo, "openai_chat/train.jsonl")
        with open(path, "rb") as handle:
            assert repo.files["openai_chat/train.jsonl"] == handle.read()
        assert set(repo.lfs) == {p for p, content in repo.files.items() if len(content) >= 1024}  # the rest inline
        uploads = len(hub.lfs_uploads)
        push_dataset_version(manifest, "acme/big", endpoint=hub.url, token=hub.token)  # unchanged: no upload, no commit
        assert len(hub.lfs_uploads) == uploads and len(repo.commits) == 1


def _commit(hub, repo_id: str, *lines: dict):
    import json

    import httpx

    body = "\n".join(json.dumps(line) for line in ({"key": "header", "value": {"summary": "s"}}, *lines))
    return httpx.post(f"{hub.url}/api/datasets/{repo_id}/commit/main", content=body.encode(),
                      headers={"Authorization": f"Bearer {hub.token}", "Content-Type": "application/x-ndjson"})


def test_the_fake_hub_is_as_strict_as_the_hub_about_lfs(hub):
    """A commit may point only at an LFS object uploaded with its announced sha256 and size, and binary
    files may not travel inline, so a client that skipped LFS cannot pass against the fake."""
    import base64
    import hashlib

    import httpx
    from huggingface_hub import HfApi

    HfApi(endpoint=hub.url, token=hub.token).create_repo("acme/strict", repo_type="dataset")
    auth = {"Authorization": f"Bearer {hub.token}"}
    weights = b"\x08\x00\x00\x00\x00\x00\x00\x00{}      " + bytes(range(256))
    oid = hashlib.sha256(weights).hexdigest()
    pointer = {"path": "model.safetensors", "algo": "sha256", "oid": oid, "size": len(weights)}

    refused = _commit(hub, "acme/strict", {"key": "lfsFile", "value": pointer})
    assert refused.status_code == 422 and "LFS pointer pointed to a file that does not exist" in refused.text
    inline = {"path": "model.safetensors", "content": base64.b64encode(weights).decode(), "encoding": "base64"}
    refused = _commit(hub, "acme/strict", {"key": "file", "value": inline})
    assert refused.status_code == 400 and "binary files" in refused.text

    batch = httpx.post(f"{hub.url}/datasets/acme/strict.git/info/lfs/objects/batch", headers=auth, json={
        "operation": "upload", "transfers": ["basic"], "hash_algo": "sha256",
        "objects": [{"oid": oid, "size": len(weights)}]}).json()
    assert batch["transfer"] == "basic"
    (action,) = batch["objects"]
    href = action["actions"]["upload"]["href"]
    assert httpx.put(href.replace("signature=", "signature=0"), content=weights).status_code == 403
    assert httpx.put(href, content=weights[:-1] + b"!").status_code == 400  # not the announced sha256
    verify = action["actions"]["verify"]["href"]
    assert httpx.post(verify, headers=auth, json={"oid": oid, "size": len(weights)}).status_code == 404
    assert not hub.lfs_uploads and not hub.repo("acme/strict").commits

    assert httpx.put(href, content=weights).status_code == 200  # no Authorization: the signed URL is the credential
    assert httpx.post(verify, headers=auth, json={"oid": oid, "size": len(weights)}).status_code == 200
    wrong_size = _commit(hub, "acme/strict", {"key": "lfsFile", "value": {**pointer, "size": len(weights) + 1}})
    assert wrong_size.status_code == 422
    assert _commit(hub, "acme/strict", {"key": "lfsFile", "value": pointer}).status_code == 200
    repo = hub.repo("acme/strict")
    assert repo.files["model.safetensors"] == weights and hub.uploaded_through_lfs(repo, "model.safetensors")


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
