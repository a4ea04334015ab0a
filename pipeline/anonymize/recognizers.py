"""The engine's own Presidio recognizers: addresses, phone formats, cards, national ids, names.

Imports Presidio at module level, so only `engine.py` imports this module, inside a function.
Each recognizer is an `EntityRecognizer` running compiled regular expressions; a pattern with a
named group `pii` reports only that group (e.g. the name after "my name is").
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence

import phonenumbers
from presidio_analyzer import EntityRecognizer, RecognizerResult
from presidio_analyzer.context_aware_enhancers import ContextAwareEnhancer

from pipeline.anonymize.checksums import luhn_ok
from pipeline.anonymize.names import BUSINESS_ENDINGS, FIRST_NAMES

Validator = Callable[[str, str, int], bool]  # (value, whole text, start) -> keep?


class RegexRecognizer(EntityRecognizer):
    """Report every match of its patterns (or of their `pii` group) as one entity type."""

    def __init__(
        self,
        entity: str,
        patterns: Sequence[tuple[re.Pattern, float]],
        name: str,
        validate: Validator | None = None,
    ):
        self._patterns = list(patterns)
        self._validate = validate
        super().__init__(supported_entities=[entity], name=name, supported_language="en")

    def load(self) -> None:  # nothing to load: patterns are compiled at construction
        return None

    def analyze(self, text, entities, nlp_artifacts=None):
        entity = self.supported_entities[0]
        if entities and entity not in entities:
            return []
        out = []
        for pattern, score in self._patterns:
            has_group = "pii" in pattern.groupindex
            for match in pattern.finditer(text):
                start, end = match.span("pii") if has_group else match.span()
                if start < 0 or end <= start:
                    continue
                if self._validate and not self._validate(text[start:end], text, start):
                    continue
                out.append(RecognizerResult(entity, start, end, score))
        return out


class NoContextEnhancer(ContextAwareEnhancer):
    """Skip lemma-based context boosting: our recognizers score by pattern strength and checksums.

    (It also needs spaCy's lemmatizer, which the NER-only pipeline does not load.)
    """

    def __init__(self) -> None:
        super().__init__(0.0, 0.0, 0, 0)

    def enhance_using_context(self, text, raw_results, nlp_artifacts, recognizers, context=None):
        return raw_results


# ---------------------------------------------------------------- structured kinds

EMAIL = re.compile(r"(?<![\w.+-])[\w.%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}\b")

CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?!\d)")

SSN = (
    (re.compile(r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])"), 0.95),
    (re.compile(r"(?<![\d-])\d{3} \d{2} \d{4}(?![\d-])"), 0.8),
    (
        re.compile(
            r"(?i:\bssn\b|social security(?: number| no\.?)?|tax id|national id(?: number)?)(?:\W{0,3}(?i:is|was|number|no\.?))?\W{0,4}(?P<pii>\d{9}|\d{3}[- ]\d{2}[- ]\d{4})(?!\d)"
        ),
        0.95,
    ),
    # UK National Insurance number
    (re.compile(r"\b[A-CEGHJ-PR-TW-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b"), 0.85),
)

_PHONE_CANDIDATE = re.compile(
    r"(?<![\w+])(?:\+|00)?(?:\(\d{1,5}\)|\d)[\d \t().\-/]{4,22}\d(?:\s?(?:x|ext\.?)\s?\d{1,5})?(?!\d)"
)
_DATE_LIKE = re.compile(r"\d{1,4}[./-]\d{1,2}[./-]\d{1,4}")
_SSN_LIKE = re.compile(r"\d{3}-\d{2}-\d{4}")
_PHONE_WORDS = re.compile(r"(?i)phone|call|tel|mobile|cell|whatsapp|text|fax|reach|number|ring")
_PHONE_REGIONS = ("US", "GB", "DE", "FR", "IN", "AU", "BR", "ES", "IT", "NL")


def _phone_ok(value: str, text: str, start: int) -> bool:
    digits = sum(ch.isdigit() for ch in value)
    compact = value.strip()
    if compact.startswith(("+", "00")):
        if not 8 <= digits <= 15:
            return False
        try:
            number = phonenumbers.parse("+" + compact[2:] if compact.startswith("00") else compact, None)
        except phonenumbers.NumberParseException:
            return True  # a '+' and 8..15 grouped digits: treat as a phone number all the same
        return phonenumbers.is_possible_number(number) or digits >= 10
    if _DATE_LIKE.fullmatch(compact) or _SSN_LIKE.fullmatch(compact):
        return False
    try:
        ipaddress.ip_address(compact)
        return False
    except ValueError:
        pass
    if any(ch in " .-()/\t" for ch in compact):
        return 7 <= digits <= 13
    if not 10 <= digits <= 12:
        return False
    if _PHONE_WORDS.search(text, max(0, start - 30), start):
        return True
    for region in _PHONE_REGIONS:
        try:
            if phonenumbers.is_valid_number(phonenumbers.parse(compact, region)):
                return True
        except phonenumbers.NumberParseException:
            continue
    return False


def _card_ok(value: str, text: str, start: int) -> bool:
    digits = "".join(ch for ch in value if ch.isdigit())
    return 13 <= len(digits) <= 19 and len(set(digits)) > 1 and luhn_ok(digits)


# ---------------------------------------------------------------- addresses

_SUFFIX = (
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|Ter|"
    r"Parkway|Pkwy|Highway|Hwy|Circle|Cir|Square|Sq|Trail|Trl|Crescent|Close|Row|Alley|Plaza|Loop|Pike|Mews|Gardens)"
)
_UNIT = r"(?:,?\s+(?:Apt|Apartment|Suite|Ste|Unit|Floor|Fl|Room|Rm|#)\.?\s*#?[A-Za-z0-9-]+)?"
_CITY_STATE_ZIP = (
    r"(?:,\s*[A-Z][A-Za-z.'-]+\b(?:\s[A-Z][A-Za-z.'-]+\b){0,2})?"  # city
    r"(?:,?\s+(?:[A-Z]{2}\s+\d{5}(?:-\d{4})?|[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2}))?"  # state + ZIP, or UK postcode
)
ADDRESS = (
    # 1234 Elm Street, Apt 5, Austin, TX 78701 / 221B Baker Street, London NW1 6XE
    (
        re.compile(
            r"\b\d{1,6}[A-Za-z]?\s+(?:(?:N|S|E|W|NE|NW|SE|SW|North|South|East|West)\.?\s+)?"
            r"(?:[A-Z0-9][A-Za-z0-9'.-]*\s+){0,4}?" + _SUFFIX + r"\b\.?" + _UNIT + _CITY_STATE_ZIP
        ),
        0.9,
    ),
    # Am Markt 63, 10115 Berlin / Rue Cler 5, 75007 Paris: a street, its number, a postcode and a town
    (
        re.compile(
            r"\b(?:[A-ZÄÖÜ][\wäöüßéè.'-]*\s){1,3}\d{1,4}[a-z]?,\s*\d{4,5}\s+[A-ZÄÖÜ][a-zäöüßéè-]+(?:\s[A-ZÄÖÜ][a-zäöüßéè-]+)?"
        ),
        0.9,
    ),
    # Hauptstraße 12, 10115 Berlin
    (
        re.compile(
            r"\b[A-ZÄÖÜ][a-zäöüß]+(?:straße|strasse|str\.|weg|platz|gasse|allee|ring|damm)\s+\d{1,4}[a-z]?"
            r"(?:,\s*\d{5}\s+[A-ZÄÖÜ][a-zäöüß]+)?"
        ),
        0.9,
    ),
    # 12 rue de Rivoli, 75001 Paris
    (
        re.compile(
            r"\b\d{1,4}(?:\s?bis|\s?ter)?,?\s+(?i:rue|avenue|boulevard|bd|place|allée|chemin|quai|calle|via|avenida)"
            r"(?:\s+[A-Za-zÀ-ÿ'-]+){1,5}?(?:,\s*\d{5}\s+[A-Z][A-Za-zÀ-ÿ-]+|(?=[,.;\n]))"
        ),
        0.85,
    ),
    (re.compile(r"\b(?i:P\.?\s?O\.?\s*Box)\s+\d{1,6}\b" + _CITY_STATE_ZIP), 0.9),
)

# ---------------------------------------------------------------- names

_NAME = r"[A-Z][a-zà-ÿ]+(?:['-][A-Z]?[a-zà-ÿ]+)?"
_SURNAME = r"(?:\s+(?:(?:van|von|de|da|del|di|le|la|O')\s?)?" + _NAME + r")?"
_FIRST = "|".join(sorted(FIRST_NAMES, key=len, reverse=True))
PERSON = (
    # a first name from the list, with the capitalised word after it as the surname
    (re.compile(r"\b(?P<pii>(?:" + _FIRST + r")" + _SURNAME + r")\b"), 0.75),
    # Dr. Patel, Mrs Okafor
    (re.compile(r"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof)\.?\s+(?P<pii>" + _NAME + _SURNAME + r")"), 0.9),
    # my name is X Y / I'm X / ask for X / sign-offs
    (
        re.compile(
            r"(?:\b(?i:my name is|my name's|name's|call me|ask for|speak with|speak to|talk to|signed|colleague|"
            r"copy|cc|attention|attn|contact|ping|tell|thank)|\bI'm|\bI am|"
            r"\b(?i:thanks|thank you|cheers|regards|best|sincerely|love|hi|hello|hey|dear)[,!]?\s*\n?|[\u2014\u2013~])"
            r"\s*(?P<pii>" + _NAME + _SURNAME + r")"
        ),
        0.9,
    ),
)
_NOT_NAMES = frozenset(
    [
        "The",
        "A",
        "An",
        "I",
        "We",
        "You",
        "Our",
        "My",
        "Your",
        "This",
        "That",
        "It",
        "Please",
        "Thanks",
        "Also",
        "And",
        "But",
        "So",
        "Just",
        "Today",
        "Tomorrow",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
        "January",
        "February",
        "March",
        "April",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
        "Team",
        "Everyone",
        "All",
        "There",
    ]
)


def _name_ok(value: str, text: str, start: int) -> bool:
    return value.split()[0] not in _NOT_NAMES


_ENDINGS = "|".join(BUSINESS_ENDINGS)
BUSINESS = (
    (
        re.compile(
            r"\b(?!(?:The|Our|My|A|An|This|Your|We|I|At|In|For|From)\b)(?P<pii>(?:[A-Z][A-Za-z&'’-]*\s+){1,3}(?:"
            + _ENDINGS
            + r")\b\.?)"
        ),
        0.95,
    ),
)


BUSINESS_CUES = (
    (
        re.compile(
            r"\b(?:I run|we run|partner with|partnered with|work(?:s|ing)? (?:at|for)|from|contract for|owner of|"
            r"founder of|on behalf of)\s+(?P<pii>[A-Z][A-Za-z&'-]+(?:\s+(?:&\s+)?[A-Z][A-Za-z&'-]+){0,3})"
        ),
        0.7,
    ),
)


def engine_recognizers() -> list[EntityRecognizer]:
    """The recognizers Flywheel adds beside spaCy NER and Presidio's IP and IBAN recognizers."""
    return [
        RegexRecognizer("EMAIL_ADDRESS", [(EMAIL, 1.0)], "FlywheelEmailRecognizer"),
        RegexRecognizer("PHONE_NUMBER", [(_PHONE_CANDIDATE, 0.75)], "FlywheelPhoneRecognizer", _phone_ok),
        RegexRecognizer("CREDIT_CARD", [(CARD, 1.0)], "FlywheelCardRecognizer", _card_ok),
        RegexRecognizer("NATIONAL_ID", SSN, "FlywheelNationalIdRecognizer"),
        RegexRecognizer("ADDRESS", ADDRESS, "FlywheelAddressRecognizer"),
        RegexRecognizer("PERSON", PERSON, "FlywheelNameRecognizer", _name_ok),
        RegexRecognizer("ORGANIZATION", BUSINESS, "FlywheelBusinessRecognizer"),
        RegexRecognizer("ORGANIZATION", BUSINESS_CUES, "FlywheelBusinessCueRecognizer", _name_ok),
    ]
