"""Where each stage writes its output under `FLYWHEEL_HOME`, and what its tables hold.

Stages hand data to each other through files with fixed names (Parquet for tables, JSONL for
training files), not through pickled Python objects: a data engineer can open any of them with
pandas or DuckDB, and the paths are in each asset's metadata.

    FLYWHEEL_HOME/
      flywheel.db                         embedded SQLite store (source + Flywheel's tables)
      <target>/
        scored/manifest.json, masks-<n>.npz  scored_examples: which parts, and which of their rows count now
        scored/parts/<part>/              one per run that scored something (pipeline/curation/parts.py):
                                          candidates (EXAMPLE_COLUMNS), pairs (PAIR_COLUMNS), small keys
        anonymized/<version>/examples.parquet  anonymized_dataset: same columns, ids stripped, text redacted;
        anonymized/<version>/pairs.parquet     <version> is a hash of the two files' bytes
        <dataset_version>/                training_file: train/validation files per format + manifest.json
        .memo/                            training_file: what its build and gates found per row and per line,
                                          so a run after new data redoes only what is new (training_files/memo.py)
      <family>/tenant_counts/<org_id>/    sync_target_partitions: each candidate tenant's scored state (as
                                          scored/ above), so a re-count after new data scores only what changed
        jobs/<job_id>/                    local fine-tune jobs: request, status, logs, the model
"""

from __future__ import annotations

from pathlib import Path

from pipeline.core.settings import target_dir

#: One training example. `messages` and `context` are JSON text; `completion` is what the model
#: should answer (the reviewer's label, else the person's edit, else the accepted response).
EXAMPLE_COLUMNS = [
    "example_id",  # the interaction id (stripped to a hash by anonymized_dataset)
    "org_id",  # tenant (anonymized_dataset replaces it with tenant_hash)
    "user_id",
    "conversation_id",
    "group_id",  # sha1 of conversation (or example) id: keeps a conversation on one side of a split
    "task",
    "occurred_at",
    "system_prompt",
    "messages",  # JSON list of {role, content}: the conversation up to the answer
    "response_format",  # text | json
    "response",  # what the model answered
    "completion",  # the training target
    "completion_source",  # label | edit | response
    "score",  # 0..10
    "score_reasons",  # JSON list of the signals that set the score
    "context",  # JSON object
]

#: A preference pair (DPO) or a contrastive pair (embeddings).
PAIR_COLUMNS = [
    "pair_id",
    "org_id",
    "user_id",
    "conversation_id",
    "group_id",
    "task",
    "system_prompt",
    "messages",  # JSON prompt messages (for embeddings: the query as one user message)
    "chosen",  # preferred output / saved item (the positive)
    "rejected",  # worse output / skipped item (the negative)
    "source",  # edit | regenerated | saved_vs_skipped
    "score",
]

#: Columns that identify people or tenants; anonymized_dataset drops them (keeping hashes).
ID_COLUMNS = ["org_id", "user_id", "conversation_id"]


def scored_dir(target: str) -> Path:
    return _sub(target, "scored")


def tenant_counts_dir(family: str, org_id: str) -> Path:
    """Where `sync_target_partitions` keeps one candidate tenant's scored state (`pipeline/curation/tenants.py`)."""
    return _sub(family, "tenant_counts") / org_id


def anonymized_dir(target: str) -> Path:
    return _sub(target, "anonymized")


def anonymized_version_dir(target: str, version: str) -> Path:
    path = anonymized_dir(target) / version
    path.mkdir(parents=True, exist_ok=True)
    return path


def seal_anonymized_version(target: str, staging: Path) -> tuple[str, Path]:
    """Name a staged anonymized version by the hash of its files and move it into place.

    Equal content gives the same version (and keeps the folder already there); the checks and
    `training_file` read `anonymized/<version>/`, never a file a later run may overwrite.
    """
    import hashlib
    import shutil

    digest = hashlib.sha256()
    for name in ("examples.parquet", "pairs.parquet"):
        digest.update(name.encode())
        digest.update((staging / name).read_bytes())
    version = f"anon-{digest.hexdigest()[:16]}"
    final = anonymized_dir(target) / version
    if final.exists():
        shutil.rmtree(staging)
    else:
        staging.replace(final)
    return version, final


def dataset_dir(target: str, version: str) -> Path:
    return _sub(target, version)


def jobs_dir(target: str) -> Path:
    return _sub(target, "jobs")


def _sub(target: str, name: str) -> Path:
    path = target_dir(target) / name
    path.mkdir(parents=True, exist_ok=True)
    return path


# ---------------------------------------------------------------- dataset versions (training_file)
#
# training_file writes FLYWHEEL_HOME/<target>/<version>/manifest.json and reports the version as
# its data version; which version downstream stages use is what Dagster recorded (the latest
# materialization whose blocking checks passed, see pipeline/defs/gate_status.py), not a pointer
# file. A manifest:
#
#   {"target", "dataset_version", "method", "backend", "base_model",
#    "backend_format": the key of `files` the target's backend trains on,
#    "files": {format: {"train": abs path, "validation": abs path | null}},
#    "counts": {...}, "created_at": RFC 3339}
#
# Formats: openai_chat, openai_dpo, trl_messages, trl_prompt_completion, trl_preference,
# instruction, embedding_triplets. The backend picks: openai+sft -> openai_chat,
# openai+dpo -> openai_dpo, huggingface+sft -> trl_messages, huggingface+dpo -> trl_preference,
# sentence_transformers -> embedding_triplets.

BACKEND_FORMAT = {
    ("openai", "sft"): "openai_chat",
    ("openai", "dpo"): "openai_dpo",
    ("huggingface", "sft"): "trl_messages",
    ("huggingface", "dpo"): "trl_preference",
    ("sentence_transformers", "embedding"): "embedding_triplets",
}


def write_atomic(path: Path, text: str) -> None:
    """Write a text file so readers see the old or the new content, never half of it.

    The temporary name is unique per process and thread, so concurrent writers (a job's worker and
    the sensor polling it, two threads of one server) never write into each other's temporary file.
    """
    import os
    import threading

    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def write_manifest(target: str, version: str, manifest: dict) -> Path:
    """Write the version's manifest (the last file of a version: its presence means the version is complete)."""
    import json

    path = dataset_dir(target, version) / "manifest.json"
    write_atomic(path, json.dumps(manifest, indent=2, sort_keys=True))
    return path


def read_manifest(target: str, version: str) -> dict:
    """The manifest of one dataset version of a target."""
    import json

    path = target_dir(target) / version / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(f"no manifest for {target!r} version {version!r} at {path}")
    return json.loads(path.read_text(encoding="utf-8"))


def evaluations_dir(target: str) -> Path:
    """FLYWHEEL_HOME/<target>/evaluations/: one JSON report per evaluation (`<evaluation id>.json`)."""
    return _sub(target, "evaluations")
