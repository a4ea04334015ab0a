"""Canonical forms every stage shares: canonical JSON, its content hash, and UTC timestamps (no heavy imports)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any


def canonical_json(record: Any) -> str:
    """JSON with sorted keys and no spaces: equal content gives equal text (and equal hashes)."""
    return json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def now_iso() -> str:
    """Now in UTC as RFC 3339 with a `Z`."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")
