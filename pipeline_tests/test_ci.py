"""The CI entry point: `.ci/run` itself makes the Postgres tests required, whatever the runner sets."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_run_exports_ci_true_to_the_suite(tmp_path):
    # a stand-in `make` first on PATH records what the suite would see, instead of running it
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    seen = tmp_path / "seen"
    (fake_bin / "make").write_text(f'#!/usr/bin/env bash\necho "$PWD|$*|${{CI-unset}}" > {seen}\n')
    (fake_bin / "make").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "CI"}  # a runner that does not set CI
    env["PATH"] = f"{fake_bin}{os.pathsep}{env.get('PATH', '')}"
    subprocess.run(["bash", str(ROOT / ".ci" / "run")], env=env, check=True, timeout=60)
    cwd, args, ci = seen.read_text().strip().split("|")
    assert Path(cwd).resolve() == ROOT and args == "test"
    assert ci == "true"
