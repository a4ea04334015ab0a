"""The code passes the project's lint rules (pyproject.toml [tool.ruff.lint]), so CI catches drift."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert ruff, "ruff is part of the dev extra: install with pip install -e '.[dev]'"
    out = subprocess.run([ruff, "check", "--output-format", "concise", "pipeline", "pipeline_tests", "bench"],
                         cwd=ROOT, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
