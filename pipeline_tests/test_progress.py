"""Progress bars: drawn on a terminal's stderr, and nothing at all in pipes, logs, `--json` or `--no-progress`.

The commands run as `python -m pipeline.cli` in a subprocess; "a terminal" is a pseudo-terminal
(`pty.openpty()`, sized like a real one) on the child's stderr, read by a thread while it runs.
Without a terminal, stdout and stderr are what they were before bars existed: seed's counts as one
JSON line on stderr, import's summary on stdout, anonymize's records on stdout and its messages and
counts on stderr.
"""

import fcntl
import io
import json
import os
import pty
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path

import pytest
from tqdm import tqdm

from pipeline.core.progress import NoProgress, input_size, is_terminal, progress

ROOT = Path(__file__).resolve().parents[1]
#: what only a drawn bar writes: a carriage return, tqdm's "NN%|" and its rate
BAR_MARKS = (b"\r", b"%|", b"/s]", b"/s,")


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLYWHEEL_", "TQDM_"))}
    env.update(FLYWHEEL_HOME=str(tmp_path / "home"), FLYWHEEL_SOURCE_URL=f"sqlite:///{tmp_path / 'store.db'}",
               PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    return env


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "pipeline.cli", *args]


def run_piped(args: list[str], env: dict, stdin: Path | None = None) -> subprocess.CompletedProcess:
    with open(stdin or os.devnull, "rb") as handle:
        return subprocess.run(args, stdin=handle, capture_output=True, env=env, timeout=300, check=False)


def run_on_terminal(args: list[str], env: dict, stdin: Path | None = None) -> tuple[int, bytes, bytes]:
    """(exit code, stdout through a pipe, what a terminal on stderr received)."""
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    received: list[bytes] = []

    def read() -> None:
        while True:
            try:
                data = os.read(main, 65536)
            except OSError:  # EIO: the child closed the terminal
                return
            if not data:
                return
            received.append(data)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        with open(stdin or os.devnull, "rb") as handle:
            proc = subprocess.Popen(args, stdin=handle, stdout=subprocess.PIPE, stderr=child, env=env)
        os.close(child)
        stdout, _ = proc.communicate(timeout=300)
        reader.join(timeout=30)
    finally:
        os.close(main)
    return proc.returncode, stdout, b"".join(received)


def has_bar(data: bytes) -> bool:
    return any(mark in data for mark in BAR_MARKS)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """A seeded log (600 interactions) and an anonymize input: 40 records of it with a malformed line."""
    tmp = tmp_path_factory.mktemp("progress")
    log = tmp / "log.jsonl"
    out = run_piped(_cli("seed", "--n", "600", "--seed", "5", "--out", str(log)), _env(tmp))
    assert out.returncode == 0, out.stderr.decode()
    lines = log.read_bytes().splitlines(keepends=True)
    records = [line for line in lines if b'"type":"organization"' not in line][:40]
    anon = tmp / "anon.jsonl"
    anon.write_bytes(b"".join([*records[:20], b"{not json\n", *records[20:]]))
    return {"log": log, "anon": anon}


# ------------------------------------------------------------------ the helper


def test_the_helper_is_a_no_op_off_a_terminal_and_draws_when_asked():
    quiet = io.StringIO()
    with progress(total=10, desc="work", unit="record", file=quiet) as bar:  # a StringIO is no terminal
        bar.update(10)
        bar.count(10)
        bar.write("a message")
    assert isinstance(bar, NoProgress) and not bar.active
    assert quiet.getvalue() == "a message\n"

    shown = io.StringIO()
    with progress(total=10, desc="work", unit="record", enabled=True, counting="row", file=shown) as bar:
        bar.count(3)
        bar.update(10)
    assert bar.active
    assert "work: 100%|" in shown.getvalue() and "10/10" in shown.getvalue() and "3 rows at" in shown.getvalue()

    assert not progress(total=1, enabled=False, file=io.StringIO()).active


def test_terminal_detection_and_input_size(tmp_path):
    main, child = pty.openpty()
    try:
        with open(child, "w", closefd=False) as terminal:
            assert is_terminal(terminal)
            bar = progress(total=1, file=terminal)
            assert bar.active
            bar.close()
        assert not is_terminal(io.StringIO()) and not is_terminal(None)
    finally:
        os.close(child)
        os.close(main)

    data = tmp_path / "d.jsonl"
    data.write_bytes(b"x" * 1000)
    with data.open("rb") as handle:
        assert input_size(handle) == 1000
        handle.read(400)
        assert input_size(handle) == 600
    read_end, write_end = os.pipe()
    with open(read_end, "rb") as pipe, open(write_end, "wb"):
        assert input_size(pipe) is None  # a pipe has no size: the bar shows a count and a rate only
    assert input_size(io.BytesIO(b"abc")) is None


# ------------------------------------------------------------------ the commands, no terminal


def test_without_a_terminal_the_commands_write_what_they_wrote_before(tmp_path, inputs):
    env = _env(tmp_path)

    seed = run_piped(_cli("seed", "--n", "50", "--seed", "5"), env)
    assert seed.returncode == 0
    assert seed.stderr.count(b"\n") == 1 and json.loads(seed.stderr)["interactions"] == 50  # the counts, alone
    assert seed.stdout.count(b"\n") == json.loads(seed.stderr)["records"] and not has_bar(seed.stdout)

    imported = run_piped(_cli("import", str(inputs["log"])), env)
    assert imported.returncode == 0 and imported.stderr == b""
    assert imported.stdout.decode().startswith(f"{inputs['log']}: read ") and imported.stdout.count(b"\n") == 1
    as_json = run_piped(_cli("import", "--json", "-"), env, stdin=inputs["log"])
    assert as_json.stderr == b"" and json.loads(as_json.stdout)["unchanged"] > 0

    anon = run_piped(_cli("anonymize"), env, stdin=inputs["anon"])
    assert anon.returncode == 0
    message, counts = anon.stderr.decode().splitlines()
    assert message.startswith("line 21: not JSON") and json.loads(counts)["written"] == 40
    assert anon.stdout.count(b"\n") == 40 and not has_bar(anon.stdout + anon.stderr)


# ------------------------------------------------------------------ the commands on a terminal


def test_on_a_terminal_each_command_draws_its_bar_on_stderr_only(tmp_path, inputs):
    env = _env(tmp_path)

    code, stdout, terminal = run_on_terminal(_cli("seed", "--n", "300", "--seed", "5"), env)
    assert code == 0 and b"seed: 100%|" in terminal and b"300/300" in terminal and b" interaction/s" in terminal
    assert stdout.count(b"\n") > 300 and not has_bar(stdout)  # the data, untouched
    assert b'"interactions": 300' in terminal  # the counts still follow the bar

    code, stdout, terminal = run_on_terminal(_cli("import", str(inputs["log"])), env)
    size = inputs["log"].stat().st_size
    assert code == 0 and b"import: 100%|" in terminal and b"records at" in terminal, terminal
    assert f"/{tqdm.format_sizeof(size)} [".encode() in terminal  # the total is the file's size in bytes
    assert stdout.decode().startswith(f"{inputs['log']}: read ")

    code, stdout, terminal = run_on_terminal(_cli("anonymize"), env, stdin=inputs["anon"])
    assert code == 0 and b"anonymize: 100%|" in terminal and b"40 records at" in terminal
    assert b"line 21: not JSON" in terminal and stdout.count(b"\n") == 40 and not has_bar(stdout)


def test_on_a_terminal_json_and_no_progress_draw_nothing(tmp_path, inputs):
    env = _env(tmp_path)
    runs = {
        "seed --no-progress": run_on_terminal(_cli("seed", "--n", "300", "--no-progress"), env),
        "import --json": run_on_terminal(_cli("import", "--json", str(inputs["log"])), env),
        "import --no-progress": run_on_terminal(_cli("import", "--no-progress", str(inputs["log"])), env),
        "anonymize --no-progress": run_on_terminal(_cli("anonymize", "--no-progress"), env, stdin=inputs["anon"]),
    }
    for name, (code, stdout, terminal) in runs.items():
        assert code == 0, name
        assert not has_bar(terminal.replace(b"\r\n", b"\n")), f"{name} drew a bar: {terminal[:300]!r}"
        assert not has_bar(stdout), name
    assert json.loads(runs["import --json"][1])["read"] > 0
    assert runs["anonymize --no-progress"][2].replace(b"\r\n", b"\n").startswith(b"line 21: not JSON")
