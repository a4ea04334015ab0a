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
        "pipeline.training_files.tokens, pipeline.training_files.validate, pipeline.training_files.hub"
    )
    assert not loaded & {*HEAVY, "dagster"}


def test_dagster_exports_import_no_heavy_library():
    loaded = _modules_after(
        "from pipeline.training_files import TRAINING_FILE_ASSETS, TRAINING_FILE_CHECKS, HUB_RESOURCE_KEY, "
        "HubResource, hub_resource_from_env"
    )
    assert "dagster" in loaded and not loaded & set(HEAVY)


def test_exports():
    import pipeline.training_files as tf

    assert [a.key.to_user_string() for a in tf.TRAINING_FILE_ASSETS] == ["training_file"]
    assert len(tf.TRAINING_FILE_CHECKS) == 4 and tf.HUB_RESOURCE_KEY == "hf_hub"
    spec = tf.TRAINING_FILE_ASSETS[0].specs_by_key[tf.TRAINING_FILE_ASSETS[0].key]
    assert spec.group_name == "training" and spec.owners == ["team:ml-platform"] and spec.code_version
    assert all(check.check_specs and next(iter(check.check_specs)).blocking for check in tf.TRAINING_FILE_CHECKS)
