"""What a memo's values were computed by: the source of the modules that computed them.

Every memo (`anonymize/text_memo.py`, `training_files/memo_file.py`) is valid only under the
version of the code that filled it, so an edit to that code starts the memo afresh.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path


def source_version(modules: tuple[str, ...], packages: tuple[str, ...] = ()) -> str:
    """A hash of the source files of `modules` (dotted names), the installed versions of `packages`
    and the Python version: what a memo's values were computed by."""
    import importlib.metadata
    import importlib.util

    digest = hashlib.sha256(f"python {sys.version_info.major}.{sys.version_info.minor}".encode())
    for name in sorted(modules):
        spec = importlib.util.find_spec(name)
        digest.update(name.encode() + b"\0" + Path(spec.origin).read_bytes() + b"\0")
    for name in sorted(packages):
        digest.update(f"{name}=={importlib.metadata.version(name)}\0".encode())
    return digest.hexdigest()
