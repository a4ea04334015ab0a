"""The code location loads fast, without heavy imports, and the asset graph does not drift unseen."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SNAPSHOT = Path(__file__).parent / "snapshots" / "asset_graph.json"
HEAVY = ("torch", "spacy", "transformers", "sentence_transformers", "presidio_analyzer", "peft", "trl",
         "datasets", "great_expectations", "dagster_celery", "celery", "dagster_k8s", "kubernetes")


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


def test_definitions_load_without_heavy_imports():
    code = (
        "import sys, time; import dagster; t = time.perf_counter(); import pipeline.definitions as d; "
        "d.defs.resolve_asset_graph(); "
        "print(round(time.perf_counter() - t, 2)); "
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ)
    seconds, heavy = out.stdout.strip().splitlines()[-2:]
    assert heavy == "[]", f"heavy modules imported at load: {heavy}"
    assert float(seconds) < 10  # generous for shared CI machines; the before-stop hook reports the real figure


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
