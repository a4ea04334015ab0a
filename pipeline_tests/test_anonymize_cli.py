"""`flywheel anonymize` as a function: JSONL in, same records anonymized out, bad lines reported."""

from __future__ import annotations

import io
import json

import pytest

from pipeline.anonymize.records import id_hash, tenant_hash
from pipeline.anonymize.residual import scan
from pipeline.anonymize.stream import anonymize_stream
from pipeline.core.contract import validate_feedback, validate_interaction
from pipeline_tests.anonymize_helpers import load_engine


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    return load_engine(tmp_path_factory)


INTERACTION = {
    "type": "interaction",
    "id": "int-1",
    "occurred_at": "2026-03-01T10:00:00Z",
    "org_id": "org_a",
    "user_id": "user-7",
    "conversation_id": "conv-3",
    "task": "page_generation",
    "messages": [{"role": "user", "content": "I'm Maria Lopez from Bluebird Bakery, call (415) 555-0132"}],
    "response": json.dumps(
        {"sections": [{"type": "contact", "email": "maria@bluebird.com", "owner": "Maria Lopez"}]}
    ),
    "response_format": "json",
    "context": {"industry": "bakery", "address": "1234 Elm Street, Austin, TX 78701"},
}
EDIT = {
    "type": "feedback",
    "interaction_id": "int-1",
    "occurred_at": "2026-03-01T11:00:00Z",
    "kind": "edit",
    "value": "Ask for Maria at 1234 Elm Street",
}
THUMBS = {
    "type": "feedback",
    "interaction_id": "int-1",
    "occurred_at": "2026-03-01T11:00:00Z",
    "kind": "thumbs",
    "value": 1,
}
ORG = {"type": "organization", "org_id": "org_a", "training_opt_out": False}


def run(lines: list[str], workers: int = 1, binary: bool = True) -> tuple[dict, list[dict], str]:
    data = "\n".join(lines) + "\n"
    stdin = io.BytesIO(data.encode()) if binary else io.StringIO(data)
    stdout, stderr = io.StringIO(), io.StringIO()
    counts = anonymize_stream(stdin, stdout, workers=workers, stderr=stderr)
    return counts, [json.loads(line) for line in stdout.getvalue().splitlines()], stderr.getvalue()


def test_stream_redacts_keeps_shape_and_reports_malformed_lines(engine):
    lines = [
        json.dumps(INTERACTION),
        '{"type": "interaction", "id": ',  # truncated
        json.dumps(EDIT),
        "",
        json.dumps({"type": "click", "id": "x"}),
        "[1, 2]",
        json.dumps(THUMBS),
        json.dumps(ORG),
    ]
    counts, out, err = run(lines)
    assert (
        counts["lines"] == 8 and counts["written"] == 4 and counts["malformed"] == 3 and counts["blank"] == 1
    )
    assert counts["lines"] == counts["written"] + counts["malformed"] + counts["blank"]
    assert counts["by_type"] == {"interaction": 1, "feedback": 2, "organization": 1}
    assert (
        "line 2: not JSON" in err
        and "line 5: field 'type'" in err
        and "line 6: a record must be a JSON object" in err
    )

    interaction, edit, thumbs, org = out
    assert [r["type"] for r in out] == ["interaction", "feedback", "feedback", "organization"]
    assert set(interaction) == set(INTERACTION)
    assert interaction["id"] == id_hash("int-1") and interaction["org_id"] == tenant_hash("org_a")
    assert interaction["user_id"] == id_hash("user-7") and interaction["conversation_id"] == id_hash("conv-3")
    assert (
        interaction["messages"][0]["content"]
        == "I'm [PERSON_NAME] from [BUSINESS_NAME], call +1 (555) 000-0000"
    )
    page = json.loads(interaction["response"])
    assert page == {
        "sections": [{"type": "contact", "email": "contact@example.com", "owner": "[PERSON_NAME]"}]
    }
    assert interaction["context"] == {"industry": "bakery", "address": "[ADDRESS]"}
    assert (
        edit["interaction_id"] == interaction["id"] and edit["value"] == "Ask for [PERSON_NAME] at [ADDRESS]"
    )
    assert thumbs["value"] == 1 and org["org_id"] == tenant_hash("org_a")
    # the output is still contract-valid
    body = {k: v for k, v in interaction.items() if k != "type"}
    validate_interaction(body)
    validate_feedback({k: v for k, v in edit.items() if k != "type"})
    assert not any(scan(json.dumps(r)) for r in out)


def test_stream_over_two_worker_processes_keeps_order():
    lines = []
    for i in range(40):
        record = dict(INTERACTION, id=f"int-{i}")
        record["messages"] = [{"role": "user", "content": f"Order {i}: call 415-555-01{i:02d}"}]
        lines.append(json.dumps(record))
    lines.insert(7, "not json")
    counts, out, err = run(lines, workers=2, binary=False)
    assert counts["written"] == 40 and counts["malformed"] == 1 and "line 8: not JSON" in err
    assert [r["id"] for r in out] == [id_hash(f"int-{i}") for i in range(40)]
    assert all(r["messages"][0]["content"].endswith("call +1 (555) 000-0000") for r in out)
    assert [r["messages"][0]["content"].split(":")[0] for r in out] == [f"Order {i}" for i in range(40)]


def test_no_value_the_synthetic_generator_planted_survives(engine):
    """Ground truth from another team's generator: every PII value it logged must be gone."""
    from pipeline.synth.generate import iter_generated

    generated = list(iter_generated(80, seed=11, bad_share=0.0))
    planted = [item for g in generated for item in g.pii]
    assert {kind for kind, _ in planted} >= {"person", "email", "phone", "address"}
    lines = [json.dumps(g.record, ensure_ascii=False) for g in generated]
    counts, out, _err = run(lines)
    assert counts["malformed"] == 0 and counts["written"] == len(lines)
    text = "\n".join(json.dumps(r, ensure_ascii=False) for r in out)
    left = [(kind, value) for kind, value in planted if value in text]
    businesses = [item for item in planted if item[0] == "business"]
    assert [item for item in left if item[0] != "business"] == []
    assert len([item for item in left if item[0] == "business"]) <= 0.05 * max(1, len(businesses))
    assert not any(scan(line) for line in text.splitlines())


def test_records_that_break_the_contract_still_leave_no_pii(engine):
    broken = dict(INTERACTION, messages="Maria Lopez, call (415) 555-0132", notes={"x": "maria@bluebird.com"})
    broken["response_format"] = "text"
    counts, out, _err = run([json.dumps(broken)])
    assert counts["written"] == 1
    assert out[0]["messages"] == "[PERSON_NAME], call +1 (555) 000-0000"
    assert out[0]["notes"] == {"x": "contact@example.com"}
    assert out[0]["task"] == "page_generation" and out[0]["occurred_at"] == INTERACTION["occurred_at"]
