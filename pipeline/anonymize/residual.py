"""The residual-PII scan: an independent check that nothing structured survived redaction.

This is deliberately *not* a second Presidio pass. It is a small set of strict regular
expressions with checksums (Luhn for cards, mod-97 for IBANs, `ipaddress` for IPs), written
separately from the engine's recognizers, so a blind spot of one is not the blind spot of the
other. The placeholders the engine writes (`contact@example.com`, `+1 (555) 000-0000`, and the
bracketed `[...]` tokens) are the only allowed values, and only as whole tokens:
`maria.contact@example.com` or `+1 (555) 000-00001` are personal data that merely contain one.
Phones may carry an extension (`x1234`, `ext. 12`) and national formats (`(030) 6913920`,
`06-7/439 1500`); IBANs are matched in any case; cards are 12..19 digits with a network prefix
and the Luhn check; national ids are taken after a label in the languages the engine reads, or
by their checksum (DNI/NIE, NIR, PESEL, personnummer, codice fiscale).

Kinds: email, phone, card, ip, national_id (US SSN, UK NINO), iban.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from pipeline.anonymize.checksums import card_ok, iban_ok, national_id_ok

KINDS = ("email", "phone", "card", "ip", "national_id", "iban")

#: Values the anonymizer writes on purpose; they are not personal data.
ALLOWED_VALUES = ("contact@example.com", "+1 (555) 000-0000")

_EMAIL = re.compile(
    r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}"
)
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?:[ -]?[A-Za-z0-9]){11,30}")
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){11,18}(?!\d)")
_SSN = re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}([- ])(?!00)\d{2}\1(?!0000)\d{4}(?![\d-])")
_SSN_CONTEXT = re.compile(
    r"(?i:\bssn|social security(?: number| no\.?)?|tax id)\W{0,4}(?i:is\s+)?(\d{9})(?!\d)"
)
#: A national id after its label (English, French, Spanish, Italian, Dutch, Polish, Swedish,
#: Hungarian, German, Danish, Portuguese), five digits at least.
_ID_LABELLED = re.compile(
    r"(?i)(?<!\w)(?:national id|id number|ni number|national insurance(?: number)?|nino|nir|sécurité sociale|"
    r"n° sécu|dni|nif|nie|codice fiscale|cod\. fiscale|bsn-nummer|bsn|burgerservicenummer|pesel|personnummer|personnr|"
    r"adóazonosító(?: jel)?|személyi szám|adószám|taj|steuer-?id|steuernummer|cpr|cpf|contribuinte)(?!\w)"
    r"[\s:=#]*(?:is|es|est|è|är|ist|jest|nr\.?|no\.?)?[\s:=#]*(?P<id>(?:[A-Za-z]{1,6} ?)?\d[A-Za-z0-9]*(?:[ ./-]\d[A-Za-z0-9]*){0,4}(?:[ ./-][A-Za-z]\b)?)"
)
_ID_CHECKED = re.compile(
    r"(?i)\b[A-Z]{6}\d{2}[A-Z]\d{2}[A-Z]\d{3}[A-Z]\b|\b(?:\d{8}|[XYZ]-?\d{7})-?[A-Z]\b"
    r"|(?<![\d-])(?:[12] ?\d{2} ?\d{2} ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}|(?:19|20)?\d{6}[-+]\d{4}|\d{11})(?!\d)"
)
_NINO = re.compile(r"\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b")
_IPV4 = re.compile(
    r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?!\d|\.\d)"
)
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
_EXTENSION = r"(?:[ \t-]*(?i:x|ext\.?|extension|#)[ \t-]*\d{1,6})?"
_PHONES = (
    # international: +CC then 2..6 groups, (0) and an extension allowed
    re.compile(r"(?<![\w+])\+\d{1,3}(?:[ .\-/]?\(?\d{1,5}\)?){2,6}" + _EXTENSION),
    # national, trunk prefix 0 with area code and slashes: (030) 6913920, 06-7/439 1500, 043-91 50 00
    re.compile(
        r"(?<![\w+./-])\(?0\d{1,4}\)?(?:[ /.\-]|\)){1,2}\d{1,8}(?:[ /.\-]\d{2,8}){0,3}"
        + _EXTENSION
        + r"(?![\w/-])"
    ),
    # North American: (415) 555-0132, 415-555-0132, 415.555.0132, 415 555 0132
    re.compile(r"(?<![\d+])(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}(?![\d-])" + _EXTENSION),
    # local seven digits: 555-0132
    re.compile(r"(?<![\d.-])\d{3}-\d{4}(?![\d-])"),
    # digit groups: 661 134 322, 22 309 31 15, 95-8338-4861, (351) 930 273 668 (dates are left out below)
    re.compile(
        r"(?<![\w+./-])(?<!\d,)\(?\d{2,4}\)?(?:[ .\-/]\d{2,9}){1,4}" + _EXTENSION + r"(?![\w/-]|[.,]\d)"
    ),
    # bare national numbers with their trunk 0: 0388475108
    re.compile(r"(?<![\w+.-])0\d{8,10}(?![\w-])"),
    # national trunk prefix 0: 020 7946 0958, 030-90182011
    re.compile(r"(?<![\d+])0\d{1,4}[ -]\d{3,4}[ -]?\d{3,4}(?!\d)"),
)
_EXTENSION_AT_END = re.compile(r"[ \t-]*(?i:x|ext\.?|extension|#)[ \t-]*\d{1,6}$")
_DATE = re.compile(r"\d{4}[./-]\d{1,2}[./-]\d{1,2}|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}")
_PHONE_CONTEXT = re.compile(
    r"(?i:phone|call|tel\.?|mobile|cell|whatsapp|text me|fax)\W{1,15}(\d{10,12})(?!\d)"
)


@dataclass(frozen=True)
class Finding:
    kind: str
    start: int
    end: int
    text: str


def _mask(text: str, spans: list[tuple[int, int]]) -> str:
    chars = list(text)
    for start, end in spans:
        chars[start:end] = "\u00a7" * (end - start)
    return "".join(chars)


def _allowed_spans(text: str) -> list[tuple[int, int]]:
    """Where a placeholder stands as a whole token (not inside a longer address or number)."""
    spans = []
    for value in ALLOWED_VALUES:
        start = text.find(value)
        while start >= 0:
            end = start + len(value)
            before = text[start - 1] if start else " "
            after = text[end : end + 2]
            glued_before = before.isalnum() or before in "._%+-@"
            glued_after = bool(after) and (
                after[0].isalnum() or after[0] in "@_-" or (after[0] == "." and after[1:2].isalnum())
            )
            if not glued_before and not glued_after:
                spans.append((start, end))
            start = text.find(value, start + 1)
    return spans


def _digits(value: str) -> str:
    return "".join(ch for ch in value if ch.isdigit())


_DIGIT = re.compile(r"\d")


def scan(text: str) -> list[Finding]:
    """Every residual PII value in `text`, by kind, in order of position.

    A pattern that needs more digits than the text has (placeholders masked) is not run: each
    kind's least is in its pattern (an IBAN's two check digits, IPv4's four, a labelled id's five,
    NINO's six, seven for checked ids and phones, nine for SSNs, ten after a phone cue, twelve for
    cards), and most texts have few digits, so the scan costs a fraction of running every pattern.
    """
    if not text:
        return []
    work = _mask(text, _allowed_spans(text))
    found: list[Finding] = []
    digits = len(_DIGIT.findall(work))

    def take(kind: str, start: int, end: int) -> None:
        nonlocal work
        found.append(Finding(kind, start, end, text[start:end]))
        work = _mask(work, [(start, end)])

    def matches(pattern: re.Pattern, least_digits: int = 0) -> list[re.Match]:
        """The pattern's matches in what is not taken yet; none where the text has too few digits for it."""
        return list(pattern.finditer(work)) if digits >= least_digits else []

    for m in matches(_EMAIL):
        take("email", m.start(), m.end())
    for m in matches(_IBAN, 2):
        candidate = m.group(0)
        while len(candidate.replace(" ", "").replace("-", "")) >= 15:
            end = m.start() + len(candidate)
            if (end == len(work) or not work[end].isalnum()) and iban_ok(candidate.replace("-", "")):
                take("iban", m.start(), end)
                break
            candidate = candidate[:-1].rstrip(" -")
    for m in matches(_CARD, 12):
        if card_ok(_digits(m.group(0))):
            take("card", m.start(), m.end())
    for m in matches(_SSN, 9):
        take("national_id", m.start(), m.end())
    for m in matches(_SSN_CONTEXT, 9):
        take("national_id", m.start(1), m.end(1))
    for m in matches(_NINO, 6):
        take("national_id", m.start(), m.end())
    for m in matches(_ID_LABELLED, 5):
        if len(_digits(m.group("id"))) >= 5 and "\u00a7" not in m.group("id"):
            take("national_id", m.start("id"), m.end("id"))
    for m in matches(_ID_CHECKED, 7):
        if national_id_ok(m.group(0)):
            take("national_id", m.start(), m.end())
    for m in matches(_IPV4, 4):
        take("ip", m.start(), m.end())
    for m in matches(_IPV6):
        try:
            ipaddress.IPv6Address(m.group(0))
        except ValueError:
            continue
        take("ip", m.start(), m.end())
    for pattern in _PHONES:
        for m in matches(pattern, 7):
            value = m.group(0)
            if (
                7 <= len(_digits(_EXTENSION_AT_END.sub("", value))) <= 15
                and "\u00a7" not in value
                and not _DATE.fullmatch(value.strip())
            ):
                take("phone", m.start(), m.end())
    for m in matches(_PHONE_CONTEXT, 10):
        take("phone", m.start(1), m.end(1))
    return sorted(found, key=lambda f: f.start)


def redacted_context(text: str, finding: Finding, width: int = 30) -> str:
    """The text around a finding with every finding in it masked, safe to show in the UI."""
    pieces, pos, target_at = [], 0, 0
    for other in sorted(set(scan(text)) | {finding}, key=lambda f: f.start):
        if other.start < pos:
            continue
        pieces.append(text[pos : other.start])
        if other == finding:
            target_at = sum(len(p) for p in pieces)
        pieces.append(f"\u2039{other.kind}: {len(other.text)} chars\u203a")
        pos = other.end
    pieces.append(text[pos:])
    masked = "".join(pieces)
    marker_end = masked.index("\u203a", target_at) + 1
    window = masked[max(0, target_at - width) : marker_end + width]
    return "\u2026" + window.replace("\n", " ") + "\u2026"


def count_by_kind(texts: Iterable[str]) -> Counter:
    """How many residual findings of each kind the texts hold together."""
    counts: Counter = Counter()
    for text in texts:
        counts.update(f.kind for f in scan(text))
    return counts
