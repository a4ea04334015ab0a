"""`anonymized_dataset` and its blocking checks through Dagster, on scored Parquet written in tmp."""

from __future__ import annotations

import json
import subprocess
import sys

import dagster as dg
import pandas as pd
import pytest

from pipeline.anonymize.records import ANONYMIZED_EXAMPLE_COLUMNS, tenant_hash
from pipeline.anonymize.residual import scan
from pipeline.core.contract import parse_line
from pipeline.core.resources import StoreResource
from pipeline.core.store import ImportCounts, Store
from pipeline.defs.anonymized_dataset import anonymized_dataset
from pipeline_tests.anonymize_helpers import load_engine, scored_example, scored_pair, write_scored
from pipeline_tests.defs_helpers import checks_in, target_instance

ANONYMIZE_CHECKS = checks_in("anonymized_dataset_checks")


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    return load_engine(tmp_path_factory)


TARGET = "page_builder"  # min_examples 50 in targets.yaml


def store_with_orgs(home, orgs: dict[str, bool]) -> StoreResource:
    url = f"sqlite:///{home / 'flywheel.db'}"
    lines = [
        json.dumps({"type": "organization", "org_id": o, "training_opt_out": out}).encode()
        for o, out in orgs.items()
    ]
    Store(url).import_batch([parse_line(line) for line in lines], ImportCounts())
    return StoreResource(url=url)


def materialize(store: StoreResource, *, selection=None):
    return dg.materialize(
        [anonymized_dataset, *ANONYMIZE_CHECKS],
        partition_key=TARGET,
        instance=target_instance(TARGET),
        resources={"store": store},
        run_config={"ops": {"anonymized_dataset": {"config": {"workers": 1}}}},
        raise_on_error=False,
        selection=selection,
    )


def checks_by_name(result) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_materialize_redacts_removes_opted_out_and_passes_every_check(engine, _isolated_home):
    examples = [scored_example(i) for i in range(55)] + [
        scored_example(100 + i, org="org_out") for i in range(5)
    ]
    pairs = [scored_pair(i) for i in range(3)] + [scored_pair(9, org="org_out")]
    write_scored(TARGET, examples, pairs)
    store = store_with_orgs(_isolated_home, {"org_a": False, "org_out": True})

    result = materialize(store)
    assert result.success
    meta = result.asset_materializations_for_node("anonymized_dataset")[0].metadata
    assert meta["rows_in"].value == 60 and meta["rows_out"].value == 55
    assert meta["pairs_in"].value == 4 and meta["pairs_out"].value == 3
    assert meta["removed_by_reason"].value == {
        "examples": {"tenant_opted_out": 5},
        "pairs": {"tenant_opted_out": 1},
    }
    by_type = meta["entities_by_type"].value
    assert by_type["PERSON"] >= 55 and by_type["EMAIL_ADDRESS"] == 55 and by_type["PHONE_NUMBER"] >= 58
    assert "[PERSON_NAME]" in meta["preview"].value and "| task | prompt | completion |" in meta["preview"].value
    # the event log (the UI, Postgres) never receives the raw text
    assert not any(word in str(v.value) for v in meta.values() for word in ("Maria", "Lopez"))

    checks = checks_by_name(result)
    assert set(checks) == {c.check_key.name for c in ANONYMIZE_CHECKS}
    assert all(c.passed for c in checks.values()), {
        n: c.description for n, c in checks.items() if not c.passed
    }

    # a content-addressed version: the data version the checks and training_file read
    assert meta["examples_path"].value.endswith(f"/anonymized/{meta['anonymized_version'].value}/examples.parquet")
    version = result.get_asset_materialization_events()[0].materialization.tags["dagster/data_version"]
    assert version == meta["anonymized_version"].value
    out = pd.read_parquet(meta["examples_path"].value)
    assert list(out.columns) == ANONYMIZED_EXAMPLE_COLUMNS
    assert set(out["tenant_hash"]) == {tenant_hash("org_a")}
    text = out.to_json()
    assert "Maria" not in text and "Lopez" not in text and "user-1" not in text and "org_a" not in text
    assert not any(scan(v) for col in ("messages", "completion", "context") for v in out[col])

    # the checks again: every text is read and hashed, none is scanned again (text_memo.py)
    first = checks["residual_pii_zero"].metadata
    assert first["texts_tested"].value == first["texts"].value > 0
    again = checks_by_name(materialize(store))
    assert all(c.passed for c in again.values())
    for name in ("residual_pii_zero", "opted_out_tenants_absent"):
        meta = again[name].metadata
        assert meta["texts_tested"].value == 0 and meta["texts_known_to_pass"].value > 0, name
    gx = again["columns_meet_expectations"].metadata
    assert gx["rows_validated"].value == 0 and gx["rows_known_to_pass"].value == gx["rows"].value == 58


def test_checks_block_on_too_few_examples(engine, _isolated_home):
    write_scored(TARGET, [scored_example(i) for i in range(3)])
    store = store_with_orgs(_isolated_home, {"org_a": False})
    result = materialize(store)
    assert not result.success  # a blocking ERROR check fails the run
    check = checks_by_name(result)["min_examples_met"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert "has 3 examples" in check.description and "at least 50" in check.description


def test_missing_scored_file_fails_with_what_to_do(_isolated_home):
    store = store_with_orgs(_isolated_home, {"org_a": False})
    result = materialize(store, selection=[anonymized_dataset])
    assert not result.success
    failure = result.get_step_failure_events()[0]
    assert "materialize scored_examples" in str(failure.step_failure_data.error)


def test_asset_definition_follows_house_rules():
    spec = anonymized_dataset.specs_by_key[dg.AssetKey("anonymized_dataset")]
    assert spec.group_name == "curation" and spec.owners == ["team:ml-platform"] and spec.code_version
    assert spec.description and "\n" not in spec.description.strip()
    assert dg.AssetKey("scored_examples") in {d.asset_key for d in spec.deps}
    assert all(c.check_specs_by_output_name for c in ANONYMIZE_CHECKS)
    for check in ANONYMIZE_CHECKS:
        (check_spec,) = check.check_specs
        assert check_spec.blocking


def test_importing_the_stage_stays_light():
    code = (
        "import sys; import pipeline.defs.anonymized_dataset, pipeline.defs.anonymized_dataset_checks, pipeline.anonymize.stream; "
        "heavy = [m for m in ('spacy', 'presidio_analyzer', 'presidio_anonymizer', 'great_expectations', 'torch') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
