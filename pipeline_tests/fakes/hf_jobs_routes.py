"""Hugging Face Jobs API and the routes model downloads need, added to the loopback `FakeHub`.

`install_jobs(hub)` registers, on the fake hub's route table, what huggingface_hub 2.4 calls for
`HfApi.whoami`, `run_job`, `inspect_job`, `list_jobs` (label and stage filters), `cancel_job` and
`fetch_job_logs` (server-sent events), plus `HEAD` on `resolve` URLs (file metadata before a
download: `hf_hub_download`, `snapshot_download`). A test drives a job through its stages with
`FakeJobs.set_stage` and writes its log lines with `FakeJobs.log`, as the real hardware would.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from pipeline_tests.fakes.hf_hub_server import FakeHub, Request, Response, _error

USER = "fake-user"
STAGES = ("SCHEDULING", "RUNNING", "COMPLETED", "ERROR", "CANCELED", "DELETED")


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class FakeJob:
    id: str
    namespace: str
    spec: dict[str, Any]
    created_at: str
    stage: str = "SCHEDULING"
    message: str | None = None
    logs: list[tuple[str, str]] = field(default_factory=list)  # (timestamp, line)
    finished_at: str | None = None

    def info(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "createdAt": self.created_at,
            "finishedAt": self.finished_at,
            "dockerImage": self.spec.get("dockerImage"),
            "spaceId": self.spec.get("spaceId"),
            "command": self.spec.get("command"),
            "arguments": self.spec.get("arguments", []),
            "environment": self.spec.get("environment", {}),
            # the Hub never sends secret values back, only their names
            "secrets": {name: None for name in self.spec.get("secrets", {})},
            "flavor": self.spec.get("flavor"),
            "labels": self.spec.get("labels"),
            "status": {"stage": self.stage, "message": self.message},
            "owner": {"id": hashlib.sha1(self.namespace.encode()).hexdigest()[:24], "name": self.namespace,
                      "type": "user"},
        }


class FakeJobs:
    """The Jobs part of the fake Hub: submitted specs (secrets included, for assertions) and their stages."""

    def __init__(self, hub: FakeHub, user: str = USER):
        self.hub = hub
        self.user = user
        self.jobs: dict[str, FakeJob] = {}
        self._counter = 0

    # ---- what a test does in place of the remote hardware
    def set_stage(self, job_id: str, stage: str, message: str | None = None) -> None:
        assert stage in STAGES, stage
        job = self.jobs[job_id]
        job.stage, job.message = stage, message
        if stage in ("COMPLETED", "ERROR", "CANCELED", "DELETED"):
            job.finished_at = job.finished_at or _now()

    def log(self, job_id: str, *lines: str) -> None:
        for line in lines:
            self.jobs[job_id].logs.append((_now(), line))

    def only(self) -> FakeJob:
        assert len(self.jobs) == 1, f"expected one job, found {len(self.jobs)}"
        return next(iter(self.jobs.values()))

    # ---- routes
    def whoami(self, request: Request) -> Response:
        return Response(200, {"type": "user", "id": "u1", "name": self.user, "fullname": "Fake User",
                              "orgs": [], "auth": {"type": "access_token"}})

    def create(self, request: Request) -> Response:
        spec = request.json()
        for key in ("command", "flavor"):
            if key not in spec:
                return _error(400, f"job spec is missing {key!r}")
        if not spec.get("dockerImage") and not spec.get("spaceId"):
            return _error(400, "job spec needs dockerImage or spaceId")
        self._counter += 1
        job_id = hashlib.sha1(f"{self._counter}:{json.dumps(spec, sort_keys=True)}".encode()).hexdigest()[:24]
        job = FakeJob(job_id, request.params["ns"], spec, _now())
        self.jobs[job_id] = job
        return Response(200, job.info())

    def _job(self, request: Request) -> FakeJob | None:
        job = self.jobs.get(request.params["id"])
        return job if job is not None and job.namespace == request.params["ns"] else None

    def inspect(self, request: Request) -> Response:
        job = self._job(request)
        return Response(200, job.info()) if job else _error(404, "Job not found")

    def list(self, request: Request) -> Response:
        query = parse_qs(request.query)
        wanted_labels = [item.split("=", 1) for item in query.get("label", [])]
        wanted_stages = set(query.get("stage", []))
        out = []
        for job in self.jobs.values():
            labels = job.spec.get("labels") or {}
            if job.namespace != request.params["ns"]:
                continue
            if any(labels.get(k) != v for k, v in wanted_labels):
                continue
            if wanted_stages and job.stage not in wanted_stages:
                continue
            out.append(job.info())
        return Response(200, out)

    def cancel(self, request: Request) -> Response:
        job = self._job(request)
        if job is None:
            return _error(404, "Job not found")
        if job.stage in ("SCHEDULING", "RUNNING"):
            self.set_stage(job.id, "CANCELED")
        return Response(200, {})

    def logs(self, request: Request) -> Response:
        job = self._job(request)
        if job is None:
            return _error(404, "Job not found")
        tail = parse_qs(request.query).get("tail")
        lines = job.logs[-int(tail[0]):] if tail else job.logs
        events = [("", "===== Job started at " + job.created_at + " =====")] + list(lines)
        body = "".join(f"data: {json.dumps({'data': line, 'timestamp': ts or job.created_at})}\n\n"
                       for ts, line in events)
        return Response(200, raw=body.encode(), headers={"Content-Type": "text/event-stream"})


def _tree(hub: FakeHub, request: Request) -> Response:
    """`list_repo_tree` (snapshot_download lists a repo with it): every file, recursively, one page."""
    repo = hub._find(request)
    if repo is None:
        return _error(404, "Repository not found", code="RepoNotFound")
    prefix = request.params.get("path", "").strip("/")
    entries = [hub.file_entry(repo, path) for path in sorted(repo.files) if not prefix or path.startswith(prefix + "/")]
    return Response(200, entries)


def install_jobs(hub: FakeHub, user: str = USER) -> FakeJobs:
    """Add whoami, the Jobs API and HEAD on file URLs to `hub`; returns the jobs state for the test."""
    jobs = FakeJobs(hub, user)
    ns_path = r"/api/jobs/(?P<ns>[^/]+)"
    hub.route("GET", r"/api/whoami-v2")(jobs.whoami)
    hub.route("POST", ns_path)(jobs.create)
    hub.route("GET", ns_path)(jobs.list)
    hub.route("GET", ns_path + r"/(?P<id>[^/]+)")(jobs.inspect)
    hub.route("POST", ns_path + r"/(?P<id>[^/]+)/cancel")(jobs.cancel)
    hub.route("GET", ns_path + r"/(?P<id>[^/]+)/logs")(jobs.logs)
    # file metadata before a download: the same answer as GET, without a body
    types = "models|datasets|spaces"
    hub.route("HEAD", rf"/(?P<type>{types})/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)")(hub._resolve)
    hub.route("HEAD", r"/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)")(hub._resolve)
    tree = rf"/api/(?P<type>{types})/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/]+)"
    hub.route("GET", tree)(lambda request: _tree(hub, request))
    hub.route("GET", tree + r"/(?P<path>.+)")(lambda request: _tree(hub, request))
    return jobs
