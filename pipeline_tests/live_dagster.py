"""A live `dagster dev` (webserver and daemon) on loopback, over temporary homes, for the live tests.

`live_dagster(...)` makes a temporary `DAGSTER_HOME` whose dagster.yaml is the project's with its
SQLite storage moved under the temp folder (concurrency, pools and the rest kept), a temporary
`FLYWHEEL_HOME` with the seeded log imported through the `flywheel` CLI (as the demo does), a
targets file of the test's own (`FLYWHEEL_TARGETS`), and short sensor intervals; it starts
`python -m dagster dev` in its own process group, waits for `/server_info`, and on the way out
terminates the whole group (SIGTERM, then SIGKILL) and checks that nothing it started is left
alive or listening. `LiveDagster.gql` talks to the same GraphQL API the UI uses.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import psutil
import requests
import yaml

from pipeline_tests.fakes.loopback import LoopbackServer

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

#: seconds between two ticks of each sensor in the live instance. The sensor daemon itself wakes
#: about every 5 s to see which sensors are due, so a shorter interval means "every daemon loop".
SENSOR_SECONDS = {
    "FLYWHEEL_PARTITIONS_SYNC_SECONDS": "2",
    "FLYWHEEL_RETRAIN_SENSOR_SECONDS": "2",
    "FLYWHEEL_AUTOMATION_SECONDS": "5",
    "FLYWHEEL_JOB_POLL_SECONDS": "5",
    "FLYWHEEL_ALERT_SENSOR_SECONDS": "2",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def instance_config(home: Path) -> dict[str, Any]:
    """The project's dagster.yaml with every storage folder under `home` (concurrency and pools kept)."""
    config = yaml.safe_load((ROOT / "dagster.yaml").read_text(encoding="utf-8"))
    config["storage"] = {"sqlite": {"base_dir": str(home / "storage")}}
    config["compute_logs"]["config"]["base_dir"] = str(home / "logs")
    config["local_artifact_storage"]["config"]["base_dir"] = str(home / "artifacts")
    return config


class WebhookSink(LoopbackServer):
    """A loopback Slack-style incoming webhook: keeps every JSON body POSTed to it."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with sink._lock:
                    sink.messages.append(json.loads(body or b"{}"))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/flywheel"


@dataclass
class LiveDagster:
    """A running `dagster dev`: its URL, homes and environment, and GraphQL helpers."""

    port: int
    proc: subprocess.Popen
    env: dict[str, str]
    dagster_home: Path
    flywheel_home: Path
    log_path: Path
    location: str = "flywheel"
    started_s: float = field(default_factory=time.monotonic)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def gql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = requests.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=60)
        response.raise_for_status()
        body = response.json()
        assert not body.get("errors"), body["errors"]
        return body["data"]

    def client(self):
        from dagster_graphql import DagsterGraphQLClient

        return DagsterGraphQLClient("127.0.0.1", port_number=self.port, timeout=60)

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]

    def flywheel(self, *args: str) -> str:
        """The `flywheel` CLI against the same homes."""
        done = subprocess.run([str(BIN / "flywheel"), *args], env=self.env, cwd=ROOT, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    def wait_for(self, stage: str, probe: Callable[[], Any], deadline_s: float, every_s: float = 2.0) -> Any:
        """Polls `probe` until it returns something truthy; fails naming the stage that never happened."""
        last: Any = None
        while time.monotonic() < deadline_s:
            assert self.proc.poll() is None, f"dagster dev exited ({self.proc.returncode}) before: {stage}\n{self.log_tail()}"
            last = probe()
            if last:
                return last
            time.sleep(every_s)
        raise AssertionError(f"never happened: {stage} (last seen: {last!r}); dagster dev's log ends:\n{self.log_tail()}")


def _stop(proc: subprocess.Popen, grace_s: float = 30.0) -> list[psutil.Process]:
    """SIGTERM to the whole process group, SIGKILL after `grace_s`; returns the processes still alive."""
    try:
        family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        family = []
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        pass
    _gone, alive = psutil.wait_procs(family, timeout=max(1.0, grace_s / 3))
    if alive or proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        for p in alive:  # a child that left the group (its own session) is still ours
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
        proc.wait(timeout=10)
        _gone, alive = psutil.wait_procs(alive, timeout=5)
    return [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


@contextlib.contextmanager
def live_dagster(root: Path, targets: dict[str, Any], log_records: Path, extra_env: dict[str, str] | None = None,
                 startup_s: float = 120.0) -> Iterator[LiveDagster]:
    """`dagster dev` over temporary homes under `root`, with `targets` and the records of `log_records` imported."""
    dagster_home, flywheel_home = root / "dagster_home", root / "flywheel_home"
    dagster_home.mkdir(parents=True)
    flywheel_home.mkdir(parents=True)
    (dagster_home / "dagster.yaml").write_text(yaml.safe_dump(instance_config(dagster_home)), encoding="utf-8")
    targets_path = root / "targets.yaml"
    targets_path.write_text(yaml.safe_dump({"targets": targets}, sort_keys=False), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLYWHEEL_", "DAGSTER_"))}
    env.update({
        "DAGSTER_HOME": str(dagster_home), "FLYWHEEL_HOME": str(flywheel_home), "FLYWHEEL_TARGETS": str(targets_path),
        "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "TLDEXTRACT_CACHE": str(flywheel_home / "tldextract"),
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}", **SENSOR_SECONDS, **(extra_env or {}),
    })
    port = free_port()
    live = LiveDagster(port, None, env, dagster_home, flywheel_home, root / "dagster_dev.log")  # type: ignore[arg-type]
    live.flywheel("import", str(log_records))
    with live.log_path.open("w", encoding="utf-8") as log:
        live.proc = subprocess.Popen(
            [sys.executable, "-m", "dagster", "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        live.wait_for("the webserver answers /server_info", lambda: _server_info(live), time.monotonic() + startup_s, 1.0)
        live.wait_for(f"the code location {live.location!r} loads", lambda: _location_loaded(live),
                      time.monotonic() + startup_s, 1.0)
        yield live
    finally:
        left = _stop(live.proc)
        assert not left, f"processes left after stopping dagster dev: {[(p.pid, p.name()) for p in left]}"
        assert not listening(port), f"something still listens on 127.0.0.1:{port}"


def _server_info(live: LiveDagster) -> bool:
    try:
        return requests.get(f"{live.url}/server_info", timeout=2).ok
    except requests.ConnectionError:
        return False


def _location_loaded(live: LiveDagster) -> bool:
    data = live.gql("""{ workspaceOrError { ... on Workspace { locationEntries { name
        locationOrLoadError { __typename ... on PythonError { message } } } } } }""")
    entries = {e["name"]: e["locationOrLoadError"] for e in data["workspaceOrError"]["locationEntries"]}
    entry = entries.get(live.location) or {}
    assert entry.get("__typename") != "PythonError", f"the code location failed to load: {entry.get('message')}"
    return entry.get("__typename") == "RepositoryLocation"
