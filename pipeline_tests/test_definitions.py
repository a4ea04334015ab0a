"""The code location loads fast, without heavy imports, and the asset graph does not drift unseen."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SNAPSHOT = Path(__file__).parent / "snapshots" / "asset_graph.json"
#: libraries that only the steps needing them may import: none of them at code-location load
HEAVY = ("torch", "spacy", "transformers", "sentence_transformers", "presidio_analyzer", "presidio_anonymizer",
         "peft", "trl", "datasets", "great_expectations", "dagster_celery", "celery", "dagster_k8s", "kubernetes")


def _partitions(partitions) -> str | list[str] | None:
    """Static keys as a list; dynamic partitions by name (their keys live in the instance, not the code)."""
    import dagster as dg

    if partitions is None:
        return None
    if isinstance(partitions, dg.DynamicPartitionsDefinition):
        return f"dynamic:{partitions.name}"
    return sorted(partitions.get_partition_keys())


def graph_snapshot() -> dict:
    from pipeline.definitions import defs

    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        partitions = node.partitions_def
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "partitioned_by": _partitions(partitions),
            "kinds": sorted(node.kinds),
            "automation": str(node.automation_condition.get_label() or type(node.automation_condition).__name__)
            if node.automation_condition
            else None,
            "checks": sorted(c.name for c in graph.asset_check_keys if c.asset_key == key),
        }
    return {
        "assets": assets,
        "jobs": sorted(j.name for j in defs.resolve_all_job_defs() if not j.name.startswith("__")),
        "sensors": sorted(s.name for s in (defs.sensors or [])),
        "schedules": sorted(s.name for s in (defs.schedules or [])),
    }


#: Loads the code location in a fresh interpreter; prints the heavy packages it imported and, for each, the
#: project's lines on the stack when it was first looked for (the import chain, through Dagster's loader).
LOAD_PROBE = r"""
import json, sys, traceback
heavy, root = set(json.loads(sys.argv[1])), sys.argv[2]
chains = {}
class Spy:
    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if top in heavy and top not in chains:
            chains[top] = [f"{f.filename[len(root):]}:{f.lineno}: {f.line}" for f in traceback.extract_stack()
                           if f.filename.startswith(root + "pipeline/")] + [f"import {name}"]
        return None
sys.meta_path.insert(0, Spy())
import pipeline.definitions as d
d.defs.resolve_asset_graph()
print(json.dumps({"loaded": sorted({m.split(".")[0] for m in sys.modules} & heavy), "chains": chains}))
"""


def load_probe(heavy: tuple[str, ...]) -> dict:
    root = str(Path(__file__).resolve().parents[1]) + os.sep
    out = subprocess.run([sys.executable, "-c", LOAD_PROBE, json.dumps(heavy), root], capture_output=True, text=True,
                         check=True, env=os.environ)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_definitions_load_without_heavy_imports():
    """A fresh interpreter loads the code location without any heavy library; a failure names the import chain.

    Load time is measured by bench/load_time.py, not asserted here: shared machines are too noisy.
    """
    probe = load_probe(HEAVY)
    if probe["loaded"]:
        report = "\n".join(f"  {top}:\n" + "".join(f"    {line}\n" for line in chain)
                           for top, chain in sorted(probe["chains"].items()))
        raise AssertionError(
            f"heavy packages imported when the code location loads: {', '.join(probe['loaded'])}; first imported by\n"
            f"{report}import them inside the step (function) that needs them "
            "(python -X importtime -c 'import pipeline.definitions' shows what each import costs)")


def test_the_load_probe_names_the_lines_that_imported_a_package():
    """The failure report is right: `resource` (stdlib, light) is traced through the defs loader to its importer."""
    probe = load_probe(("resource",))
    assert probe["loaded"] == ["resource"]
    chain = probe["chains"]["resource"]
    assert chain[0].startswith("pipeline/definitions.py:"), chain
    assert any(line.startswith("pipeline/definitions.py:") and "load_from_defs_folder" in line for line in chain), chain
    assert chain[-2].startswith("pipeline/backends/local_training.py:") and chain[-2].endswith("import resource")
    assert chain[-1] == "import resource"


def test_every_asset_has_a_docstring_owner_and_group():
    from pipeline.definitions import defs

    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        spec_description = node.description or ""
        assert spec_description.strip(), f"{key} has no description (docstring) for the UI"
        assert node.owners, f"{key} has no owners"
        assert node.group_name and node.group_name != "default", f"{key} has no group"


def test_asset_graph_matches_snapshot():
    current = graph_snapshot()
    if os.environ.get("FLYWHEEL_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    assert SNAPSHOT.exists(), f"{SNAPSHOT} is missing: run FLYWHEEL_UPDATE_SNAPSHOTS=1 pytest {__file__}"
    expected = json.loads(SNAPSHOT.read_text())
    assert current == expected, (
        "the asset graph changed; if intended, run FLYWHEEL_UPDATE_SNAPSHOTS=1 pytest "
        "pipeline_tests/test_definitions.py and commit the snapshot"
    )


def test_dg_check_defs_passes():
    """`dg check defs` (dagster-dg-cli) loads pipeline/defs/ through [tool.dg] and validates it."""
    dg_cli = Path(sys.executable).with_name("dg")
    out = subprocess.run([str(dg_cli), "check", "defs"], capture_output=True, text=True, cwd=Path(__file__).parents[1],
                         env={**os.environ, "NO_COLOR": "1"}, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "All definitions loaded successfully" in out.stdout + out.stderr


def test_gate_status_knows_every_blocking_check():
    """The names gate_status checks across runs are exactly the blocking checks the definitions declare."""
    from pipeline.definitions import defs
    from pipeline.defs.gate_status import BLOCKING_CHECKS

    graph = defs.resolve_asset_graph()
    declared: dict[str, set[str]] = {}
    for check_key in graph.asset_check_keys:
        spec = graph.get_check_spec(check_key)
        if spec.blocking:
            declared.setdefault(check_key.asset_key.to_user_string(), set()).add(check_key.name)
    assert {asset: set(names) for asset, names in BLOCKING_CHECKS.items()} == {
        asset: names for asset, names in declared.items() if asset != "raw_interactions"
    }


def test_only_dagster_wrappers_live_under_defs_and_no_stage_imports_the_root():
    """Stages import neither the composition root nor the wrappers; only the demo (which runs the location) may."""
    root = Path(__file__).parents[1] / "pipeline"
    for path in root.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if path.name != "demo.py":
            assert "from pipeline.definitions import" not in text and "import pipeline.definitions" not in text, path
        if "defs" not in path.relative_to(root).parts and path.name != "definitions.py":
            assert "from pipeline.defs" not in text or path.name in ("cli.py", "jobs_cli.py", "demo.py"), path


def test_bench_imports_nothing_from_the_tests():
    """Benchmarks measure the product's code: they import pipeline/, never pipeline_tests/."""
    bench = Path(__file__).parents[1] / "bench"
    assert [p.name for p in bench.glob("*.py") if "pipeline_tests" in p.read_text(encoding="utf-8")] == []
