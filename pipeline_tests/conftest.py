"""Shared fixtures: an isolated FLYWHEEL_HOME per test, and stores on SQLite and the real Postgres.

Postgres tests use the server on 127.0.0.1:5432 (user postgres, trust auth, database test); each
test gets its own schema, dropped afterwards. Where the server is missing they skip with the
reason, except under CI=true, where a missing Postgres is a failure: CI must count them.
"""

from __future__ import annotations

import os
import uuid

import pytest

PG_BASE_URL = os.environ.get("FLYWHEEL_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session", autouse=True)
def _code_location_loaded_first():
    """Load the code location once, before any test's instance exists.

    Dagster's definitions loader resolves the current instance's defs-state storage through a weak
    reference; loaded for the first time after a test's `instance_for_test` was closed and collected,
    it fails with "Attempted to resolve undefined DagsterInstance weakref" (seen with
    test_retraining.py then test_runbook.py alone). Every later `from pipeline.definitions import defs`
    gets this module.
    """
    import pipeline.definitions  # noqa: F401


@pytest.fixture(autouse=True)
def _no_defs_state_storage_left_by_an_earlier_test():
    """Each test starts with no "current" defs-state storage.

    `with DagsterInstance(...)` sets a context variable to the instance's defs-state storage and
    Dagster 1.13's `dispose()` never resets it, so a test's closed instance stays "current" for the
    tests after it; once collected, the next definitions load (a `dg.materialize`) fails with
    "Attempted to resolve undefined DagsterInstance weakref" — depending on when garbage collection
    ran (seen in the full suite: test_retraining.py's nested instance_for_test, then
    test_secret_leak.py).
    """
    from dagster._core.storage.defs_state.base import _current_storage

    token = _current_storage.set(None)
    yield
    try:
        _current_storage.reset(token)
    except ValueError:  # set in another context (a thread); None is what the next test needs anyway
        _current_storage.set(None)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Every test writes under its own FLYWHEEL_HOME and never touches the network."""
    home = tmp_path_factory.mktemp("flywheel_home")
    monkeypatch.setenv("FLYWHEEL_HOME", str(home))
    monkeypatch.delenv("FLYWHEEL_SOURCE_URL", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    monkeypatch.setenv("TLDEXTRACT_CACHE", str(home / "tldextract"))
    yield home


def _postgres_error() -> str | None:
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(PG_BASE_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not available"
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"


@pytest.fixture(scope="session")
def postgres_base_url() -> str:
    error = _postgres_error()
    if error is not None:
        message = f"Postgres at {PG_BASE_URL} is not reachable ({error})"
        if IN_CI:
            pytest.fail(f"{message}; CI=true requires the Postgres tests to run")
        pytest.skip(message)
    return PG_BASE_URL


@pytest.fixture
def postgres_url(postgres_base_url):
    """A URL whose search_path is a fresh schema, dropped after the test."""
    import sqlalchemy as sa

    schema = f"fw_test_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(postgres_base_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    yield f"{postgres_base_url}?options=-csearch_path%3D{schema}"
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request, tmp_path) -> str:
    """The same test on the embedded SQLite store and on the real Postgres."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def store(store_url):
    from pipeline.core.store import Store

    db = Store(store_url)
    yield db
    db.dispose()
