"""The engine's own Presidio recognizers: addresses, phone formats, cards, national ids, names.

Imports Presidio at module level, so only `engine.py` imports this module, inside a function.
Each recognizer is an `EntityRecognizer` running compiled regular expressions; a pattern with a
named group `pii` reports only that group (e.g. the name after "my name is").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

from presidio_analyzer import EntityRecognizer, RecognizerResult
from presidio_analyzer.context_aware_enhancers import ContextAwareEnhancer
from spacy.lang.en.stop_words import STOP_WORDS as _SPACY_STOP_WORDS

from pipeline.anonymize import patterns
from pipeline.anonymize.names import BUSINESS_ENDINGS, FIRST_NAMES
from pipeline.anonymize.patterns import Found

Validator = Callable[[str, str, int], bool]  # (value, whole text, start) -> keep?

#: Words that end a name taken after a cue ("ask for thorsen at reception"): spaCy's English stop
#: words and the words people write after a name in a message.
STOP_WORDS = frozenset(
    _SPACY_STOP_WORDS
    | {
        "please",
        "thanks",
        "thank",
        "asap",
        "today",
        "tomorrow",
        "yesterday",
        "reception",
        "desk",
        "front",
        "office",
        "team",
        "support",
        "help",
        "hello",
        "knows",
        "said",
        "says",
        "has",
        "was",
        "is",
        "will",
    }
)


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


class FinderRecognizer(EntityRecognizer):
    """Report the spans a `patterns` finder returns (one finder may report several entity types)."""

    def __init__(self, entities: Sequence[str], finder: Callable[[str], Iterable[Found]], name: str):
        self._finder = finder
        super().__init__(supported_entities=list(entities), name=name, supported_language="en")

    def load(self) -> None:
        return None

    def analyze(self, text, entities, nlp_artifacts=None):
        wanted = set(entities or self.supported_entities)
        return [
            RecognizerResult(entity, start, end, score)
            for entity, start, end, score in self._finder(text)
            if entity in wanted and end > start
        ]


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

# ---------------------------------------------------------------- names

_NAME = r"[A-Z][a-zà-ÿ]+(?:['-][A-Z]?[a-zà-ÿ]+)?"
_SURNAME = r"(?:[ \t]+(?:(?:van|von|de|da|del|di|le|la|O')[ \t]?)?" + _NAME + r")?"  # on the same line
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


def _all_cues(text: str) -> list[Found]:
    return [*patterns.find_key_values(text), *patterns.find_table_cells(text)]


_LOWER_FIRST_NAMES = frozenset(n.lower() for n in FIRST_NAMES)


def _cued_names(text: str) -> list[Found]:
    found = [
        *patterns.find_cued_names(text, STOP_WORDS),
        *patterns.find_introduced_names(text, _LOWER_FIRST_NAMES, STOP_WORDS),
        *patterns.find_speaker_labels(text),
    ]
    if "\n" in text:
        streets = [start for _, start, _, _ in patterns.find_addresses(text)]
        found.extend(patterns.find_name_lines(text, streets))
    return found


def engine_recognizers() -> list[EntityRecognizer]:
    """The recognizers Flywheel adds beside spaCy NER and Presidio's IP recognizer."""
    return [
        RegexRecognizer("EMAIL_ADDRESS", [(EMAIL, 1.0)], "FlywheelEmailRecognizer"),
        FinderRecognizer(["PHONE_NUMBER"], patterns.find_phones, "FlywheelPhoneRecognizer"),
        FinderRecognizer(["CREDIT_CARD"], patterns.find_cards, "FlywheelCardRecognizer"),
        FinderRecognizer(["IBAN_CODE"], patterns.find_ibans, "FlywheelIbanRecognizer"),
        FinderRecognizer(["NATIONAL_ID"], patterns.find_national_ids, "FlywheelNationalIdRecognizer"),
        FinderRecognizer(["ADDRESS"], patterns.find_addresses, "FlywheelAddressRecognizer"),
        FinderRecognizer(sorted(set(patterns.KEY_ENTITIES.values())), _all_cues, "FlywheelCueRecognizer"),
        FinderRecognizer(["PERSON"], _cued_names, "FlywheelCuedNameRecognizer"),
        RegexRecognizer("PERSON", PERSON, "FlywheelNameRecognizer", _name_ok),
        RegexRecognizer("ORGANIZATION", BUSINESS, "FlywheelBusinessRecognizer"),
        RegexRecognizer("ORGANIZATION", BUSINESS_CUES, "FlywheelBusinessCueRecognizer", _name_ok),
    ]
