"""`scored_examples` through Dagster: one target partition materialized with a real store resource."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import dagster as dg

from pipeline.core.resources import StoreResource
from pipeline.core.store import Store
from pipeline.curation.parts import read_examples, read_pairs
from pipeline.defs.scored_examples import scored_examples
from pipeline_tests.curation_helpers import insert_accepted, record
from pipeline_tests.defs_helpers import target_instance

PAGE = '{"sections": [{"type": "hero"}]}'
GOOD = [("thumbs", 1), ("outcome", "accepted")]


def test_scored_examples_materializes_one_target(tmp_path):
    url = f"sqlite:///{tmp_path}/t.db"
    store = Store(url)
    insert_accepted(store, [
        record("p1", prompt="Hero for a bakery", response=PAGE, response_format="json", feedback=GOOD),
        record("p2", prompt="hero for a BAKERY", response=PAGE, response_format="json", feedback=GOOD),
        record("p3", prompt="Footer for a florist", response="{not json", response_format="json", feedback=GOOD),
        record("p4", task="section_edit", prompt="Punchier headline", response=PAGE, response_format="json",
               feedback=[("outcome", "accepted_with_edits"), ("edit", '{"sections": [{"type": "cta"}]}')]),
        record("c1", org="avatar_luna", task="chat", prompt="Not a page", feedback=GOOD),  # another target's task
    ])
    store.dispose()
    result = dg.materialize([scored_examples], partition_key="page_builder", instance=target_instance("page_builder"),
                            resources={"store": StoreResource(url=url)})
    assert result.success
    [mat] = result.asset_materializations_for_node("scored_examples")
    md = {k: v.value for k, v in mat.metadata.items()}
    assert md["read"] == 4
    assert md["kept"] == md["dagster/row_count"] == 1
    assert md["dropped"] == 3 == md["dropped_below_threshold"] + md["dropped_duplicate_prompt"]
    assert md["read"] == md["kept"] + sum(v for k, v in md.items() if k.startswith("dropped_"))
    assert md["pairs"] == md["pairs_edit"] == 1
    assert md["counts"]["dropped"] == {"unreadable_record": 0, "empty_completion": 0, "below_threshold": 2,
                                       "duplicate_prompt": 1}
    chart = md["score_distribution"]
    assert "| 8–9 | 2 | 1 | █" in chart and "░" in chart
    assert "| p1 |" in md["preview"]
    # scored examples still hold personal data: no prompt or completion text reaches the event log
    assert "bakery" not in str(md).lower()
    assert "| page_generation | 1 |" in md["kept_by_task"]
    examples = read_examples(Path(md["scored_path"]))
    assert examples.column("example_id").to_pylist() == ["p1"]
    assert read_pairs(Path(md["scored_path"])).column("source").to_pylist() == ["edit"]
    assert md["scored_path"].endswith("page_builder/scored")
    # the first run scores everything into one part; what a run did is in the metadata
    assert (md["run_mode"], md["scored_this_run"], md["superseded"], md["parts"]) == ("full", 4, 0, 1)
    assert md["run_reason"] == "no earlier scored state"
    # outcomes: all explicit here (no conversation, nothing to infer from); the log's clock is shown
    assert (md["outcomes_explicit"], md["outcomes_inferred_abandoned"], md["outcomes_inferred_regenerated"]) == (4, 0, 0)
    assert md["implicit_as_of"] == "2026-03-01T10:00:00Z"
    assert md["counts"]["outcomes"] == {"explicit": 4, "inferred_abandoned": 0, "inferred_regenerated": 0}


def test_asset_declaration():
    assert [scored_examples] == [scored_examples]
    spec = next(iter(scored_examples.specs))
    assert spec.group_name == "curation"
    assert spec.owners == ["team:ml-platform"]
    assert set(spec.kinds) == {"python", "parquet"}
    assert spec.code_version
    assert spec.description and "\n" not in spec.description.strip()
    assert [d.asset_key for d in spec.deps] == [dg.AssetKey("raw_interactions")]
    assert scored_examples.partitions_def == dg.DynamicPartitionsDefinition(name="training_targets")
    assert "store" in scored_examples.required_resource_keys


def test_importing_the_asset_module_stays_light():
    code = (
        "import sys; import pipeline.defs.scored_examples; "
        "print(sorted(m for m in ('numpy', 'pyarrow', 'rapidfuzz', 'torch', 'spacy', 'presidio_analyzer') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = ast.literal_eval(out.stdout.strip().splitlines()[-1])
    assert not {"pyarrow", "rapidfuzz", "torch", "spacy", "presidio_analyzer"} & set(loaded)
