"""The composition root: Flywheel's code location is whatever `pipeline/defs/` defines.

Every module under `pipeline/defs/` is a thin Dagster wrapper (assets, checks, jobs, sensors, and the
resources in `defs/resources.py`); the logic they call lives in the pure packages beside it
(`ingest`, `curation`, `anonymize`, `training_files`, `finetune`, `backends`, `core`).
`dg check defs` and `dg list defs` read the same folder through `[tool.dg]` in pyproject.toml.
"""

from pathlib import Path

import dagster as dg

from pipeline.core.targets import load_targets

# Validate targets.yaml at load: a malformed file fails the code location with its line and field.
TARGETS = load_targets()

defs = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
