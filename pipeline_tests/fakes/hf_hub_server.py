"""A loopback HTTP server that speaks the part of the Hugging Face Hub protocol huggingface_hub uses.

Driven by the real `huggingface_hub.HfApi(endpoint=server.url)`. Routes live in a table
(`FakeHub.routes`: (method, regex) -> handler), so other helpers add endpoints (model repos,
the Jobs API) with `hub.route("GET", r"/api/jobs/(?P<ns>[^/]+)")(handler)`.

Implemented (as huggingface_hub 2.4's `HfApi` calls them):

* `POST /api/repos/create`                          create_repo (409 when it exists)
* `GET  /api/{type}s/{ns}/{name}[/revision/{rev}]`  repo_info / dataset_info / model_info
* `POST /api/validate-yaml`                         create_commit validates a README.md's YAML header
* `POST /api/{type}s/{ns}/{name}/preupload/{rev}`   upload modes, decided as the Hub does (`upload_mode`):
                                                    `lfs` for binary files (the LFS patterns of the
                                                    `.gitattributes` the Hub writes into a new repo, e.g.
                                                    `*.safetensors`, or a NUL byte in the sample) and for
                                                    files of `lfs_threshold` bytes or more (10 MiB, the
                                                    Hub's); `regular` (inline base64) for the rest
* `POST /[{type}s/]{ns}/{name}.git/info/lfs/objects/batch`   the git-lfs batch API, `basic` transfer:
                                                    an upload action (a signed storage URL) and a verify
                                                    action per object not stored yet; none for one stored
* `PUT  /fake-lfs-storage/...?signature=`           the storage behind the upload href (like S3's presigned
                                                    URL: no Authorization header, the signature is the
                                                    credential); refuses content whose sha256 or size is
                                                    not the one the batch announced
* `POST /[{type}s/]{ns}/{name}.git/info/lfs/objects/verify`  404 for an object that was never stored
* `POST /api/{type}s/{ns}/{name}/commit/{rev}`      the NDJSON commit: header, file, lfsFile, deletedFile,
                                                    deletedFolder lines; like the Hub it refuses an `lfsFile`
                                                    whose object was never uploaded (or whose size differs)
                                                    and a binary file sent inline as `file`
* `GET  /{type}s/{ns}/{name}/resolve/{rev}/{path}`  download a committed file (an LFS file with the
                                                    Hub's `X-Linked-Etag` / `X-Linked-Size`, its sha256)

Xet: huggingface_hub 2.4 picks Xet on its own whenever `hf_xet` is installed (nothing the server
says turns it off), and the fake speaks LFS only. `client_online(monkeypatch)` lets the client reach
the fake and switches Xet off (`HF_HUB_DISABLE_XET`), so binary files take the LFS path; the fake
answers the Xet token routes with a 501 that says so, and never sends Xet headers on downloads.

Every request must carry `Authorization: Bearer <token>` with the server's token (401 otherwise),
so a test also proves the client sent the token; the storage PUT is checked by its signature instead.
Requests are recorded in `hub.requests`, LFS uploads in `hub.lfs_uploads`.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import hmac
import json
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from pipeline_tests.fakes.loopback import LoopbackServer

Handler = Callable[["Request"], "Response"]
_TYPES = "models|datasets|spaces"
#: the LFS patterns of the `.gitattributes` the Hub writes into every new repo
LFS_PATTERNS = (
    "*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.ftz", "*.gz", "*.h5", "*.joblib", "*.lfs.*", "*.mlmodel",
    "*.model", "*.msgpack", "*.npy", "*.npz", "*.onnx", "*.ot", "*.parquet", "*.pb", "*.pickle", "*.pkl", "*.pt",
    "*.pth", "*.rar", "*.safetensors", "saved_model/**/*", "*.tar.*", "*.tar", "*.tflite", "*.tgz", "*.wasm",
    "*.xz", "*.zip", "*.zst", "*tfevents*",
)
#: files this size or larger go through LFS on the Hub, whatever their type
LFS_THRESHOLD = 10 * 1024 * 1024
LFS_POINTER = "version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n"
BINARY_REFUSED = (
    "Your push was rejected because it contains binary files. Please use https://huggingface.co/docs/hub/xet "
    "to store binary files. Offending files: {paths}"
)
MISSING_LFS_OBJECT = (
    "Your push was rejected because an LFS pointer pointed to a file that does not exist. "
    "Offending file: {path}"
)


def upload_mode(path: str, size: int, sample: bytes, threshold: int = LFS_THRESHOLD) -> str:
    """`lfs` or `regular`, as the Hub decides a file's upload mode (an empty file is always regular)."""
    if size == 0:
        return "regular"
    name = path.rsplit("/", 1)[-1]
    binary_name = any(fnmatch.fnmatch(path if "/" in p else name, p.replace("**/", "")) for p in LFS_PATTERNS)
    return "lfs" if binary_name or size >= threshold or b"\0" in sample[:512] else "regular"


def client_online(monkeypatch) -> None:
    """Let huggingface_hub reach a loopback fake in this test, over LFS rather than Xet.

    conftest sets HF_HUB_OFFLINE=1 (no test may reach the real Hub) and huggingface_hub reads it once, at
    import: the module constant is switched for this test only. Xet likewise: with `hf_xet` installed the
    client would upload binary files to a Xet CAS the fake does not have.
    """
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)


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
    #: path -> sha256 of the committed files stored in LFS
    lfs: dict[str, str] = field(default_factory=dict)
    #: the repo's LFS storage: sha256 -> content, uploaded (and checked) before a commit may point at it
    lfs_objects: dict[str, bytes] = field(default_factory=dict)

    @property
    def sha(self) -> str:
        return self.commits[-1]["oid"] if self.commits else "0" * 40

    @property
    def url_prefix(self) -> str:
        return "" if self.repo_type == "model" else f"{self.repo_type}s/"

    def oid(self, path: str) -> str:
        """What the Hub reports as a file's oid: the sha256 of an LFS file, the git blob id of a regular one."""
        return self.lfs[path] if path in self.lfs else _git_oid(self.files[path])


@dataclass(frozen=True)
class LfsUpload:
    """One object PUT to the fake's LFS storage, its sha256 and size checked."""

    repo_type: str
    repo_id: str
    oid: str
    size: int


class FakeHub(LoopbackServer):
    """State (repos, files, commits) plus a route table; `start()` serves it on 127.0.0.1."""

    def __init__(self, token: str = "hf_fake_token", lfs_threshold: int = LFS_THRESHOLD):
        self.token = token
        self.lfs_threshold = lfs_threshold
        self.repos: dict[tuple[str, str], Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self.lfs_uploads: list[LfsUpload] = []
        self.routes: list[tuple[str, re.Pattern[str], Handler, bool]] = []
        self._lock = threading.Lock()
        self._signing_key = secrets.token_bytes(16)
        self._install_default_routes()

    # -------------------------------------------------------------- routing

    def route(self, method: str, pattern: str, *, bearer: bool = True) -> Callable[[Handler], Handler]:
        """Register a handler for METHOD and a full-match path regex (named groups become params).

        `bearer=False`: the route checks its own credential (a signed URL) instead of the token.
        """

        def register(handler: Handler) -> Handler:
            self.routes.append((method.upper(), re.compile(pattern), handler, bearer))
            return handler

        return register

    def dispatch(self, request: Request) -> Response:
        self.requests.append((request.method, request.path))
        authorized = request.headers.get("authorization") == f"Bearer {self.token}"
        for method, pattern, handler, bearer in self.routes:
            match = pattern.fullmatch(request.path)
            if match and method == request.method:
                if bearer and not authorized:
                    break
                request.params = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
                with self._lock:
                    return handler(request)
        if not authorized:
            return _error(401, "Invalid credentials in Authorization header")
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

            def _body(self) -> bytes:
                if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                    chunks = []
                    while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                    while self.rfile.readline().strip():  # trailers, up to the blank line
                        pass
                    return b"".join(chunks)
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _serve(self) -> None:
                body = self._body()
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

    def uploaded_through_lfs(self, repo: Repo, path: str) -> bool:
        """The committed file is an LFS pointer whose object this server received, sha256 and size checked."""
        oid = repo.lfs.get(path)
        return oid is not None and LfsUpload(repo.repo_type, repo.repo_id, oid, len(repo.files[path])) in self.lfs_uploads

    def file_entry(self, repo: Repo, path: str) -> dict[str, Any]:
        """A file as `list_repo_tree` lists it (the git oid is the pointer's for an LFS file)."""
        content = repo.files[path]
        if path not in repo.lfs:
            return {"type": "file", "path": path, "size": len(content), "oid": _git_oid(content)}
        pointer = LFS_POINTER.format(oid=repo.lfs[path], size=len(content)).encode()
        return {"type": "file", "path": path, "size": len(content), "oid": _git_oid(pointer),
                "lfs": {"oid": repo.lfs[path], "size": len(content), "pointerSize": len(pointer)}}

    # -------------------------------------------------------------- default routes

    def _install_default_routes(self) -> None:
        repo_path = rf"/api/(?P<type>{_TYPES})/(?P<repo>[^/]+/[^/]+)"
        self.route("POST", r"/api/repos/create")(self._create_repo)
        self.route("POST", r"/api/validate-yaml")(lambda request: Response(200, {"errors": [], "warnings": []}))
        self.route("GET", repo_path)(self._repo_info)
        self.route("GET", repo_path + r"/revision/(?P<rev>[^/]+)")(self._repo_info)
        self.route("POST", repo_path + r"/preupload/(?P<rev>[^/]+)")(self._preupload)
        self.route("POST", repo_path + r"/commit/(?P<rev>[^/]+)")(self._commit)
        self.route("GET", repo_path + r"/xet-(?P<kind>read|write)-token(?:/(?P<rev>[^/]+))?")(self._xet_token)
        git_path = r"/(?:(?P<type>datasets|spaces)/)?(?P<repo>[^/]+/[^/]+)\.git/info/lfs/objects"
        self.route("POST", git_path + r"/batch")(self._lfs_batch)
        self.route("POST", git_path + r"/verify")(self._lfs_verify)
        self.route("PUT", rf"/fake-lfs-storage/(?P<type>{_TYPES})/(?P<repo>[^/]+/[^/]+)/(?P<oid>[0-9a-f]{{64}})",
                   bearer=False)(self._lfs_store)
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
        repo = Repo(repo_type, repo_id, payload.get("visibility") == "private")
        body = {"url": f"{self.url}/{repo.url_prefix}{repo_id}", "name": repo_id, "id": repo_id}
        if (repo_type, repo_id) in self.repos:  # the Hub answers 409 with the repo's url
            return Response(409, {**body, "error": "You already created this repo"},
                            headers={"X-Error-Message": "You already created this repo"})
        self.repos[(repo_type, repo_id)] = repo
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
            path = entry["path"]
            mode = upload_mode(path, int(entry["size"]), base64.b64decode(entry.get("sample") or ""), self.lfs_threshold)
            files.append(
                {
                    "path": path,
                    "uploadMode": mode,
                    "shouldIgnore": False,
                    "oid": repo.oid(path) if path in repo.files else None,
                }
            )
        return Response(200, {"files": files, "commitOid": repo.sha})

    def _xet_token(self, request: Request) -> Response:
        return _error(501, "the fake Hub speaks LFS, not Xet: let the client in with client_online(monkeypatch), "
                           "which sets huggingface_hub.constants.HF_HUB_DISABLE_XET")

    # -------------------------------------------------------------- git-lfs (batch API, basic transfer)

    def _signature(self, repo: Repo, oid: str, size: int) -> str:
        message = f"{repo.repo_type}/{repo.repo_id}/{oid}/{size}".encode()
        return hmac.new(self._signing_key, message, hashlib.sha256).hexdigest()

    def _lfs_batch(self, request: Request) -> Response:
        repo = self._find(request)
        if repo is None:
            return _error(404, "Repository not found", code="RepoNotFound")
        payload = request.json()
        if payload.get("operation") != "upload":
            return _error(422, f"the fake takes LFS uploads only, not {payload.get('operation')!r}")
        if "basic" not in (payload.get("transfers") or ["basic"]) or payload.get("hash_algo", "sha256") != "sha256":
            return _error(422, "the fake speaks the basic transfer with sha256 oids only")
        objects = []
        for obj in payload.get("objects") or []:
            oid, size = obj.get("oid"), obj.get("size")
            entry = {"oid": oid, "size": size}
            if not isinstance(oid, str) or not re.fullmatch(r"[0-9a-f]{64}", oid) or not isinstance(size, int) or size < 0:
                objects.append({**entry, "error": {"code": 422, "message": "oid must be a sha256 hex and size >= 0"}})
            elif oid in repo.lfs_objects:
                objects.append(entry)  # stored already: no actions, the client skips the upload
            else:
                href = (f"{self.url}/fake-lfs-storage/{repo.repo_type}s/{repo.repo_id}/{oid}"
                        f"?size={size}&signature={self._signature(repo, oid, size)}")
                verify = f"{self.url}/{repo.url_prefix}{repo.repo_id}.git/info/lfs/objects/verify"
                objects.append({**entry, "authenticated": True,
                                "actions": {"upload": {"href": href, "expires_in": 900}, "verify": {"href": verify}}})
        return Response(200, {"transfer": "basic", "objects": objects},
                        headers={"Content-Type": "application/vnd.git-lfs+json"})

    def _lfs_store(self, request: Request) -> Response:
        repo = self._find(request)
        query = parse_qs(request.query)
        size = int((query.get("size") or ["-1"])[0])
        oid = request.params["oid"]
        signature = (query.get("signature") or [""])[0]
        if repo is None or not hmac.compare_digest(signature, self._signature(repo, oid, size)):
            return Response(403, raw=b"<Error><Code>SignatureDoesNotMatch</Code></Error>",
                            headers={"Content-Type": "application/xml"})
        if len(request.body) != size or hashlib.sha256(request.body).hexdigest() != oid:
            return Response(400, raw=b"<Error><Code>BadDigest</Code></Error>", headers={"Content-Type": "application/xml"})
        repo.lfs_objects[oid] = request.body
        self.lfs_uploads.append(LfsUpload(repo.repo_type, repo.repo_id, oid, size))
        return Response(200, raw=b"", headers={"ETag": f'"{hashlib.md5(request.body).hexdigest()}"'})

    def _lfs_verify(self, request: Request) -> Response:
        repo = self._find(request)
        payload = request.json()
        stored = repo.lfs_objects.get(payload.get("oid")) if repo is not None else None
        if stored is None or len(stored) != payload.get("size"):
            return _error(404, f"LFS object {payload.get('oid')} of size {payload.get('size')} was not uploaded")
        return Response(200, {"success": True})

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
        staged, lfs = dict(repo.files), dict(repo.lfs)
        binary = []
        for line in lines[1:]:
            key, value = line["key"], line["value"]
            if key == "file":
                if value.get("encoding") != "base64":
                    return _error(400, f"unsupported encoding {value.get('encoding')!r}")
                content = base64.b64decode(value["content"])
                if upload_mode(value["path"], len(content), content[:512], self.lfs_threshold) == "lfs":
                    binary.append(value["path"])
                staged[value["path"]] = content
                lfs.pop(value["path"], None)
            elif key == "lfsFile":
                stored = repo.lfs_objects.get(value.get("oid")) if value.get("algo", "sha256") == "sha256" else None
                if stored is None or value.get("size", len(stored)) != len(stored):
                    return _error(422, MISSING_LFS_OBJECT.format(path=value.get("path")))
                staged[value["path"]] = stored
                lfs[value["path"]] = value["oid"]
            elif key == "deletedFile":
                if value["path"] not in staged:
                    return _error(404, "A file with this name doesn't exist", code="EntryNotFound")
                del staged[value["path"]]
                lfs.pop(value["path"], None)
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                staged = {p: b for p, b in staged.items() if not p.startswith(prefix)}
                lfs = {p: o for p, o in lfs.items() if p in staged}
            else:
                return _error(400, f"unknown commit line {key!r}")
        if binary:
            return _error(400, BINARY_REFUSED.format(paths=", ".join(binary)))
        oid = hashlib.sha1(
            (repo.sha + header.get("summary", "") + json.dumps(sorted(staged))).encode()
            + b"".join(staged[p] for p in sorted(staged))
        ).hexdigest()
        repo.files, repo.lfs = staged, lfs
        repo.commits.append({"oid": oid, "summary": header.get("summary"), "description": header.get("description")})
        return Response(
            200,
            {
                "success": True,
                "commitOid": oid,
                "commitUrl": f"{self.url}/{repo.url_prefix}{repo.repo_id}/commit/{oid}",
                "pullRequestUrl": None,
            },
        )

    def _resolve(self, request: Request) -> Response:
        repo = self._find(request)
        if repo is None or request.params["file"] not in repo.files:
            return _error(404, "Entry not found", code="EntryNotFound")
        path = request.params["file"]
        content = repo.files[path]
        headers = {"Content-Type": "application/octet-stream", "ETag": f'"{repo.oid(path)}"', "X-Repo-Commit": repo.sha}
        if path in repo.lfs:  # the Hub names an LFS file by its sha256 and size
            headers.update({"X-Linked-Etag": f'"{repo.lfs[path]}"', "X-Linked-Size": str(len(content))})
        return Response(200, raw=content, headers=headers)


def _git_oid(content: bytes) -> str:
    """The git blob id huggingface_hub compares with a local file's (`sha1("blob <len>\\0" + data)`)."""
    return hashlib.sha1(b"blob " + str(len(content)).encode() + b"\0" + content).hexdigest()


def _error(status: int, message: str, code: str | None = None) -> Response:
    headers = {"X-Error-Message": message}
    if code:
        headers["X-Error-Code"] = code
    return Response(status, {"error": message}, headers=headers)
