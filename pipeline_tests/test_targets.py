"""The targets file: the defaults load, and a malformed file names the line and the field."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline.core.targets import TargetsFileError, load_targets, parse_targets

GOOD = """\
defaults:
  min_examples: 10
targets:
  chat_model:
    tasks: [chat]
    backend: huggingface
    base_model: some/model
  acme_only:
    tasks: [chat]
    tenants: [acme]
    backend: openai
    base_model: gpt-4.1-mini-2025-04-14
    scoring: {export_threshold: 7}
"""


def test_default_targets_cover_the_five_seed_products():
    targets = load_targets()
    tasks = {task for t in targets.values() for task in t.tasks}
    assert {"page_generation", "signal_extraction", "ux_review", "roast", "chat"} <= tasks
    assert {t.method for t in targets.values()} == {"sft", "dpo", "embedding"}
    assert any(t.per_tenant for t in targets.values())


def test_defaults_merge_and_per_tenant_filtering():
    targets = parse_targets(GOOD)
    assert targets["chat_model"].min_examples == 10
    assert targets["acme_only"].scoring.export_threshold == 7
    assert targets["acme_only"].scoring.thumbs_up == 3.0  # untouched defaults stay
    assert targets["acme_only"].takes("acme", "chat") and not targets["acme_only"].takes("globex", "chat")
    assert targets["chat_model"].takes("globex", "chat") and not targets["chat_model"].takes("globex", "roast")


@pytest.mark.parametrize(
    "mutation, line, field",
    [
        (("    backend: huggingface", "    backend: pytorch"), 6, "backend"),
        (("    tasks: [chat]\n    backend: huggingface", "    tasks: []\n    backend: huggingface"), 5, "tasks"),
        (("  min_examples: 10", "  min_examples: -1"), None, "min_examples"),
        (("    scoring: {export_threshold: 7}", "    scoring: {export_threshold: 70}"), 13, "scoring.export_threshold"),
        (("    base_model: some/model", "    base_model: some/model\n    learning_rate: 0.1"), 8, "learning_rate"),
        (("  acme_only:", "  Acme-Only:"), 8, "name"),
    ],
)
def test_malformed_file_names_line_and_field(mutation, line, field):
    old, new = mutation
    assert old in GOOD
    with pytest.raises(TargetsFileError) as err:
        parse_targets(GOOD.replace(old, new, 1), source="targets.yaml")
    message = str(err.value)
    assert f"'{field}'" in message or field in message, message
    if line is not None:
        assert message.startswith(f"targets.yaml:{line}:"), message


@pytest.mark.parametrize("text", ["", "targets: []", "targets:\n  x: 3\n", "[unclosed", "other: 1\ntargets:\n  a: {}\n"])
def test_structurally_broken_files_fail_clearly(text):
    with pytest.raises(TargetsFileError, match=r"^targets\.yaml:\d+: "):
        parse_targets(text, source="targets.yaml")


def test_a_malformed_file_fails_the_code_location_load(tmp_path):
    bad = tmp_path / "targets.yaml"
    bad.write_text(GOOD.replace("backend: huggingface", "backend: pytorch"))
    out = subprocess.run(
        [sys.executable, "-c", "import pipeline.definitions"],
        capture_output=True, text=True, env={**__import__("os").environ, "FLYWHEEL_TARGETS": str(bad)},
    )
    assert out.returncode != 0
    assert f"{bad}:6: target 'chat_model', field 'backend'" in out.stderr
