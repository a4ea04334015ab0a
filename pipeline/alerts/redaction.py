"""The redaction guard: no secret value leaves in an alert or a log line, whatever put it there.

Defence in depth: messages are built from gate descriptions, run errors and history reasons, which
should never hold a secret; `scrub` makes sure of it anyway, just before anything is sent or logged.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

#: shorter values are not redacted: replacing "1" or "ab" everywhere would garble every message
MIN_SECRET_CHARS = 6


def _variants(value: str) -> list[str]:
    """The value, and for a URL (a Slack webhook) its path and query too: they are the secret part."""
    out = [value]
    parts = urlsplit(value)
    if parts.scheme in ("http", "https") and parts.netloc:
        tail = parts.path + (f"?{parts.query}" if parts.query else "")
        if len(tail.strip("/")) >= MIN_SECRET_CHARS:
            out.append(tail)
    return out


def scrub(text: str, secrets: Mapping[str, str | None]) -> str:
    """`text` with every value of `secrets` (name → value) replaced by `[redacted NAME]`, longest first."""
    pairs = [(variant, name) for name, value in secrets.items() if value and len(value) >= MIN_SECRET_CHARS
             for variant in _variants(value)]
    for variant, name in sorted(pairs, key=lambda p: -len(p[0])):
        text = text.replace(variant, f"[redacted {name}]")
    return text


def secrets_from_env(names: Iterable[str]) -> dict[str, str]:
    """The values of the secret variables that are set (what `scrub` must keep out)."""
    return {name: os.environ[name] for name in names if os.environ.get(name)}
