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


# ------------------------------------------------------------------ promotion gates and rollout


def _with_gates(gates: str) -> str:
    return GOOD.replace("    base_model: some/model\n", f"    base_model: some/model\n    gates: {gates}\n", 1)


def test_gate_defaults_and_the_seed_floor():
    gates = parse_targets(GOOD)["chat_model"].gates
    assert (gates.margin, gates.max_task_regression, gates.json_validity_floor) == (0.02, 0.0, 0.95)
    assert (gates.canary, gates.canary_share, gates.canary_steps) == (True, 0.1, (0.1, 0.5, 1.0))
    assert (gates.min_eval_items, gates.max_eval_items, gates.eval_set, gates.eval_set_mode) == (30, 200, None, "beside")
    assert load_targets()["page_builder"].gates.json_validity_floor == 0.98


@pytest.mark.parametrize(
    "gates, expected",
    [
        ("{canary: false}", {"canary": False}),
        ("{canary_share: 0.05}", {"canary_share": 0.05, "canary_steps": (0.05, 0.5, 1.0)}),
        ("{canary_share: 0.6}", {"canary_steps": (0.6, 1.0)}),
        ("{canary_share: 0.2, canary_steps: [0.2, 1.0]}", {"canary_steps": (0.2, 1.0)}),
        ("{max_eval_items: 24, min_eval_items: 4}", {"max_eval_items": 24, "min_eval_items": 4}),
        ("{eval_set: evals/pages.jsonl, eval_set_mode: instead}", {"eval_set": "evals/pages.jsonl", "eval_set_mode": "instead"}),
    ],
)
def test_gate_fields_parse(gates, expected):
    parsed = parse_targets(_with_gates(gates))["chat_model"].gates
    assert {k: getattr(parsed, k) for k in expected} == expected


@pytest.mark.parametrize(
    "gates, message",
    [
        ("{canary_share: 1.0}", "canary_share"),
        ("{canary_share: 0}", "canary_share"),
        ("{canary_steps: [0.1, 0.5]}", "end at 1.0"),
        ("{canary_steps: [0.1, 0.05, 1.0]}", "increasing"),
        ("{canary_steps: [0.2, 1.0]}", "start at canary_share"),
        ("{min_eval_items: 50, max_eval_items: 20}", "above max_eval_items"),
        ("{min_eval_items: 1}", "min_eval_items"),
        ("{eval_set: evals/pages.csv}", "JSONL"),
        ("{eval_set_mode: instead}", "needs an eval_set"),
        ("{eval_set_mode: sometimes}", "eval_set_mode"),
        ("{margin: -0.1}", "margin"),
        ("{canary_percent: 10}", "canary_percent"),
    ],
)
def test_bad_gate_fields_name_the_line_and_field(gates, message):
    with pytest.raises(TargetsFileError) as err:
        parse_targets(_with_gates(gates), source="targets.yaml")
    text = str(err.value)
    assert text.startswith("targets.yaml:8: target 'chat_model', field 'gates") and message in text, text


def test_eval_set_is_resolved_against_the_targets_file(tmp_path):
    gates = parse_targets(_with_gates("{eval_set: evals/pages.jsonl}"))["chat_model"].gates
    assert gates.eval_set_path(tmp_path / "targets.yaml") == (tmp_path / "evals" / "pages.jsonl").resolve()
    assert parse_targets(GOOD)["chat_model"].gates.eval_set_path() is None
