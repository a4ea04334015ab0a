"""The stage's modules stay light: no heavy library at import, no Dagster in the pure modules."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ["torch", "spacy", "transformers", "presidio_analyzer", "sentence_transformers", "datasets",
         "great_expectations", "peft", "trl", "huggingface_hub", "pyarrow", "bpe_openai"]


def _modules_after(code: str) -> set[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_pure_modules_import_neither_dagster_nor_heavy_libraries():
    loaded = _modules_after(
        "import pipeline.training_files.build, pipeline.training_files.formats, pipeline.training_files.split, "
        "pipeline.training_files.tokens, pipeline.training_files.validate, pipeline.training_files.dataset_card"
    )
    assert not loaded & {*HEAVY, "dagster"}


def test_dagster_wrappers_import_no_heavy_library():
    loaded = _modules_after(
        "import pipeline.defs.training_file, pipeline.defs.training_file_checks, pipeline.defs.hub_dataset"
    )
    assert "dagster" in loaded and not loaded & set(HEAVY)


def test_wrappers_follow_house_rules():
    from pipeline.defs.training_file import training_file
    from pipeline_tests.defs_helpers import checks_in

    checks = checks_in("training_file_checks")
    spec = training_file.specs_by_key[training_file.key]
    assert spec.group_name == "training" and spec.owners == ["team:ml-platform"] and spec.code_version
    assert len(checks) == 4 and all(next(iter(check.check_specs)).blocking for check in checks)
