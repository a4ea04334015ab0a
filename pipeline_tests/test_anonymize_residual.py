"""The independent residual-PII detector: finds planted values, ignores placeholders and prose."""

from __future__ import annotations

import pytest

from pipeline.anonymize.checksums import iban_ok, luhn_ok
from pipeline.anonymize.residual import count_by_kind, redacted_context, scan
from pipeline_tests.anonymize_helpers import PLANTED

EXPECTED_KIND = {
    "email": "email",
    "phone": "phone",
    "phone_intl": "phone",
    "card": "card",
    "ip": "ip",
    "ipv6": "ip",
    "ssn": "national_id",
    "iban": "iban",
}


@pytest.mark.parametrize("name", sorted(PLANTED))
def test_finds_each_planted_kind(name):
    findings = scan(PLANTED[name])
    assert [f.kind for f in findings] == [EXPECTED_KIND[name]]


@pytest.mark.parametrize(
    "text,kind",
    [
        ("reach me: +44 20 7946 0958", "phone"),
        ("or 020 7946 0958 at the office", "phone"),
        ("text 555-0199", "phone"),
        ("call 4155550132 tonight", "phone"),
        ("amex 3782 822463 10005", "card"),
        ("SSN: 219099999", "national_id"),
        ("NINO AB 12 34 56 C", "national_id"),
        ("IBAN GB82WEST12345698765432.", "iban"),
    ],
)
def test_finds_other_formats(text, kind):
    assert [f.kind for f in scan(text)] == [kind]


def test_placeholders_and_ordinary_text_are_not_pii():
    text = (
        "Write to contact@example.com or call +1 (555) 000-0000. [PERSON_NAME] at [ADDRESS] paid with [CARD_NUMBER] "
        "from [IP_ADDRESS]; [NATIONAL_ID], [IBAN]. On 2026-03-15 at 10:30:00 we sold 1,299 loaves for $4,500.00, "
        "order #100234, ZIP 78701-1234, version 2.4, page 3 of 12."
    )
    assert scan(text) == []


def test_checksums_reject_near_misses():
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert scan("card 4111 1111 1111 1112 is a typo") == []
    assert iban_ok("DE89 3704 0044 0532 0130 00") and not iban_ok("DE88 3704 0044 0532 0130 00")


@pytest.mark.parametrize("hashed_id", ["ca05bc2bf73745fe", "df91d97b8518e7a9", "ae08ef776d536d49"])
def test_a_hashed_user_id_that_passes_mod_97_is_not_an_iban(hashed_id):
    # The anonymizer writes user ids as 16 hex characters; ~1 in 1,900 passes the bare mod-97
    # check ("ca" + "05" + 12 hex). No country's IBAN has that length and layout.
    assert not iban_ok(hashed_id)
    assert scan(f"user {hashed_id} saved it") == []


def test_redacted_context_never_shows_the_value():
    text = PLANTED["email"]
    (finding,) = scan(text)
    shown = redacted_context(text, finding)
    assert "maria.lopez" not in shown and "email" in shown and "Write to" in shown


def test_count_by_kind():
    counts = count_by_kind([PLANTED["email"], PLANTED["card"] + " " + PLANTED["phone"], "nothing here"])
    assert counts == {"email": 1, "card": 1, "phone": 1}


@pytest.mark.parametrize(
    "text,kind",
    [
        # a placeholder is allowed only as a whole token: these hold real values around it
        ("write to maria.contact@example.com today", "email"),
        ("or contact@example.com.au for Australia", "email"),
        ("call +1 (555) 000-00001 now", "phone"),
        ("call 4+1 (555) 000-0000 now", "phone"),
        # extensions, national formats, lower-case IBANs, 12-digit cards
        ("call +1-202-555-0143x1234 tonight", "phone"),
        ("our desk: (030) 6913920 ext 22201", "phone"),
        ("ring 06-7/439 1500 after lunch", "phone"),
        ("iban de89370400440532013000 please", "iban"),
        ("iban de89 3704 0044 0532 0130 00 please", "iban"),
        ("maestro 501811524492 on file", "card"),
        ("my PESEL is 93090881248", "national_id"),
        ("codice fiscale GRNNGN11S10E780I", "national_id"),
        ("my ni number is zz 846798 t.", "national_id"),
    ],
)
def test_hardened_formats_are_found(text, kind):
    assert kind in [f.kind for f in scan(text)], scan(text)


@pytest.mark.parametrize(
    "text",
    [
        "Write to contact@example.com, or call +1 (555) 000-0000.",
        "([PERSON_NAME], contact@example.com)",
        "version 2.4.1 shipped on 2026-03-15, order 100234, 12 items at $4,500.00",
        "extension x12 of the plan",
    ],
)
def test_placeholders_as_whole_tokens_and_prose_pass(text):
    assert scan(text) == []


def test_a_placeholder_that_ends_the_text_is_allowed():
    assert scan("Call +1 (555) 000-0000\ncontact@example.com") == []
