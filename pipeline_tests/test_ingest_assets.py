"""`raw_interactions` materialized through Dagster: metadata, cursor, the quarantine gate, Postgres."""

from __future__ import annotations

import dagster as dg
import pytest

from pipeline.core.resources import StoreResource
from pipeline.core.store import Store
from pipeline.defs.raw_interactions import QUARANTINE_CHECK, raw_interactions
from pipeline.ingest.importer import import_lines
from pipeline_tests.ingest_helpers import feedback, interaction, jsonl, organization


def _load(url: str, *records) -> None:
    store = Store(url)
    import_lines(store, jsonl(*records).splitlines(keepends=True), "t.jsonl")
    store.dispose()


def _materialize(url: str, instance, **config):
    return dg.materialize(
        [raw_interactions],
        instance=instance,
        resources={"store": StoreResource(url=url)},
        run_config={"ops": {"raw_interactions": {"config": config}}} if config else None,
        raise_on_error=False,
    )


def _meta(result) -> dict:
    (event,) = result.get_asset_materialization_events()
    return {k: v.value for k, v in event.materialization.metadata.items()}


def test_materialization_metadata_cursor_and_gate(store_url):
    good = [interaction(id=f"i{i}") for i in range(30)]
    _load(store_url, organization("org_a", plan="pro"), *good, feedback(interaction_id="i1"),
          feedback(interaction_id="ghost"))
    with dg.instance_for_test() as instance:
        result = _materialize(store_url, instance)
        assert result.success
        meta = _meta(result)
        assert meta["records_in"] == 33 and meta["accepted"] == 32 and meta["quarantined"] == 1
        assert "unknown_interaction" in meta["quarantined_by_reason"]
        assert "Fresh bread" not in meta["preview"]  # no raw text in the event log
        assert meta["source_url"] == store_url  # no password to mask: shown as it is
        (check,) = result.get_asset_check_evaluations()
        assert check.check_name == QUARANTINE_CHECK and check.passed

        second = _materialize(store_url, instance)
        meta2 = _meta(second)
        assert meta2["cursor_from"] == meta["cursor"] and meta2["records_in"] == 0

        refresh = _materialize(store_url, instance, full_refresh=True)
        assert _meta(refresh)["records_in"] == 33


def test_dirty_increment_fails_the_blocking_check_with_reasons(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    _load(url, *[interaction(id=f"ok{i}") for i in range(8)],
          *[interaction(id=f"bad{i}", occurred_at="not a time") for i in range(2)])
    with dg.instance_for_test() as instance:
        result = _materialize(url, instance, max_quarantine_share=0.05)
        assert not result.success  # the blocking check stops the run
        (check,) = result.get_asset_check_evaluations()
        assert not check.passed
        assert "bad_timestamp (2)" in check.description and "20.0%" in check.description
        assert "fw_quarantine" in check.description  # says where to look and what to do


@pytest.mark.postgres
def test_materialize_with_a_postgres_backed_dagster_instance(postgres_url):
    """Production shape: Dagster's own storage and the interaction store both on Postgres."""
    import sqlalchemy as sa

    _load(postgres_url, interaction(id="p1"), feedback(interaction_id="p1"))
    overrides = {"storage": {"postgres": {"postgres_url": postgres_url}}}
    with dg.instance_for_test(overrides=overrides) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        result = _materialize(postgres_url, instance)
        assert result.success and _meta(result)["accepted"] == 2
        event = instance.get_latest_materialization_event(dg.AssetKey("raw_interactions"))
        assert event is not None and event.asset_materialization.metadata["cursor"].value > 0
    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
    engine.dispose()
    assert {"runs", "event_logs", "interactions", "fw_accepted_interactions"} <= tables


@pytest.mark.postgres
def test_the_source_password_is_masked_in_metadata_and_never_logged(postgres_url):
    """Postgres here trusts any password, so a URL that carries one still connects."""
    from sqlalchemy.engine import make_url

    password = "s3cret-Pw-4711"
    url = make_url(postgres_url).set(password=password).render_as_string(hide_password=False)
    assert password in url
    _load(url, interaction(id="p1"))
    with dg.instance_for_test() as instance:
        result = _materialize(url, instance)
        assert result.success
        shown = _meta(result)["source_url"]
        assert shown == make_url(url).render_as_string(hide_password=True)
        assert ":***@" in shown and password not in shown
        records = instance.all_logs(result.run_id)
        assert records and not [r for r in records if password in str(r)]  # nowhere in the run's events or logs
