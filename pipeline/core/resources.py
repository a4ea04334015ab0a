"""Dagster resources for the systems every stage talks to."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import PrivateAttr

from pipeline.core.settings import source_url

if TYPE_CHECKING:
    from pipeline.core.store import Store


class StoreResource(dg.ConfigurableResource):
    """The interaction store: SQLite under FLYWHEEL_HOME by default, Postgres in production."""

    url: str = ""  # empty: FLYWHEEL_SOURCE_URL, else the embedded SQLite file

    _store: Any = PrivateAttr(default=None)

    def get(self) -> Store:
        """The store, connected and with its schema created on first use (SQLAlchemy loads here, not at import)."""
        if self._store is None:
            from pipeline.core.store import Store

            self._store = Store(self.url or source_url())
        return self._store
