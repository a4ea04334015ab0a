"""Dagster resources for the systems every stage talks to."""

from __future__ import annotations

from functools import cached_property

import dagster as dg
from pydantic import PrivateAttr

from pipeline.core.settings import source_url
from pipeline.core.store import Store


class StoreResource(dg.ConfigurableResource):
    """The interaction store: SQLite under FLYWHEEL_HOME by default, Postgres in production."""

    url: str = ""  # empty: FLYWHEEL_SOURCE_URL, else the embedded SQLite file

    _store: Store | None = PrivateAttr(default=None)

    def get(self) -> Store:
        if self._store is None:
            self._store = Store(self.url or source_url())
        return self._store

    @cached_property
    def masked_url(self) -> str:
        return self.get().masked_url
