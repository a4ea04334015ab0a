"""The redaction engine: every kind replaced, JSON stays JSON, one person one placeholder."""

from __future__ import annotations

import json

import pytest

from pipeline.anonymize.engine import PLACEHOLDERS, Placeholders
from pipeline.anonymize.records import id_hash, prepare_example, prepare_record, tenant_hash
from pipeline.anonymize.residual import scan
from pipeline.synth.pii_corpus import STRUCTURED, build_corpus, recall
from pipeline_tests.anonymize_helpers import ENGINE_ONLY, PLANTED, load_engine, scored_example


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    return load_engine(tmp_path_factory)


SECRETS = {
    "email": ("maria.lopez@bluebird-bakery.com", "contact@example.com"),
    "phone": ("555-0132", "+1 (555) 000-0000"),
    "phone_intl": ("90182011", "+1 (555) 000-0000"),
    "card": ("4111 1111 1111 1111", "[CARD_NUMBER]"),
    "ip": ("203.0.113.57", "[IP_ADDRESS]"),
    "ipv6": ("2001:db8::8a2e:370:7334", "[IP_ADDRESS]"),
    "ssn": ("219-09-9999", "[NATIONAL_ID]"),
    "iban": ("DE89 3704 0044 0532 0130 00", "[IBAN]"),
    "person": ("Adeyemi", "[PERSON_NAME]"),
    "business": ("Copperleaf", "[BUSINESS_NAME]"),
    "address": ("Elm Street", "[ADDRESS]"),
}


def redact(engine, *texts: str) -> list[str]:
    return engine.redact_groups([list(texts)])[0].texts


@pytest.mark.parametrize("kind", sorted(SECRETS))
def test_each_kind_is_replaced_by_its_placeholder(engine, kind):
    text = {**PLANTED, **ENGINE_ONLY}[kind]
    secret, placeholder = SECRETS[kind]
    (out,) = redact(engine, text)
    assert secret not in out
    assert placeholder in out
    assert scan(out) == []


def test_text_without_pii_is_left_alone(engine):
    text = "Make the hero section warmer and move the pricing table above the FAQ."
    assert redact(engine, text) == [text]


def test_same_person_same_placeholder_across_fields_and_two_people_distinct(engine):
    out = redact(
        engine,
        "Hi, my name is Maria Lopez and I work with John Smith.",
        "Maria wants the page live by Friday; Lopez will send photos.",
        "Thanks, John Smith",
    )
    assert out[0] == "Hi, my name is [PERSON_NAME] and I work with [PERSON_NAME_2]."
    assert "Maria" not in out[1] and "Lopez" not in out[1]
    assert out[1].count("[PERSON_NAME]") == 2 and "[PERSON_NAME_2]" not in out[1]
    assert out[2] == "Thanks, [PERSON_NAME_2]"


def test_placeholders_restart_for_each_example(engine):
    first, second = engine.redact_groups([["Ask Maria Lopez."], ["Ask John Smith."]])
    assert first.texts == ["Ask [PERSON_NAME]."]
    assert second.texts == ["Ask [PERSON_NAME]."]


def test_placeholder_identity_subset_rules():
    names = Placeholders()
    full = names.identity("PERSON", "Dr. Maria Lopez")
    assert names.identity("PERSON", "Maria") == full
    assert names.identity("PERSON", "Lopez") == full
    assert names.identity("PERSON", "John") != full
    texts = Placeholders.number_in_order([f"{names.token('PERSON', 1)} and {names.token('PERSON', full)}"])
    assert texts == ["[PERSON_NAME] and [PERSON_NAME_2]"]


def test_json_response_stays_valid_json_with_keys_untouched(engine):
    page = {
        "sections": [
            {"type": "hero", "headline": "Welcome to Bluebird Bakery", "cta": "Call (415) 555-0132"},
            {
                "type": "contact",
                "email": "maria.lopez@gmail.com",
                "owner": "Maria Lopez",
                "open": True,
                "seats": 12,
            },
        ],
        "maria.lopez@gmail.com": "a key is never redacted",
    }
    row = scored_example(
        1, response_format="json", response=json.dumps(page), completion=json.dumps(page, indent=2)
    )
    prep = prepare_example(row)
    assert all("{" not in s for s in prep.segments), "JSON syntax must never reach NER"
    prep.apply(engine.redact_groups([prep.segments])[0].texts)
    for column in ("response", "completion"):
        out = json.loads(row[column])
        assert list(out) == list(page)
        assert [list(s) for s in out["sections"]] == [list(s) for s in page["sections"]]
        assert out["sections"][0]["type"] == "hero" and out["sections"][1]["open"] is True
        assert out["sections"][1]["email"] == PLACEHOLDERS["EMAIL_ADDRESS"]
        assert out["sections"][1]["owner"] == "[PERSON_NAME]"
        assert "555-0132" not in row[column]
    context = json.loads(row["context"])
    assert context["user_id"] == id_hash("user-1") and context["owner"] == "[PERSON_NAME]"
    messages = json.loads(row["messages"])
    assert messages[0]["role"] == "user" and "Maria" not in messages[0]["content"]


def test_unparseable_json_is_redacted_as_text_and_counted(engine):
    row = scored_example(
        2, response_format="json", response='{"headline": "Call 415-555-0132"', completion="{}"
    )
    prep = prepare_example(row)
    prep.apply(engine.redact_groups([prep.segments])[0].texts)
    assert prep.notes["json_unparseable"] == 1
    assert "415-555-0132" not in row["response"]


def test_interaction_record_texts_and_feedback_edits(engine):
    record = {
        "type": "interaction",
        "id": "i1",
        "org_id": "org_a",
        "occurred_at": "2026-03-01T10:00:00Z",
        "task": "chat",
        "messages": [{"role": "user", "content": "I'm Priya Patel, email priya@acme.io"}],
        "response": "Hi Priya!",
        "context": {"account_id": "acct-9", "note": "VIP: Priya Patel"},
    }
    prep = prepare_record("interaction", record)
    prep.apply(engine.redact_groups([prep.segments])[0].texts)
    assert record["messages"][0] == {
        "role": "user",
        "content": "I'm [PERSON_NAME], email contact@example.com",
    }
    assert record["response"] == "Hi [PERSON_NAME]!"
    assert record["context"] == {"account_id": id_hash("acct-9"), "note": "VIP: [PERSON_NAME]"}
    edit = {
        "type": "feedback",
        "interaction_id": "i1",
        "kind": "edit",
        "value": "Call Priya on 020 7946 0958",
    }
    prep = prepare_record("feedback", edit)
    prep.apply(engine.redact_groups([prep.segments])[0].texts)
    assert edit["value"] == "Call [PERSON_NAME] on +1 (555) 000-0000"
    assert tenant_hash("org_a") != tenant_hash("org_b") and len(tenant_hash("org_a")) == 16


def test_recall_on_the_labelled_corpus_is_complete_on_structured_kinds(engine):
    corpus = build_corpus(60, seed=3)
    detected = engine.detect_groups([[m.text] for m in corpus])
    result = recall(corpus, [[(r.start, r.end) for r in found[0]] for found, _ in detected])
    for kind in STRUCTURED:
        assert result[kind]["recall"] == 1.0, (kind, result[kind]["missed"])
    assert result["person"]["recall"] >= 0.95 and result["address"]["recall"] >= 0.95
    outputs = engine.redact_groups([[m.text] for m in corpus])
    assert sum(len(scan(g.texts[0])) for g in outputs) == 0


def test_corpus_spans_are_exact():
    for message in build_corpus(30, seed=5):
        assert 70 <= message.words <= 200
        for entity in message.entities:
            assert message.text[entity.start : entity.end] == entity.text
