"""A loopback HTTP server that speaks the part of the Hugging Face Hub protocol huggingface_hub uses.

Driven by the real `huggingface_hub.HfApi(endpoint=server.url)`. Routes live in a table
(`FakeHub.routes`: (method, regex) -> handler), so other helpers add endpoints (model repos,
the Jobs API) with `hub.route("GET", r"/api/jobs/(?P<ns>[^/]+)")(handler)`.

Implemented (as huggingface_hub 2.4's `HfApi` calls them):

* `POST /api/repos/create`                          create_repo (409 when it exists)
* `GET  /api/{type}s/{ns}/{name}[/revision/{rev}]`  repo_info / dataset_info / model_info
* `POST /api/validate-yaml`                         create_commit validates a README.md's YAML header
* `POST /api/{type}s/{ns}/{name}/preupload/{rev}`   upload modes; every file is "regular" (inline base64
                                                    in the commit): no LFS or Xet transfer is needed
* `POST /api/{type}s/{ns}/{name}/commit/{rev}`      the NDJSON commit: header, file, deletedFile,
                                                    deletedFolder lines; `lfsFile` is refused (501)
* `GET  /{type}s/{ns}/{name}/resolve/{rev}/{path}`  download a committed file

Every request must carry `Authorization: Bearer <token>` with the server's token (401 otherwise),
so a test also proves the client sent the token. Requests are recorded in `hub.requests`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote, urlparse

from pipeline_tests.fakes.loopback import LoopbackServer

Handler = Callable[["Request"], "Response"]
_TYPES = "models|datasets|spaces"


@dataclass
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    params: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Response:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None


@dataclass
class Repo:
    repo_type: str  # model | dataset | space
    repo_id: str
    private: bool
    files: dict[str, bytes] = field(default_factory=dict)
    commits: list[dict[str, Any]] = field(default_factory=list)

    @property
    def sha(self) -> str:
        return self.commits[-1]["oid"] if self.commits else "0" * 40


class FakeHub(LoopbackServer):
    """State (repos, files, commits) plus a route table; `start()` serves it on 127.0.0.1."""

    def __init__(self, token: str = "hf_fake_token"):
        self.token = token
        self.repos: dict[tuple[str, str], Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._lock = threading.Lock()
        self._install_default_routes()

    # -------------------------------------------------------------- routing

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        """Register a handler for METHOD and a full-match path regex (named groups become params)."""

        def register(handler: Handler) -> Handler:
            self.routes.append((method.upper(), re.compile(pattern), handler))
            return handler

        return register

    def dispatch(self, request: Request) -> Response:
        self.requests.append((request.method, request.path))
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return _error(401, "Invalid credentials in Authorization header")
        for method, pattern, handler in self.routes:
            match = pattern.fullmatch(request.path)
            if match and method == request.method:
                request.params = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
                with self._lock:
                    return handler(request)
        return _error(404, f"no fake route for {request.method} {request.path}")

    # -------------------------------------------------------------- server

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parsed = urlparse(self.path)
                request = Request(
                    method=self.command,
                    path=parsed.path,
                    query=parsed.query,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                    params={},
                )
                try:
                    response = hub.dispatch(request)
                except Exception as exc:  # noqa: BLE001 - a bug in a fake route: answer 500 with the reason
                    response = _error(500, f"fake hub error: {exc!r}")
                payload = response.raw if response.raw is not None else json.dumps(response.body).encode()
                self.send_response(response.status)
                headers = {"Content-Type": "application/json", **response.headers}
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

        return _Handler

    # -------------------------------------------------------------- helpers for tests

    def repo(self, repo_id: str, repo_type: str = "dataset") -> Repo:
        return self.repos[(repo_type, repo_id)]

    # -------------------------------------------------------------- default routes

    def _install_default_routes(self) -> None:
        repo_path = rf"/api/(?P<type>{_TYPES})/(?P<repo>[^/]+/[^/]+)"
        self.route("POST", r"/api/repos/create")(self._create_repo)
        self.route("POST", r"/api/validate-yaml")(lambda request: Response(200, {"errors": [], "warnings": []}))
        self.route("GET", repo_path)(self._repo_info)
        self.route("GET", repo_path + r"/revision/(?P<rev>[^/]+)")(self._repo_info)
        self.route("POST", repo_path + r"/preupload/(?P<rev>[^/]+)")(self._preupload)
        self.route("POST", repo_path + r"/commit/(?P<rev>[^/]+)")(self._commit)
        self.route("GET", rf"/(?P<type>{_TYPES})/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)")(
            self._resolve
        )
        self.route("GET", r"/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)")(self._resolve)

    def _find(self, request: Request) -> Repo | None:
        repo_type = request.params.get("type", "models")[:-1]
        return self.repos.get((repo_type, request.params["repo"]))

    def _create_repo(self, request: Request) -> Response:
        payload = request.json()
        repo_type = payload.get("type") or "model"
        repo_id = f"{payload['organization']}/{payload['name']}" if payload.get("organization") else payload["name"]
        if "/" not in repo_id:
            repo_id = f"fake-user/{repo_id}"
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        body = {"url": f"{self.url}/{prefix}{repo_id}", "name": repo_id, "id": repo_id}
        if (repo_type, repo_id) in self.repos:  # the Hub answers 409 with the repo's url
            return Response(409, {**body, "error": "You already created this repo"},
                            headers={"X-Error-Message": "You already created this repo"})
        self.repos[(repo_type, repo_id)] = Repo(repo_type, repo_id, payload.get("visibility") == "private")
        return Response(200, body)

    def _repo_info(self, request: Request) -> Response:
        repo = self._find(request)
        if repo is None:
            return _error(404, "Repository not found", code="RepoNotFound")
        return Response(
            200,
            {
                "id": repo.repo_id,
                "_id": hashlib.sha1(repo.repo_id.encode()).hexdigest()[:24],
                "private": repo.private,
                "sha": repo.sha,
                "siblings": [{"rfilename": name} for name in sorted(repo.files)],
                "tags": [],
                "downloads": 0,
                "likes": 0,
            },
        )

    def _preupload(self, request: Request) -> Response:
        repo = self._find(request)
        if repo is None:
            return _error(404, "Repository not found", code="RepoNotFound")
        files = []
        for entry in request.json()["files"]:
            existing = repo.files.get(entry["path"])
            files.append(
                {
                    "path": entry["path"],
                    "uploadMode": "regular",
                    "shouldIgnore": False,
                    "oid": _git_oid(existing) if existing is not None else None,
                }
            )
        return Response(200, {"files": files, "commitOid": repo.sha})

    def _commit(self, request: Request) -> Response:
        repo = self._find(request)
        if repo is None:
            return _error(404, "Repository not found", code="RepoNotFound")
        lines = [json.loads(line) for line in request.body.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            return _error(400, "commit payload must start with a header line")
        header = lines[0]["value"]
        if header.get("parentCommit") and header["parentCommit"] != repo.sha:
            return _error(412, "A commit has happened since. Please refresh and try again.")
        staged = dict(repo.files)
        for line in lines[1:]:
            key, value = line["key"], line["value"]
            if key == "file":
                if value.get("encoding") != "base64":
                    return _error(400, f"unsupported encoding {value.get('encoding')!r}")
                staged[value["path"]] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                if value["path"] not in staged:
                    return _error(404, "A file with this name doesn't exist", code="EntryNotFound")
                del staged[value["path"]]
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                staged = {p: b for p, b in staged.items() if not p.startswith(prefix)}
            elif key == "lfsFile":
                return _error(501, "the fake hub takes regular (inline) files only")
            else:
                return _error(400, f"unknown commit line {key!r}")
        oid = hashlib.sha1(
            (repo.sha + header.get("summary", "") + json.dumps(sorted(staged))).encode()
            + b"".join(staged[p] for p in sorted(staged))
        ).hexdigest()
        repo.files = staged
        repo.commits.append({"oid": oid, "summary": header.get("summary"), "description": header.get("description")})
        prefix = "" if repo.repo_type == "model" else f"{repo.repo_type}s/"
        return Response(
            200,
            {
                "success": True,
                "commitOid": oid,
                "commitUrl": f"{self.url}/{prefix}{repo.repo_id}/commit/{oid}",
                "pullRequestUrl": None,
            },
        )

    def _resolve(self, request: Request) -> Response:
        repo = self._find(request)
        if repo is None or request.params["file"] not in repo.files:
            return _error(404, "Entry not found", code="EntryNotFound")
        content = repo.files[request.params["file"]]
        return Response(
            200,
            raw=content,
            headers={"Content-Type": "application/octet-stream", "ETag": f'"{_git_oid(content)}"', "X-Repo-Commit": repo.sha},
        )


def _git_oid(content: bytes) -> str:
    """The git blob id huggingface_hub compares with a local file's (`sha1("blob <len>\\0" + data)`)."""
    return hashlib.sha1(b"blob " + str(len(content)).encode() + b"\0" + content).hexdigest()


def _error(status: int, message: str, code: str | None = None) -> Response:
    headers = {"X-Error-Message": message}
    if code:
        headers["X-Error-Code"] = code
    return Response(status, {"error": message}, headers=headers)
