"""Where Flywheel keeps its data, read from the environment.

`FLYWHEEL_HOME` holds the embedded store and every artifact (default: `.flywheel` in the working
directory). `FLYWHEEL_SOURCE_URL` names the interaction source: `sqlite:///…` (default, under
`FLYWHEEL_HOME`) or `postgresql://…` for production.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_HOME = ".flywheel"


def flywheel_home() -> Path:
    """The folder that holds the embedded store and every artifact; created on first use."""
    home = Path(os.environ.get("FLYWHEEL_HOME", DEFAULT_HOME)).expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    return home


def source_url() -> str:
    """The interaction source as an SQLAlchemy URL string."""
    url = os.environ.get("FLYWHEEL_SOURCE_URL", "").strip()
    if not url:
        return f"sqlite:///{flywheel_home() / 'flywheel.db'}"
    return normalize_url(url)


def normalize_url(url: str) -> str:
    """Map `postgres://` and `postgresql://` to the psycopg2 driver that SQLAlchemy 2.1 needs named."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix):]
    return url


def mask_url(url: str) -> str:
    """The URL with any password replaced by `***`, safe for logs and metadata."""
    from sqlalchemy.engine import make_url  # not at import: the code location loads without SQLAlchemy

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a URL SQLAlchemy understands: show nothing secret
        return url.split("@")[-1] if "@" in url else url


def target_dir(target: str) -> Path:
    """Artifacts of one training target live under `FLYWHEEL_HOME/<target>/`."""
    path = flywheel_home() / target
    path.mkdir(parents=True, exist_ok=True)
    return path
