"""Finders for the engine: text in, `(entity, start, end, score)` spans out; no Presidio here.

`recognizers.py` wraps each finder as a Presidio recognizer. Kept apart so every rule can be
tested as a pure function, and so the residual-PII gate (`residual.py`, written separately on
purpose) does not share a blind spot with them.

* phones: a candidate pattern for international and national formats (`+49(0) 915000806`,
  `(06)11/496-0032`, `043-91 50 00`) with an optional extension (`x1234`, `ext. 12`, `#15922`);
  candidates without separators are kept when phonenumbers' `PhoneNumberMatcher` (leniency
  POSSIBLE) finds a number in them for one of the regions, or a phone word stands before them;
* IBANs: any case, grouped or not, by the ISO 13616 mod-97 check;
* cards: 12..19 digits, a card network's prefix and the Luhn check;
* national ids: after a label in ten languages (`SSN`, `NI number`, `NIR`, `DNI`, `codice
  fiscale`, `BSN`, `PESEL`, `personnummer`, `adóazonosító jel`, ...), and without one when a
  checksum or format says so (US SSN, UK NINO, DNI/NIE, NIR, PESEL, personnummer, codice fiscale);
* addresses: a house number then a street and a USPS Publication 28 suffix (`1234 Elm St`), a
  European street type before the name (`rue`, `Calle`, `Via`, `ul.`, `Rua`) or after it
  (`Kossuth utca`, `Næsbyholm Allé`), or fused to it (`-straße`, `-gasse`, `-straat`, `-vej`,
  `-gatan`); units (`Apt 5`, `Suite 300`, `Piano 3`), then a postcode + city line on the same
  line or the next; after an address cue (`I live at`, `address:`) any street-looking phrase;
* cues in logs and tables: `name=`, `email=`, `phone:`, `address:`, and CSV columns by their
  header (`name,email,phone,street`);
* names after strong cues (`account holder`, `my name is`, `ask for`) in any case, and after
  weaker ones (`this is … speaking`, `hey it's`, `the account is under`, `… here`) when the words
  are a listed first name or no common English word (`vocabulary.common`, wordfreq);
* a block's street line: the line above a postcode + town line (`Viela Albuquerque` /
  `97588-713 Carvalho de Goiás`), whatever its words.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator
from functools import lru_cache

import phonenumbers

from pipeline.anonymize.checksums import card_ok, iban_ok, national_id_ok
from pipeline.anonymize.streets import (
    COMPOUND_ENDINGS,
    POSTFIX_TYPES,
    PREFIX_ABBREVIATIONS,
    PREFIX_TYPES,
    UNIT_WORDS,
    USPS_SUFFIXES,
)

Found = tuple[str, int, int, float]


def _alt(words) -> str:
    """An alternation of `words` as a trie ("pas(?:adizo|aje|eo)"): the same matches as the words
    longest first, but Python's regex engine no longer tries each of hundreds of words at every
    position (the street-type patterns run about twice as fast)."""
    trie: dict = {}
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict) -> str:
        branches = [re.escape(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    return build(trie)


# ---------------------------------------------------------------- phones

_EXT = r"(?:[ \t]*(?:x|ext\.?|extension|#)[ \t]*\d{1,6})"
PHONE_CANDIDATE = re.compile(
    r"(?<![\w+/.:@-])(?:\+|00)?(?:\(\+?\d{1,5}\)|\d)(?:[\d \t.\-/]|\(\d{1,5}\)){4,24}\d"
    + _EXT
    + r"?(?!\d|\.\d)",
    re.IGNORECASE,
)
_EXT_AT_END = re.compile(_EXT + r"$", re.IGNORECASE)
_DATE_LIKE = re.compile(r"\d{1,4}[./-]\d{1,2}[./-]\d{1,4}")
_SSN_LIKE = re.compile(r"\d{3}-\d{2}-\d{4}")
_PHONE_WORDS = re.compile(r"(?i)phone|call|tel|mobile|cell|whatsapp|text|fax|reach|number|ring|ring")
PHONE_REGIONS = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "PL", "SE", "HU", "PT", "BR", "DK", "IN", "AU")


def phone_ok(value: str, text: str = "", start: int = 0) -> bool:
    base = _EXT_AT_END.sub("", value).strip()
    digits = sum(ch.isdigit() for ch in base)
    if base.startswith(("+", "00")):
        return 7 <= digits <= 15
    if _DATE_LIKE.fullmatch(base) or _SSN_LIKE.fullmatch(base):
        return False
    try:
        ipaddress.ip_address(base)
        return False
    except ValueError:
        pass
    if base != value.strip():  # it has an extension
        return 6 <= digits <= 13
    if any(ch in " .-()/\t" for ch in base):
        return 7 <= digits <= 13
    if not 8 <= digits <= 12:
        return False
    if _PHONE_WORDS.search(text, max(0, start - 30), start):
        return True
    matcher = phonenumbers.PhoneNumberMatcher
    return any(
        next(iter(matcher(base, region, leniency=phonenumbers.Leniency.POSSIBLE)), None) is not None
        for region in PHONE_REGIONS
    )


def find_phones(text: str) -> Iterator[Found]:
    for m in PHONE_CANDIDATE.finditer(text):
        if phone_ok(m.group(0), text, m.start()):
            yield ("PHONE_NUMBER", m.start(), m.end(), 0.75)


# ---------------------------------------------------------------- IBANs and cards

_IBAN_CANDIDATE = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?:[ -]?[A-Za-z0-9]){11,30}")


def find_ibans(text: str) -> Iterator[Found]:
    for m in _IBAN_CANDIDATE.finditer(text):
        candidate = m.group(0)
        while len(candidate.replace(" ", "").replace("-", "")) >= 15:
            end = m.start() + len(candidate)
            if (end == len(text) or not text[end].isalnum()) and iban_ok(candidate.replace("-", " ")):
                yield ("IBAN_CODE", m.start(), end, 1.0)
                break
            candidate = candidate[:-1].rstrip(" -")


CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){11,18}(?!\d)")


def find_cards(text: str) -> Iterator[Found]:
    for m in CARD.finditer(text):
        if card_ok("".join(ch for ch in m.group(0) if ch.isdigit())):
            yield ("CREDIT_CARD", m.start(), m.end(), 1.0)


# ---------------------------------------------------------------- national ids

ID_LABELS = (
    "ssn",
    "social security number",
    "social security no",
    "social security",
    "tax id",
    "tin",
    "national id number",
    "national id",
    "id number",
    "ni number",
    "ni no",
    "national insurance number",
    "national insurance no",
    "national insurance",
    "nino",
    "nir",
    "n° sécu",
    "no sécu",
    "numéro de sécurité sociale",
    "sécurité sociale",
    "dni",
    "nif",
    "nie",
    "documento de identidad",
    "documento",
    "codice fiscale",
    "cod. fiscale",
    "cf",
    "bsn",
    "bsn-nummer",
    "burgerservicenummer",
    "pesel",
    "nr pesel",
    "personnummer",
    "personnr",
    "pnr",
    "adóazonosító jel",
    "adóazonosító",
    "személyi szám",
    "személyi azonosító",
    "adószám",
    "taj szám",
    "taj",
    "steuer-id",
    "steuer-identifikationsnummer",
    "steuernummer",
    "sozialversicherungsnummer",
    "cpr-nummer",
    "cpr",
    "cpf",
    "nº contribuinte",
    "contribuinte",
    "passport number",
    "passport",
)
_ID_CUE = re.compile(
    r"(?i)(?<![\w])(?:" + _alt(ID_LABELS) + r")(?![\w])"
    r"(?:\W{0,3}(?:is|was|number|no\.?|nr\.?|num|es|est|è|é|är|ist|jest|=|:))?[\s:=#'\"]{0,4}"
    r"(?P<pii>(?:[A-Za-z]{1,6} ?)?\d[A-Za-z0-9]*(?:[ ./-]\d[A-Za-z0-9]*){0,5}(?:[ ./-][A-Za-z](?![\w]))?)"
)
_ID_FORMATS = (
    (re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}([- ])(?!00)\d{2}\1(?!0000)\d{4}(?![\d-])"), 0.95, False),
    (re.compile(r"\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b"), 0.85, False),
    (re.compile(r"(?i)\b[A-Z]{6}\d{2}[A-EHLMPR-T]\d{2}[A-Z]\d{3}[A-Z]\b"), 0.9, True),  # codice fiscale
    (re.compile(r"(?i)\b(?:\d{8}|[XYZ]-?\d{7})-?[A-Z]\b"), 0.9, True),  # DNI, NIE
    (
        re.compile(r"(?<![\d-])[12] ?\d{2} ?\d{2} ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}(?!\d)"),
        0.9,
        True,
    ),  # NIR
    (re.compile(r"(?<![\d-])(?:19|20)?\d{6}[-+]\d{4}(?!\d)"), 0.85, True),  # personnummer
    (re.compile(r"(?<![\d-])\d{11}(?!\d)"), 0.7, True),  # PESEL
)


def find_national_ids(text: str) -> Iterator[Found]:
    for m in _ID_CUE.finditer(text):
        value = m.group("pii")
        if sum(ch.isdigit() for ch in value) >= 5:
            yield ("NATIONAL_ID", m.start("pii"), m.end("pii"), 0.95)
    for pattern, score, checked in _ID_FORMATS:
        for m in pattern.finditer(text):
            if not checked or national_id_ok(m.group(0)):
                yield ("NATIONAL_ID", m.start(), m.end(), score)


# ---------------------------------------------------------------- addresses

_UP = "A-ZÀ-ÖØ-ÞĀĂĄĆČĎĐĒĖĘĚĞĪĮİĶĹĻĽŁŃŅŇŌŐŒŔŘŚŞŠŢŤŪŮŰŲŸŹŻŽ"
_CAP = rf"[{_UP}][\w'’.-]*"  # a capitalised word
_WORD = r"[^\W\d_][\w'’.-]*"  # any word
_PARTICLE = r"(?:de|del|de la|della|delle|dei|degli|di|da|do|dos|das|du|des|la|le|les|l'|d'|van|von|der|den|the|of|y|e|i)"
_NUM = r"(?:\d{1,5}[A-Za-z]?(?:\s?[/-]\s?\d{1,5}[A-Za-z]?)?\.?|(?i:s/n)º?)"  # 12, 32/85, 5A, S/N (no number)
_UNIT = (
    r"(?:,?\s*(?i:" + _alt(UNIT_WORDS - {"#"}) + r")\.?\s*(?:#\s*)?[\w-]{1,6}\b|,?\s*#\s*[\w-]{1,6}\b"
    r"|,?\s*\d{1,3}\s?[º°ª]\s?[A-Za-z0-9]?\b){0,2}"
)
_CITY = rf"{_CAP}(?:[ -](?:{_PARTICLE}[ -])?{_CAP}){{0,2}}"
_POSTCODE = (
    r"(?:[A-Z]{1,2}-)?(?:\d{8}|\d{2,5}(?:[ -]\d{2,4})?)(?:\s?[A-Z]{2}(?![\w]))?"  # 8 digits: a Brazilian CEP
)
_UK_POSTCODE = r"[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2}"
_TOWN = (
    rf"(?:(?:,[ \t]*|[ \t]*\n[ \t]*)(?:{_POSTCODE},?[ \t]+{_CITY}(?:[ \t]*\([A-Z]{{2}}\))?"
    rf"|{_CITY},[ \t]*[A-Z]{{2}}[ \t]+\d{{5}}(?:-\d{{4}})?|{_CITY}[ \t]+{_UK_POSTCODE}|{_CITY},[ \t]*{_POSTCODE}))?"
)
_USPS = r"(?i:" + _alt(USPS_SUFFIXES) + r")"
_STRONG_PREFIX = PREFIX_TYPES - {
    "via",
    "place",
    "square",
    "route",
    "passage",
    "cours",
    "largo",
    "pl",
    "av",
    "bd",
    "os",
    "vila",
    "acceso",
    "canale",
    # words of everyday Spanish and Portuguese (a lake, a park, a field, a sector): a street only capitalised
    *"subida bajada senda sendero paraje ribera muelle carrera autopista barrio sector jardín lugar área".split(),
    *"campo colônia colonia conjunto distrito estação estacao fazenda feira lago lagoa morro núcleo".split(),
    *"nucleo parque pátio patio quadra setor sítio sitio trecho trevo vale vereda alameda".split(),
} | (PREFIX_ABBREVIATIONS - {"al.", "pq.", "res."})
_PREFIX_ANY = r"(?i:" + _alt(PREFIX_TYPES | PREFIX_ABBREVIATIONS) + r")"
_PREFIX_STRONG = r"(?i:" + _alt(_STRONG_PREFIX) + r")"
#: Without a house number only a spelled-out type says street ("Nicole R. Marques" is a name).
_PREFIX_WORD = r"(?i:" + _alt(PREFIX_TYPES) + r")"
#: Words that start a sentence, not a street name ("I live at Kossuth utca 5": the street is "Kossuth utca 5").
_NOT_STREET = r"(?!(?i:i|at|to|in|on|the|a|an|my|our|is|of|for|and|live|lives|deliver|ship|send|office|from|with|near|by|am)\b)"
_UNAMBIGUOUS_POSTFIX = {
    "utca",
    "út",
    "útja",
    "tér",
    "körút",
    "köz",
    "sétány",
    "fasor",
    "vej",
    "gade",
    "straße",
    "strasse",
    "straat",
    "gatan",
    "vägen",
    "stræde",
}
_ENDINGS = r"(?i:" + _alt(COMPOUND_ENDINGS) + r")"
_STRONG_ENDINGS = (
    r"(?i:"
    + _alt(
        "straße strasse str. gasse straat gatan vägen vej gade stræde plads laan gracht singel dijk steeg dreef "
        "allee platz weg".split()
    )
    + ")"
)

ADDRESS_PATTERNS = (
    # 1234 Elm Street, 77763 Tony Village Suite 690, 221B Baker Street: number, capitalised words, USPS suffix
    re.compile(
        rf"(?<![\w-])\d{{1,6}}[A-Za-z]?,?\s+(?:(?:N|S|E|W|NE|NW|SE|SW|North|South|East|West)\.?\s+)?"
        rf"(?:{_CAP}\s+){{0,4}}{_USPS}\b\.?" + _UNIT + _TOWN
    ),
    # the same in lower case, at most two words before a common suffix: 12 elm street
    re.compile(
        r"(?<![\w-])\d{1,6}[a-z]?\s+(?:[a-z][a-z'-]+\s+){1,2}(?:street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|"
        r"drive|dr|court|ct|way|place|pl|terrace|parkway|pkwy|highway|hwy)\b\.?" + _UNIT
    ),
    # Flat 41T, Howarth River / Unit 3, Harbour Court: a unit first, then the street
    re.compile(
        rf"(?<![\w-])(?i:flat|apartment|apt|unit|suite|studio)\.?\s*\w{{1,5}},?\s+(?:{_CAP}\s+){{0,3}}{_USPS}\b\.?"
        + _TOWN
    ),
    # the same in lower case, the comma after the unit required: flat 3, helen gateway
    re.compile(
        rf"(?<![\w-])(?i:flat|apartment|apt|unit|suite|studio)\.?\s*\d\w{{0,4}},\s+(?:[a-z][a-z'-]+\s+){{1,3}}{_USPS}\b\.?"
    ),
    # 12 rue de Rivoli / 16, avenue de Poulain: number, then a European type before the name
    re.compile(
        rf"(?<![\w-])\d{{1,5}}(?:\s?(?:bis|ter))?,?\s+{_PREFIX_ANY}\.?\s+(?:(?:{_PARTICLE}\s+)?{_WORD}\s*){{1,5}}?"
        rf"(?=[,.;\n]|$|\s+(?:in|à|en|a|w|i)\s)" + _TOWN
    ),
    # Calle Mayor 5, Via Roma, 12, ul. Kwiatowa 12/3, Rua Augusta, 25: type, name, number
    re.compile(
        rf"(?<![\w-]){_PREFIX_STRONG}\.?\s+(?:(?:{_PARTICLE}\s+)?{_WORD}[ \t]*){{1,5}}?,?[ \t]*{_NUM}"
        + _UNIT
        + _TOWN
    ),
    re.compile(
        rf"(?<![\w-]){_PREFIX_ANY}\.?\s+(?:(?:{_PARTICLE}\s+)?{_CAP}[ \t]*){{1,5}}?,?[ \t]*{_NUM}"
        + _UNIT
        + _TOWN
    ),
    # rue Clémence Samson, chemin de Mace, Praia Maria Julia Rezende: type and capitalised name, no number
    re.compile(
        rf"(?<![\w-]){_PREFIX_WORD}\.?\s+(?:{_PARTICLE}\s+)?{_CAP}(?:[ \t]+(?:{_PARTICLE}[ \t]+)?{_CAP}){{0,3}}"
        + _TOWN
    ),
    # Kossuth utca 12., Næsbyholm Allé 77, Dózsa györgy utca 176.: name, type after it, number
    re.compile(
        rf"(?<![\w-]){_NOT_STREET}(?:{_CAP}[ \t]+)(?:{_NOT_STREET}{_WORD}[ \t]+){{0,2}}(?i:"
        + _alt(POSTFIX_TYPES)
        + rf")\.?,?[ \t]*{_NUM}"
        + _UNIT
        + _TOWN
    ),
    re.compile(
        rf"(?<![\w-])(?:{_NOT_STREET}{_WORD}[ \t]+){{1,3}}(?i:"
        + _alt(_UNAMBIGUOUS_POSTFIX)
        + rf")\.?,?[ \t]*{_NUM}"
        + _UNIT
        + _TOWN
    ),
    # Am Markt 3, 50667 Köln / An der Alster 12, 20099 Hamburg / Zur Post 1, 6020 Innsbruck: German streets
    # named by a preposition and a noun; only with the house number *and* the postcode and town, since
    # "Im Jahr 2020" or "Am Ende 3 Tage" are not streets
    re.compile(
        rf"(?<![\w-])(?:Am|Im|Zum|Zur|Beim|(?:An|Auf|In|Unter|Hinter|Vor|Über) (?:der|den|dem))[ \t]+{_CAP}"
        rf"(?:[ -]{_CAP}){{0,2}}[ \t]+{_NUM},?[ \t]+\d{{4,5}}[ \t]+{_CITY}"
    ),
    # Hauptstraße 12, Fechnergasse 2/5, Kerkstraat 12, Storgatan 5, Degnemosevej 78
    re.compile(rf"(?<![\w-])[{_UP}][\w'’-]*?{_ENDINGS},?[ \t]*{_NUM}" + _UNIT + _TOWN),
    re.compile(rf"(?<![\w-])[^\W\d_][\w'’-]*?{_STRONG_ENDINGS},?[ \t]*{_NUM}" + _UNIT + _TOWN),
    # P.O. Box 1234
    re.compile(
        r"\b(?i:P\.?\s?O\.?\s*Box|Postfach|Apartado|Casella postale|Skrytka pocztowa)\s+\d{1,6}\b" + _TOWN
    ),
)
_STREETISH = re.compile(
    r"(?i)\d|\b(?:"
    + _alt(USPS_SUFFIXES | PREFIX_TYPES | POSTFIX_TYPES)
    + r")\b|(?:"
    + _alt(COMPOUND_ENDINGS)
    + r")\b"
)
_ADDRESS_CUE = re.compile(
    r"(?i:\b(?:i live at|i live on|lives at|living at|office is at|offices are at|located at|deliver(?: it)? to|"
    r"ship(?: it)? to|send (?:it|them|the \w+) to|address is|based at|moved to|come to|visit us at)\s+)"
    r"(?P<pii>(?:(?i:flat|apartment|apt|unit|suite|studio|room)\.?\s*\w{1,5},\s*)?(?:[^;,\n]|,(?=\s*\d)){4,80}?)"
    # it ends before "in <town>", a comma not followed by the house number, or a full stop that
    # does not end an abbreviation of one or two letters ("pl. Moniuszki", "r. de d. Afonso")
    r"(?=\s+(?:in|à|en|a|w|i)\s(?!\d)|[;\n]|,(?!\s*\d)|(?<!(?<![^\W\d_])[^\W\d_])(?<!(?<![^\W\d_])[^\W\d_]{2})\.(?:\s|$)|$)"
)


def find_addresses(text: str) -> list[Found]:
    """Every address span, overlapping matches of the patterns merged into one (cached: two recognizers ask)."""
    return _addresses(text)


@lru_cache(maxsize=64)
def _addresses(text: str) -> list[Found]:
    out = []
    spans = [m.span() for pattern in ADDRESS_PATTERNS for m in pattern.finditer(text)]
    spans += [m.span("pii") for m in _ADDRESS_CUE.finditer(text) if _STREETISH.search(m.group("pii"))]
    if "\n" in text:
        spans += list(_street_lines(text))
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    for start, end in merged:
        if text[end - 1] == "." and text[end - 2].isalpha() and (end == len(text) or text[end].isspace()):
            end -= 1  # the full stop after the city ends the sentence, not the address
        out.append(("ADDRESS", start, end, 0.9))
    return out


#: A line that is a postcode and a town and nothing else: `28331 Navarra`, `8783LT LOLLUM`,
#: `Lake Laura, MT 87630`, `Whitefurt W2 9NF`, `97588-713 CARVALHO DE GOIÁS`.
_TOWN_POSTCODE = (
    r"(?:[A-Z]{1,2}-)?(?:\d{8}|\d{4,5}-\d{3}|\d{2}-\d{3}|\d{3} \d{2}|\d{4,5})(?:\s?[A-Z]{2}(?![\w]))?"
)
_TOWN_LINE = re.compile(
    rf"[ \t]*(?:{_TOWN_POSTCODE},?[ \t]+(?!(?:{_CAP}[ \t]+)*{_USPS}\b){_CITY}(?:[ \t]*\([A-Z]{{2}}\))?|{_CITY},?[ \t]*[A-Z]{{2}}[ \t]+\d{{5}}(?:-\d{{4}})?"
    rf"|{_CITY}[ \t]+{_UK_POSTCODE})[ \t]*"
)
#: A street line of an address block: a few words, with a house number or capitalised.
_STREET_LINE = re.compile(rf"[ \t]*(?=[^\n]*(?:\d|[{_UP}]))[^\W_][^\n:@=]{{2,70}}?[ \t]*")
_TELEPHONE_LINE = re.compile(r"(?i)[ \t]*(?:tel|phone|mobile|fax|t|m|e|email)\b")


def _street_lines(text: str) -> Iterator[tuple[int, int]]:
    """In a block over several lines, the line above a postcode + town line is the street: both are the address.

    `Viela Albuquerque` / `97588-713 Carvalho de Goiás`, `Sjoerdboulevard 4` / `8733 FP Herkenbosch`:
    whatever the street's type or word order, its place in the block says what it is.
    """
    lines, pos = [], 0
    for line in text.split("\n"):
        lines.append((pos, line))
        pos += len(line) + 1
    for i, ((offset, line), (below_at, below)) in enumerate(zip(lines, lines[1:], strict=False)):
        if (
            below.strip()
            and _TOWN_LINE.fullmatch(below)
            and _STREET_LINE.fullmatch(line)
            and len(line.split()) <= 8
            and not _TELEPHONE_LINE.match(line)
            # a house number, a street word, or a name line above it ("Seve Rosales" / "Viela Albuquerque")
            and (_STREETISH.search(line) or (i and _NAME_LINE.fullmatch(lines[i - 1][1])))
        ):
            first = re.search(rf"[\d{_UP}]", line)
            yield offset + first.start(), below_at + len(below.rstrip())


# ---------------------------------------------------------------- cues: key=value logs, CSV headers

KEY_ENTITIES = {
    **dict.fromkeys(
        (
            "name",
            "full_name",
            "fullname",
            "user_name",
            "username",
            "customer",
            "customer_name",
            "contact",
            "contact_name",
            "account_holder",
            "holder",
            "first_name",
            "last_name",
            "firstname",
            "lastname",
            "author",
            "owner",
            "recipient",
            "sender",
            "signed_by",
        ),
        "PERSON",
    ),
    **dict.fromkeys(("email", "e-mail", "mail", "email_address"), "EMAIL_ADDRESS"),
    **dict.fromkeys(("phone", "tel", "telephone", "mobile", "cell", "fax", "phone_number"), "PHONE_NUMBER"),
    **dict.fromkeys(
        (
            "address",
            "street",
            "street_address",
            "shipping_address",
            "billing_address",
            "delivery_address",
            "addr",
            "address1",
            "address_line1",
            "address_line_1",
        ),
        "ADDRESS",
    ),
    "iban": "IBAN_CODE",
    **dict.fromkeys(
        ("ssn", "nino", "national_id", "tax_id", "dni", "nif", "bsn", "pesel", "nir"), "NATIONAL_ID"
    ),
    **dict.fromkeys(("ip", "ip_address", "client_ip", "remote_addr", "remote_ip"), "IP_ADDRESS"),
    **dict.fromkeys(("card", "card_number", "cc_number", "pan"), "CREDIT_CARD"),
}
_KEY_VALUE = re.compile(
    r"(?<![\w.-])[\"']?(?P<key>[A-Za-z][\w-]{1,30})[\"']?[ \t]*(?P<sep>=|:)[ \t]*"
    r"(?P<value>\"[^\"\n]*\"|'[^'\n]*'|[^\s,;\"']+)"
)
_LINE_REST = re.compile(r"[^\n]*?(?=\s+[\w.-]+=|\n|$)")


def find_key_values(text: str) -> Iterator[Found]:
    if "=" not in text and ":" not in text:
        return
    for m in _KEY_VALUE.finditer(text):
        entity = KEY_ENTITIES.get(m.group("key").lower())
        if entity is None:
            continue
        start, end = m.span("value")
        if text[start] in "\"'":
            start, end = start + 1, end - 1
        elif entity == "ADDRESS":  # unquoted: the rest of the line, up to the next key=
            end = start + len(_LINE_REST.match(text, start).group(0))
        elif entity == "PERSON" and m.group("sep") == ":" and not m.group("value")[:1].isupper():
            continue  # "name: value" in prose needs a capitalised name
        if end > start and text[start:end].strip():
            yield (entity, start, end, 0.9)


def _cells(line: str, delimiter: str) -> list[tuple[int, int]]:
    """(start, end) of each cell's value in a delimited line, quotes excluded."""
    cells, start, quoted = [], 0, False
    for i, ch in enumerate(line + delimiter):
        if ch == '"':
            quoted = not quoted
        elif ch == delimiter and not quoted:
            s, e = start, i
            if e - s >= 2 and line[s] == '"' and line[e - 1] == '"':
                s, e = s + 1, e - 1
            cells.append((s, e))
            start = i + 1
    return cells


_HEADER = re.compile(r"[A-Za-z_ -]{1,30}(?:[,;\t][A-Za-z_ -]{1,30}){1,30}")


def find_table_cells(text: str) -> Iterator[Found]:
    """CSV / TSV rows under a header that names the columns (`name,email,phone,street`)."""
    if "\n" not in text:
        return
    lines, pos = [], 0
    for line in text.split("\n"):
        lines.append((pos, line))
        pos += len(line) + 1
    i = 0
    while i < len(lines):
        offset, line = lines[i]
        i += 1
        if not _HEADER.fullmatch(line.strip()):
            continue
        delimiter = max(",;\t", key=line.count)
        kinds = [KEY_ENTITIES.get(h.strip().lower().replace(" ", "_")) for h in line.split(delimiter)]
        if not any(kinds):
            continue
        while i < len(lines) and lines[i][1].strip():
            row_offset, row = lines[i]
            for kind, (s, e) in zip(kinds, _cells(row, delimiter), strict=False):
                if kind and row[s:e].strip():
                    yield (kind, row_offset + s, row_offset + e, 0.9)
            i += 1


# ---------------------------------------------------------------- names after strong cues, any case

_NAME_CUE = re.compile(
    r"(?i:\b(?:my name is|my name's|name is|call me|account holder|holder|ask for|asked for|spoke with|spoke to|"
    r"speak with|speak to|talk to|talked to|talking to|colleague|signed|attention|attn|contact person|please tell|"
    r"tell|cc|regards from|love from|sincerely|yours truly)[,:]?\s+)"
    r"(?P<pii>[^\W\d_][\w'’-]*(?:[ \t]+(?:(?:de|del|da|di|van|von|der|den|la|le|y|dos|das|du)[ \t]+)?[^\W\d_][\w'’-]*){0,3})"
)


#: Words written right after a name ("this is jonas speaking", "krisztina here"): never part of it.
AFTER_NAME = frozenset(
    "speaking calling writing here again asking wanted wants needs from at in on about as and or but".split()
)


def _name_words(
    text: str,
    pos: int,
    stop_words: frozenset[str],
    first_ok: Callable[[str], bool],
    common: Callable[[str, float], bool],
    most: int = 4,
    more_common: float = 5.0,
) -> tuple[int, int] | None:
    """The name that starts at `pos`: up to `most` words, particles between them ("macedo de lima").

    The first word must pass `first_ok`; each later one is written like the first (capitalised
    after a capitalised one, lower case after a lower-case one), is no stop word and, in lower
    case, under `more_common` in Zipf frequency ("hey it's jesper willems. the ...": "willems"
    joins, "the" ends it; after a strong cue, "my colleague raymond white was", "white" joins).
    """
    words = list(_NAME_WORD.finditer(text, pos, min(len(text), pos + 120)))
    if not words or words[0].start() != pos:
        return None
    first = words[0].group(0)
    if first.lower() in stop_words or first.lower() in AFTER_NAME or not first_ok(first):
        return None
    capital = first[0].isupper()
    end = words[0].end()
    taken, i = 1, 1
    while i < len(words) and taken < most:
        w = words[i]
        if not re.fullmatch(r"[ \t]+", text[end : w.start()]):
            break
        token = w.group(0)
        if len(token) == 1 and text[w.end() : w.end() + 1] == "." and (token.isupper() or not capital):
            end, i = w.end() + 1, i + 1  # an initial: "Maren K. Holt", "lone-frode e. andresen"
            continue
        if token.lower() in _PARTICLES and i + 1 < len(words):
            nxt = words[i + 1]
            if re.fullmatch(r"[ \t]+", text[w.end() : nxt.start()]) and _more_ok(
                nxt.group(0), capital, stop_words, common, more_common
            ):
                end, taken, i = nxt.end(), taken + 1, i + 2
                continue
            break
        if not _more_ok(token, capital, stop_words, common, more_common):
            break
        end, taken, i = w.end(), taken + 1, i + 1
    return pos, end


def _more_ok(
    token: str,
    capital: bool,
    stop_words: frozenset[str],
    common: Callable[[str, float], bool],
    more_common: float,
) -> bool:
    low = token.lower()
    if low in stop_words or low in AFTER_NAME or len(token.strip("'’-")) < 2:
        return False
    if capital:
        return token[0].isupper()
    return token.islower() and not common(token, more_common)


_NAME_WORD = re.compile(r"[^\W\d_][\w'’-]*")


def _vocabulary() -> Callable[[str, float], bool]:
    from pipeline.anonymize.vocabulary import common

    return common


def find_cued_names(
    text: str, stop_words: frozenset[str], common: Callable[[str, float], bool] | None = None
) -> Iterator[Found]:
    """The words after a strong cue ("account holder", "ask for") up to a stop word or a common lower-case word."""
    common = common or _vocabulary()
    for m in _NAME_CUE.finditer(text):
        span = _name_words(text, m.start("pii"), stop_words, lambda w: True, common, more_common=5.6)
        if span:
            yield ("PERSON", *span, 0.9)


#: a transcript's speaker label: "[84:38] Ingrid Fernández: …" (timestamp, two to four capitalised words, colon)
_SPEAKER = re.compile(
    r"\[\d{1,3}:\d{2}(?::\d{2})?\]\s+(?P<pii>[^\W\d_][\w'’.-]*(?:\s+(?:[^\W\d_][\w'’.-]*)){1,3}):\s"
)


def find_speaker_labels(text: str) -> Iterator[Found]:
    """Speaker names in timestamped transcript lines: whoever speaks at `[mm:ss]` is a person."""
    for m in _SPEAKER.finditer(text):
        if m.group("pii")[0].isupper():
            yield ("PERSON", m.start("pii"), m.end("pii"), 0.9)


_PARTICLES = frozenset(
    {"de", "del", "da", "di", "van", "von", "der", "den", "la", "le", "y", "dos", "das", "du", "e"}
)

#: Weaker cues: what follows is a name only when it is a listed first name or not English
#: vocabulary ("this is marliese liebelt speaking", "the account is under freitas", "Sure, Christoffer").
_INTRO = re.compile(
    r"(?i:\b(?:this is|it's|it is|i'm|i am|hey|hi|hello|thanks|thank you|cheers|sure|dear|"
    r"(?:account|booking|reservation|order|table|ticket) is under|under the name(?: of)?|"
    r"put|as told by|according to)[,!]?[ \t]+)(?=(?P<pii>[^\W\d_]))"  # zero width: "hey it's jonas" is two cues
)
#: "Krisztina here.", "oláh klaudia here", "Jonas speaking": one to three words opening a line or turn.
_HERE = re.compile(
    r"(?:^|(?<=\n)|(?<=: )|(?<=[.!?] ))(?P<pii>[^\W\d_][\w'’-]*(?:[ \t]+[^\W\d_][\w'’-]*){0,2})[ \t]+(?i:here|speaking)\b"
)


def find_introduced_names(
    text: str,
    first_names: frozenset[str],
    stop_words: frozenset[str] = frozenset(),
    common: Callable[[str, float], bool] | None = None,
) -> Iterator[Found]:
    """`i'm maren`, `this is jesper willems speaking`, `krisztina here`: a name after an introduction, any case.

    The first word is a name when it is a listed first name or no common English word
    (`i'm happy`, `this is great`, `thanks everyone` are left alone).
    """
    common = common or _vocabulary()

    def first_ok(word: str) -> bool:
        return word.lower() in first_names or not common(word, 4.0)

    for m in _INTRO.finditer(text):
        span = _name_words(text, m.start("pii"), stop_words, first_ok, common)
        if span:
            yield ("PERSON", *span, 0.9)
    for m in _HERE.finditer(text):
        words = m.group("pii").split()
        if all(first_ok(w) and w.lower() not in stop_words for w in words):
            yield ("PERSON", m.start("pii"), m.end("pii"), 0.9)


#: A line of two to four words, capitalised or all upper case, and nothing else: a name line.
_NAME_LINE = re.compile(
    rf"[ \t]*(?:[{_UP}][\w'’.-]*)(?:[ \t]+(?:(?:de|del|da|das|dos|di|van|von|der|den|y|e|la|le)[ \t]+)?[{_UP}][\w'’.-]*){{1,3}}[ \t]*"
)
_SIGN_OFF_LINE = re.compile(r"[^\W\d_][\w'’ -]{1,40},[ \t]*")


def find_name_lines(text: str, address_starts: list[int]) -> Iterator[Found]:
    """In a block over several lines, the name line above an address, and the one under a sign-off ("Regards,")."""
    if "\n" not in text:
        return
    lines, pos = [], 0
    for line in text.split("\n"):
        lines.append((pos, line))
        pos += len(line) + 1
    for i, (offset, line) in enumerate(lines):
        if not _NAME_LINE.fullmatch(line) or line.rstrip().endswith(":"):
            continue
        below = lines[i + 1][0] if i + 1 < len(lines) else None
        above = lines[i - 1][1] if i else ""
        if (
            below is not None and any(below <= a < below + 4 for a in address_starts)
        ) or _SIGN_OFF_LINE.fullmatch(above):
            start = offset + len(line) - len(line.lstrip())
            yield ("PERSON", start, offset + len(line.rstrip()), 0.9)
